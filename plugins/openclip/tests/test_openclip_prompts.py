"""CoOp learnable prompts on openclip text towers: token layout, initialisation (a phrase's
prompt equals the phrase written out, through open_clip's own encode_text), only the prompt
trains in a locked tower, a real `vlkd train --lock-text` changes only the prompt, and the
trained prompt changes the text embeddings zero-shot evaluation uses."""
import json

import open_clip
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import vlkd_core as vlkd
from vlkd_core.errors import UsageError
from vlkd_core.sdk import lock
from vlkd_core.testing import check_backbone

CAPTIONS = ["red circle", "a large blue square above a green triangle"]
PHRASE = "a photo of a"


def text_tower(name: str, **options):
    return vlkd.build_backbone(f"openclip:{name}", modality="text", **options)


@pytest.fixture(scope="module")
def clip_file(tiny_clip, tmp_path_factory):
    """A full OpenCLIP model with its own random weights and its checkpoint file."""
    torch.manual_seed(1)
    model = open_clip.create_model(tiny_clip).eval()
    path = tmp_path_factory.mktemp("prompts") / "open_clip_pytorch_model.bin"
    torch.save(model.state_dict(), path)
    return model, path


def test_token_layout_start_context_caption_within_the_context_length(tiny_clip, tiny_cfg):
    torch.manual_seed(0)
    tower = text_tower(tiny_clip, prompt_tokens=4)
    length, sot = tiny_cfg["text_cfg"]["context_length"], tower.tokenizer.sot_token_id
    tokens = tower.preprocess(CAPTIONS + ["word " * 40])
    assert tokens.shape == (3, length - 4)  # the caption gets N fewer slots
    assert (tokens[:, 0] == sot).all() and tokens[2, -1] == tower.tokenizer.eot_token_id  # truncated, still ended
    x = tower.prompted_embeddings(tokens)
    embed = tower.text.token_embedding
    assert x.shape == (3, length, tiny_cfg["text_cfg"]["width"])
    assert torch.equal(x[:, 0], embed(tokens[:, 0]))
    assert torch.equal(x[:, 1:5], tower.prompt.ctx.expand(3, -1, -1))
    assert torch.equal(x[:, 5:], embed(tokens[:, 1:]))
    assert 0.01 < tower.prompt.ctx.std().item() < 0.03  # CoOp's N(0, 0.02^2)
    assert tower(tokens).shape == (3, tower.output_dim)
    check_backbone(tower, name="prompted text")


@pytest.mark.parametrize("source", ["checkpoint", "tower file"])
def test_a_phrase_prompt_equals_the_phrase_written_out(tiny_clip, clip_file, tmp_path, source):
    model, path = clip_file
    if source == "tower file":  # a tower saved without prompts gets new ones from its loaded weights
        torch.save(text_tower(tiny_clip, pretrained=str(path)).state_dict(), tmp_path / "text.pt")
        path = tmp_path / "text.pt"
    tower = text_tower(tiny_clip, pretrained=str(path), prompt_init=PHRASE).eval()
    assert tower.prompt.num_tokens == 4
    written_out = open_clip.get_tokenizer(tiny_clip)([f"{PHRASE} {c}" for c in CAPTIONS])
    with torch.no_grad():
        assert torch.allclose(tower(tower.preprocess(CAPTIONS)), model.encode_text(written_out), atol=1e-5)
        plain = text_tower(tiny_clip, pretrained=str(path)).eval()
        assert not torch.allclose(tower(tower.preprocess(CAPTIONS)), plain(plain.preprocess(CAPTIONS)), atol=1e-3)


def test_custom_text_towers_take_prompts_too(tiny_clip, tiny_cfg, tmp_path):
    custom = f"{tiny_clip}-custom"
    (tmp_path / f"{custom}.json").write_text(json.dumps(dict(tiny_cfg, custom_text=True)))
    open_clip.add_model_config(str(tmp_path / f"{custom}.json"))
    torch.manual_seed(2)
    model = open_clip.create_model(custom).eval()
    assert isinstance(model, open_clip.CustomTextCLIP)
    torch.save(model.state_dict(), tmp_path / "custom.bin")
    tower = text_tower(custom, pretrained=str(tmp_path / "custom.bin"), prompt_init=PHRASE).eval()
    written_out = open_clip.get_tokenizer(custom)([f"{PHRASE} {c}" for c in CAPTIONS])
    with torch.no_grad():
        assert torch.allclose(tower(tower.preprocess(CAPTIONS)), model.encode_text(written_out), atol=1e-5)


def test_a_locked_tower_trains_only_its_prompt(tiny_clip):
    tower = lock(text_tower(tiny_clip, prompt_tokens=4))
    assert [n for n, p in tower.named_parameters() if p.requires_grad] == ["prompt.ctx"]
    partly = lock(text_tower(tiny_clip, prompt_tokens=4, unlocked_layers=1))
    assert {n for n, p in partly.named_parameters() if p.requires_grad} == {"prompt.ctx", "text.text_projection"}
    before = {n: p.detach().clone() for n, p in tower.named_parameters()}
    optimizer = torch.optim.SGD([p for p in tower.parameters() if p.requires_grad], lr=1.0)
    tokens = tower.preprocess(CAPTIONS)
    for _ in range(3):
        optimizer.zero_grad()
        tower(tokens).pow(2).sum().backward()
        optimizer.step()
    changed = {n for n, p in tower.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"prompt.ctx"}


def test_bad_prompt_options_are_one_line_errors(tiny_clip):
    with pytest.raises(UsageError, match="'prompt_tokens' is for the text tower"):
        vlkd.build_backbone(f"openclip:{tiny_clip}", prompt_tokens=4)
    with pytest.raises(UsageError, match="leaves no room"):
        text_tower(tiny_clip, prompt_tokens=15)
    with pytest.raises(UsageError, match="prompt_tokens=3 but prompt_init 'a photo of a' is 4 tokens"):
        text_tower(tiny_clip, prompt_tokens=3, prompt_init=PHRASE)
    with pytest.raises(UsageError, match="prompt_tokens=-1"):
        text_tower(tiny_clip, prompt_tokens=-1)


@pytest.mark.slow
def test_vlkd_train_lock_text_changes_only_the_prompt_and_zero_shot_uses_it(tiny_clip, clip_file, tmp_path):
    from vlkd_cli.app import app
    from vlkd_core.evaluation.zeroshot import classifier_from_prompts
    from vlkd_core.training.restore import load_run
    _, path = clip_file
    args = ["train", "--image", "toy:tiny", "--image-option", "image_size=32", "--image-head", "linear",
            "--text", f"openclip:{tiny_clip}", "--text-pretrained", str(path), "--lock-text",
            "--text-option", "prompt_tokens=4", "--teacher", "none", "--loss", "infonce",
            "--data-option", "size=32", "--data-option", "length=64", "--batch-size", "16",
            "--epochs", "1", "--lr", "0.05", "--warmup-steps", "0", "--eval", "none", "--no-progress",
            "--output-dir", str(tmp_path), "--name", "coop"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    run = tmp_path / "coop"
    # the run's starting weights (saved before step 1) against the trained model restored from it
    start = {k.removeprefix("text_tower."): v for k, v in load_file(run / "start" / "weights.safetensors").items()
             if k.startswith("text_tower.")}
    model = load_run(run).model
    end = model.text_tower.state_dict()
    assert start and set(start) == set(end)
    assert {k for k in start if not torch.equal(start[k], end[k])} == {"prompt.ctx"}
    assert torch.equal(start["text.token_embedding.weight"],
                       torch.load(path, weights_only=True)["token_embedding.weight"])  # the given weights
    # zero-shot class embeddings come from the trained prompt: putting the initial one back changes them
    names, templates = ["circle", "square", "triangle"], ["a photo of a {}."]
    trained = classifier_from_prompts(model, names, templates)
    with torch.no_grad():
        model.text_tower.prompt.ctx.copy_(start["prompt.ctx"])
    initial = classifier_from_prompts(model, names, templates)
    assert not torch.allclose(trained, initial, atol=1e-4)
