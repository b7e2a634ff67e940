"""pooler=promptbert (Jiang et al. 2022): the [MASK] state of the sentence in its template, and
the template bias (the template alone, its tokens at the positions they have around the
sentence) subtracted, each computed independently here with the raw transformers model."""
import json

import pytest
import torch
from transformers import AutoModel, AutoTokenizer
from typer.testing import CliRunner

import vlkd_core as vlkd
from vlkd_core.errors import UsageError
from vlkd_core.testing import check_backbone

SENTENCES = ["a small red circle", "the cat sits on the mat", "dog"]


def template(sentence: str) -> str:
    return f'This sentence : "{sentence}" means [MASK].'


@pytest.fixture(scope="module")
def raw(tiny_bert_words):
    return AutoModel.from_pretrained(str(tiny_bert_words)).eval(), AutoTokenizer.from_pretrained(str(tiny_bert_words))


def mask_state(model, tokenizer, text: str, shift_after_slot: int | None = None) -> torch.Tensor:
    """Last hidden state at [MASK] of ``text``; with ``shift_after_slot``, the tokens from the
    closing quote on get position ids shifted by that many (the paper's template bias)."""
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    assert tokenizer.unk_token_id not in ids  # every template word is in the tiny vocabulary
    positions = torch.arange(ids.shape[1]).unsqueeze(0)
    if shift_after_slot is not None:
        quotes = (ids[0] == tokenizer.convert_tokens_to_ids('"')).nonzero().flatten()
        positions[0, quotes[1]:] += shift_after_slot
    with torch.no_grad():
        hidden = model(input_ids=ids, position_ids=positions).last_hidden_state
    return hidden[0, (ids[0] == tokenizer.mask_token_id).nonzero().item()]


def test_the_vector_is_the_hidden_state_at_the_mask(tiny_bert_words, raw):
    model, tokenizer = raw
    tower = vlkd.build_backbone(f"hf:{tiny_bert_words}", modality="text", pooler="promptbert",
                                template_denoise=False).eval()
    with torch.no_grad():
        got = tower(tower.preprocess(SENTENCES))
    expected = torch.stack([mask_state(model, tokenizer, template(s)) for s in SENTENCES])
    assert torch.allclose(got, expected, atol=1e-5)
    check_backbone(tower, name="promptbert")


def test_template_denoising_subtracts_the_template_alone_at_the_same_positions(tiny_bert_words, raw):
    model, tokenizer = raw
    build = lambda **kw: vlkd.build_backbone(f"hf:{tiny_bert_words}", modality="text", pooler="promptbert", **kw).eval()
    plain, denoised = build(template_denoise=False), build()
    with torch.no_grad():
        difference = plain(plain.preprocess(SENTENCES)) - denoised(denoised.preprocess(SENTENCES))
    lengths = [len(tokenizer(s, add_special_tokens=False)["input_ids"]) for s in SENTENCES]
    bias = torch.stack([mask_state(model, tokenizer, template(""), n) for n in lengths])
    assert torch.allclose(difference, bias, atol=1e-5)
    assert not torch.allclose(bias[0], bias[2], atol=1e-4)  # the shift matters: it depends on the length


def test_a_template_of_ones_own(tiny_bert_words, raw):
    model, tokenizer = raw
    tower = vlkd.build_backbone(f"hf:{tiny_bert_words}", modality="text", pooler="promptbert",
                                prompt_template="[MASK] : [X]", template_denoise=False).eval()
    with torch.no_grad():
        got = tower(tower.preprocess(SENTENCES[:2]))
    expected = torch.stack([mask_state(model, tokenizer, f"[MASK] : {s}") for s in SENTENCES[:2]])
    assert torch.allclose(got, expected, atol=1e-5)


def test_bad_promptbert_options_are_one_line_errors(tiny_bert_words, tiny_vit):
    text = lambda **kw: vlkd.build_backbone(f"hf:{tiny_bert_words}", modality="text", **kw)
    with pytest.raises(UsageError, match=r"must hold '\[X\]' and '\[MASK\]' once each"):
        text(pooler="promptbert", prompt_template="This sentence means [MASK].")
    with pytest.raises(UsageError, match="prompt_template is an option of pooler=promptbert"):
        text(pooler="mean", prompt_template='"[X]" means [MASK].')
    with pytest.raises(UsageError, match="cannot be combined"):
        text(pooler="promptbert", prompt_tokens=2)
    with pytest.raises(UsageError, match="text-tower options"):
        vlkd.build_backbone(f"hf:{tiny_vit}", modality="image", pooler="promptbert")


@pytest.mark.slow
def test_a_run_trains_and_evaluates_with_it(tiny_bert_words, tmp_path):
    from vlkd_cli.app import app
    from vlkd_core.training.restore import load_run
    args = ["train", "--image", "toy:tiny", "--image-option", "image_size=32", "--image-head", "linear",
            "--text", f"hf:{tiny_bert_words}", "--text-option", "pooler=promptbert", "--teacher", "none",
            "--loss", "infonce", "--data-option", "size=32", "--data-option", "length=64",
            "--batch-size", "16", "--epochs", "1", "--warmup-steps", "0", "--no-progress", "--log-every", "1",
            "--eval", "zeroshot:dataset=shapes,dataset.size=32,dataset.label_by=colour,max_samples=40",
            "--output-dir", str(tmp_path), "--name", "pb"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    records = [json.loads(line) for line in (tmp_path / "pb" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["type"] == "train"]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    assert any("zeroshot/top1" in r for r in records)
    trained = load_run(tmp_path / "pb").model.text_tower.model.state_dict()
    initial = AutoModel.from_pretrained(str(tiny_bert_words)).state_dict()
    assert not torch.equal(trained["encoder.layer.1.output.dense.weight"], initial["encoder.layer.1.output.dense.weight"])
