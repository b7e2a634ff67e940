"""openclip:<name> towers on a tiny registered config: contract, equality with open_clip's own
encode_image / encode_text, transforms and tokenizer, weights from files and directories,
open_clip's lock through the engine, errors and fast offline failure."""
import json

import open_clip
import pytest
import torch
from PIL import Image

import vlkd_core as vlkd
from vlkd_core.errors import UsageError
from vlkd_core.sdk import lock
from vlkd_core.testing import check_backbone
from vlkd_core.sdk import hub_reachable

TEXTS = ["a small red circle", "a large blue square above a green triangle"]


def image(seed: int = 0) -> Image.Image:
    gen = torch.Generator().manual_seed(seed)
    return Image.fromarray((torch.rand(40, 52, 3, generator=gen) * 255).byte().numpy())


@pytest.fixture
def clip_checkpoint(tiny_clip, tmp_path):
    """A full OpenCLIP model with its own random weights, saved as a checkpoint file."""
    torch.manual_seed(0)
    model, _, preprocess_val = open_clip.create_model_and_transforms(tiny_clip)
    path = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(model.state_dict(), path)
    return model.eval(), preprocess_val, path


@pytest.mark.parametrize("modality", ["image", "text"])
def test_contract_kit(tiny_clip, tiny_cfg, modality):
    tower = vlkd.build_backbone(f"openclip:{tiny_clip}", modality=modality)
    check_backbone(tower, name=modality)
    assert tower.output_dim == tiny_cfg["embed_dim"]


def test_towers_match_open_clip_and_keep_only_their_half(tiny_clip, clip_checkpoint):
    model, preprocess_val, path = clip_checkpoint
    image_tower = vlkd.build_backbone(f"openclip:{tiny_clip}", pretrained=str(path)).eval()
    text_tower = vlkd.build_backbone(f"openclip:{tiny_clip}", modality="text", pretrained=str(path)).eval()
    assert all(k.startswith("visual.") for k in image_tower.state_dict())
    assert not any(k.startswith("visual") for k in text_tower.state_dict())
    img = image()
    x = image_tower.preprocess(img).unsqueeze(0)
    assert torch.allclose(x[0], preprocess_val(img))
    tokens = text_tower.preprocess(TEXTS)
    assert torch.equal(tokens, open_clip.get_tokenizer(tiny_clip)(TEXTS))
    with torch.no_grad():
        assert torch.allclose(image_tower(x), model.encode_image(x), atol=1e-5)
        assert torch.allclose(text_tower(tokens), model.encode_text(tokens), atol=1e-5)


def test_training_tokens_drop_trailing_padding_and_keep_the_features(tiny_clip, clip_checkpoint):
    """Under the causal mask the argmax-pooled EOT token never sees the padding after it, so
    training batches are cut after the longest caption with the same features."""
    model, _, path = clip_checkpoint
    tower = vlkd.build_backbone(f"openclip:{tiny_clip}", modality="text", pretrained=str(path)).eval()
    full = tower.preprocess(TEXTS)
    short = tower.preprocess(TEXTS, train=True)
    longest = int(full.ne(0).sum(1).max())
    assert full.shape[1] == 16 and short.shape[1] == longest < 16
    assert torch.equal(short, full[:, :longest])
    with torch.no_grad():
        assert torch.allclose(tower(short), model.encode_text(full), atol=1e-5)


def test_local_directory_and_tower_state_dict_files(tiny_clip, tiny_cfg, clip_checkpoint, tmp_path):
    model, _, path = clip_checkpoint
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": tiny_cfg}))
    (folder / path.name).write_bytes(path.read_bytes())
    from_dir = vlkd.build_backbone(f"openclip:{tiny_clip}", pretrained=str(folder)).eval()
    x = from_dir.preprocess(image()).unsqueeze(0)
    with torch.no_grad():
        assert torch.allclose(from_dir(x), model.encode_image(x), atol=1e-5)
    # save -> load of the tower's own state dict
    torch.save(from_dir.state_dict(), tmp_path / "tower.pt")
    again = vlkd.build_backbone(f"openclip:{tiny_clip}", pretrained=str(tmp_path / "tower.pt")).eval()
    fresh = vlkd.build_backbone(f"openclip:{tiny_clip}").eval()
    with torch.no_grad():
        assert torch.allclose(again(x), from_dir(x), atol=1e-6)
        assert not torch.allclose(fresh(x), from_dir(x), atol=1e-3)
    with pytest.raises(UsageError, match="does not fit"):
        vlkd.build_backbone(f"openclip:{tiny_clip}", modality="text", pretrained=str(tmp_path / "tower.pt"))


def test_open_clip_schemas_as_model_names(tiny_clip, tiny_cfg, clip_checkpoint, tmp_path, monkeypatch):
    model, _, path = clip_checkpoint
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": tiny_cfg}))
    (folder / path.name).write_bytes(path.read_bytes())
    image_tower = vlkd.build_backbone(f"openclip:local-dir:{folder}").eval()
    text_tower = vlkd.build_backbone(f"openclip:local-dir:{folder}", modality="text").eval()
    x = image_tower.preprocess(image()).unsqueeze(0)
    tokens = text_tower.preprocess(["a red square"])
    with torch.no_grad():
        assert torch.allclose(image_tower(x), model.encode_image(x), atol=1e-5)
        assert torch.allclose(text_tower(tokens), model.encode_text(tokens), atol=1e-5)
    with pytest.raises(UsageError, match="brings its own weights"):
        vlkd.build_backbone(f"openclip:local-dir:{folder}", pretrained="openai")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError, match="offline"):  # accepted as a name, then not downloadable here
        vlkd.build_backbone("openclip:hf-hub:vlkd-tests/no-such-clip", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(UsageError, match="unknown model 'hf-hubb:org/x' in family 'openclip'"):
        vlkd.build_backbone("openclip:hf-hubb:org/x")


def test_image_size_and_train_transform(tiny_clip):
    tower = vlkd.build_backbone(f"openclip:{tiny_clip}", image_size=48)
    assert tower.preprocess(image()).shape == tower.preprocess(image(), train=True).shape == (3, 48, 48)
    check_backbone(tower, name="48px")


def test_open_clip_lock_through_the_engine_and_partial_unlock(tiny_clip):
    # the engine's one door (vlkd_core.sdk.lock) calls the tower's lock_tower(), which applies
    # open_clip's own lock with the options the tower was built with
    build = lambda **kw: vlkd.build_backbone(f"openclip:{tiny_clip}", **kw)
    with pytest.raises(UsageError, match="lock"):
        build(lock=True)
    assert all(p.requires_grad for p in build(unlocked_groups=1).parameters())  # options alone lock nothing
    locked = lock(build())
    assert not any(p.requires_grad for p in locked.parameters())
    check_backbone(locked, name="locked")
    # open_clip's ViT groups: last group = the projection
    one = lock(build(unlocked_groups=1))
    assert [n for n, p in one.named_parameters() if p.requires_grad] == ["visual.proj"]
    # open_clip's text groups, from the end: projection, then last block + ln_final, ...
    text = lock(build(modality="text", unlocked_layers=1))
    assert [n for n, p in text.named_parameters() if p.requires_grad] == ["text.text_projection"]
    text = lock(build(modality="text", unlocked_layers=2))
    names = [n for n, p in text.named_parameters() if p.requires_grad]
    assert names and any("resblocks.1." in n for n in names)
    assert not any("resblocks.0." in n or "token_embedding" in n for n in names)
    check_backbone(text, name="text unlocked 2")
    patterns = lock(build(), unlock="visual.ln_post.*")
    assert {n for n, p in patterns.named_parameters() if p.requires_grad} == {"visual.ln_post.weight", "visual.ln_post.bias"}


def test_an_option_of_the_other_tower_is_an_error(tiny_clip):
    with pytest.raises(UsageError, match="'unlocked_layers' is for the text tower"):
        vlkd.build_backbone(f"openclip:{tiny_clip}", unlocked_layers=1)
    with pytest.raises(UsageError, match="'freeze_bn_stats' is for the image tower"):
        vlkd.build_backbone(f"openclip:{tiny_clip}", modality="text", freeze_bn_stats=True)


def test_unknown_names_and_tags(tiny_clip):
    with pytest.raises(UsageError, match="did you mean RN50"):
        vlkd.build_backbone("openclip:RN51")
    with pytest.raises(UsageError, match="openai"):
        vlkd.build_backbone("openclip:RN50", pretrained="no-such-tag")


@pytest.mark.skipif(hub_reachable(), reason="needs a machine without internet")
@pytest.mark.parametrize("pretrained", ["openai", "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"])
def test_offline_download_stops_with_alternatives(pretrained, tmp_path):
    with pytest.raises(UsageError, match="--cache-dir") as info:
        vlkd.build_backbone("openclip:RN50", pretrained=pretrained, cache_dir=str(tmp_path))
    assert "local" in str(info.value) and "offline" in str(info.value)


def test_hf_hub_offline_env_is_honoured_even_when_online(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError, match="offline"):
        vlkd.build_backbone("openclip:RN50", pretrained="openai", cache_dir=str(tmp_path))


def test_paired_towers_of_one_model_share_one_build(tiny_clip, clip_checkpoint):
    """--image openclip:X --text openclip:X builds X once (each half to one tower); the towers
    give open_clip's features as before, and another run, a second tower of a side or a build
    outside a run get models of their own."""
    from vlkd_core.training import TrainConfig
    from vlkd_core.training.compose import compose
    from vlkd_openclip import backbone
    model, _, path = clip_checkpoint
    spec = f"openclip:{tiny_clip}"
    cfg = TrainConfig(image=spec, text=spec, image_pretrained=str(path), text_pretrained=str(path),
                      teacher="none", loss="infonce", eval=[], progress=False)
    before = backbone.builds
    first = compose(cfg).model
    assert backbone.builds == before + 1
    x = first.image_tower.preprocess(image()).unsqueeze(0)
    tokens = first.text_tower.preprocess(TEXTS)
    with torch.no_grad():
        assert torch.allclose(first.image_tower.eval()(x), model.encode_image(x), atol=1e-5)
        assert torch.allclose(first.text_tower.eval()(tokens), model.encode_text(tokens), atol=1e-5)
    assert not any(k.startswith("visual") for k in first.text_tower.state_dict())
    second = compose(cfg).model  # a second run: its own model
    assert backbone.builds == before + 2
    assert first.image_tower.visual is not second.image_tower.visual
    assert first.text_tower.text is not second.text_tower.text
    other = compose(TrainConfig(image=spec, text="toy:tiny", teacher="none", loss="infonce", eval=[],
                                progress=False, text_head="linear"))
    assert backbone.builds == before + 3 and other.model.image_tower.visual is not first.image_tower.visual
    for side in ("image", "text", "image"):  # outside a composition every build is its own
        vlkd.build_backbone(spec, modality=side)
    assert backbone.builds == before + 6
