"""CoOp learnable prompts on hf text towers: token layout, a phrase prompt equals the phrase
written out (raw transformers model), only the prompt trains in a locked tower, a real
`vlkd train --lock-text` changes only it, and zero-shot class embeddings follow it."""
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer
from typer.testing import CliRunner

import vlkd_core as vlkd
from vlkd_core.errors import UsageError
from vlkd_core.sdk import lock
from vlkd_core.testing import check_backbone

TEXTS = ["a small red circle", "the cat sits on the mat . a kitten is sitting on a rug"]
PHRASE = "a photo of the"


def text_tower(path, **options):
    return vlkd.build_backbone(f"hf:{path}", modality="text", **options)


def test_token_layout_first_token_context_caption_within_max_length(tiny_bert):
    torch.manual_seed(0)
    tower = text_tower(tiny_bert, pooler="mean", prompt_tokens=4, max_seq_length=12)
    inputs = tower.preprocess(TEXTS)
    ids = inputs["input_ids"]
    assert ids.shape[1] == 12 - 4 and (ids[:, 0] == tower.tokenizer.cls_token_id).all()
    assert ids[1, -1] == tower.tokenizer.sep_token_id  # the long caption was cut to fit, still ended
    fed = tower.prompt.model_inputs(tower.model, inputs)
    words = tower.model.get_input_embeddings()
    x = fed["inputs_embeds"]
    assert x.shape[:2] == (2, 12)
    assert torch.equal(x[:, 0], words(ids[:, 0]))
    assert torch.equal(x[:, 1:5], tower.prompt.ctx.expand(2, -1, -1))
    assert torch.equal(x[:, 5:], words(ids[:, 1:]))
    mask = inputs["attention_mask"]
    assert torch.equal(fed["attention_mask"], torch.cat([mask[:, :1], torch.ones(2, 4, dtype=mask.dtype), mask[:, 1:]], 1))
    assert 0.01 < tower.prompt.ctx.std().item() < 0.03  # CoOp's N(0, 0.02^2)
    check_backbone(tower, name="prompted hf text")


@pytest.mark.parametrize("pooler", ["cls", "mean"])
def test_a_phrase_prompt_equals_the_phrase_written_out(tiny_bert, pooler):
    tower = text_tower(tiny_bert, pooler=pooler, prompt_init=PHRASE).eval()
    assert tower.prompt.num_tokens == 4
    model = AutoModel.from_pretrained(str(tiny_bert)).eval()
    batch = AutoTokenizer.from_pretrained(str(tiny_bert))([f"{PHRASE} {t}" for t in TEXTS],
                                                          padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
        mask = batch["attention_mask"].unsqueeze(-1).float()
        expected = (out.pooler_output if pooler == "cls"
                    else (out.last_hidden_state * mask).sum(1) / mask.sum(1))
        assert torch.allclose(tower(tower.preprocess(TEXTS)), expected, atol=1e-5)


def test_a_saved_tower_without_prompts_gets_them_from_its_loaded_weights(tiny_bert, tmp_path):
    torch.manual_seed(3)
    trained = text_tower(tiny_bert, pooler="cls")
    with torch.no_grad():
        trained.model.embeddings.word_embeddings.weight.mul_(2)
    torch.save(trained.state_dict(), tmp_path / "tower.pt")
    tower = text_tower(tiny_bert, pooler="cls", prompt_init=PHRASE, pretrained=str(tmp_path / "tower.pt"))
    ids = tower.tokenizer(PHRASE, add_special_tokens=False)["input_ids"]
    assert torch.equal(tower.prompt.ctx, trained.model.embeddings.word_embeddings.weight[ids])
    torch.save(tower.state_dict(), tmp_path / "prompted.pt")  # and the prompt itself round-trips
    again = text_tower(tiny_bert, pooler="cls", prompt_tokens=4, pretrained=str(tmp_path / "prompted.pt"))
    assert torch.equal(again.prompt.ctx, tower.prompt.ctx)


def test_a_locked_tower_trains_only_its_prompt(tiny_bert):
    tower = lock(text_tower(tiny_bert, pooler="mean", prompt_tokens=4))
    assert [n for n, p in tower.named_parameters() if p.requires_grad] == ["prompt.ctx"]
    before = {n: p.detach().clone() for n, p in tower.named_parameters()}
    optimizer = torch.optim.SGD([p for p in tower.parameters() if p.requires_grad], lr=1.0)
    inputs = tower.preprocess(TEXTS)
    for _ in range(3):
        optimizer.zero_grad()
        tower(inputs).pow(2).sum().backward()
        optimizer.step()
    assert {n for n, p in tower.named_parameters() if not torch.equal(p, before[n])} == {"prompt.ctx"}


def test_bad_prompt_options_are_one_line_errors(tiny_bert, tiny_vit, tiny_st):
    with pytest.raises(UsageError, match="text-tower options"):
        vlkd.build_backbone(f"hf:{tiny_vit}", modality="image", prompt_tokens=4)
    with pytest.raises(UsageError, match="sentence-transformers folder needs an explicit pooler"):
        text_tower(tiny_st, prompt_tokens=4)
    with pytest.raises(UsageError, match="leaves no room"):
        text_tower(tiny_bert, prompt_tokens=11, max_seq_length=12)
    with pytest.raises(UsageError, match="prompt_tokens=3 but prompt_init 'a photo of the' is 4 tokens"):
        text_tower(tiny_bert, prompt_tokens=3, prompt_init=PHRASE)
    with pytest.raises(UsageError, match="prompt_tokens=-2"):
        text_tower(tiny_bert, prompt_tokens=-2)


@pytest.mark.slow
def test_vlkd_train_lock_text_changes_only_the_prompt_and_zero_shot_uses_it(tiny_bert, tmp_path):
    from vlkd_cli.app import app
    from vlkd_core.evaluation.zeroshot import classifier_from_prompts
    from vlkd_core.training.restore import load_run
    args = ["train", "--image", "toy:tiny", "--image-option", "image_size=32", "--image-head", "linear",
            "--text", f"hf:{tiny_bert}", "--text-option", "pooler=mean", "--lock-text",
            "--text-option", "prompt_tokens=4", "--teacher", "none", "--loss", "infonce",
            "--data-option", "size=32", "--data-option", "length=64", "--batch-size", "16",
            "--epochs", "1", "--lr", "0.05", "--warmup-steps", "0", "--eval", "none", "--no-progress",
            "--output-dir", str(tmp_path), "--name", "coop"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    run = tmp_path / "coop"
    start = {k.removeprefix("text_tower."): v for k, v in load_file(run / "start" / "weights.safetensors").items()
             if k.startswith("text_tower.")}
    model = load_run(run).model
    end = model.text_tower.state_dict()
    assert start and set(start) == set(end)
    assert {k for k in start if not torch.equal(start[k], end[k])} == {"prompt.ctx"}
    raw = AutoModel.from_pretrained(str(tiny_bert)).state_dict()
    assert torch.equal(start["model.embeddings.word_embeddings.weight"], raw["embeddings.word_embeddings.weight"])
    names, templates = ["circle", "square", "triangle"], ["a photo of a {}."]
    trained = classifier_from_prompts(model, names, templates)
    with torch.no_grad():
        model.text_tower.prompt.ctx.copy_(start["prompt.ctx"])
    assert not torch.allclose(trained, classifier_from_prompts(model, names, templates), atol=1e-4)
