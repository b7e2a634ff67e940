"""hf: towers on tiny models saved in temp directories: poolers, sentence-transformers
folders, vision models, save/load, lock through the engine, adapters, errors."""
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import AutoModel

import vlkd_core as vlkd
from vlkd_core.errors import UsageError
from vlkd_core.sdk import lock
from vlkd_core.testing import check_backbone, check_text_padding

TEXTS = ["a small red circle", "the cat sits on the mat . a kitten is sitting on a rug"]


def image(seed: int = 0) -> Image.Image:
    gen = torch.Generator().manual_seed(seed)
    return Image.fromarray((torch.rand(40, 52, 3, generator=gen) * 255).byte().numpy())


def reference_pools(path, texts):
    """Independent pooling of the raw transformers model's outputs."""
    model = AutoModel.from_pretrained(str(path)).eval()
    from transformers import AutoTokenizer
    batch = AutoTokenizer.from_pretrained(str(path))(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    hidden, mask = out.last_hidden_state, batch["attention_mask"]
    rows_mean, rows_max = [], []
    for row in range(len(texts)):
        tokens = hidden[row, : int(mask[row].sum())]
        rows_mean.append(tokens.mean(0))
        rows_max.append(tokens.max(0).values)
    return {"cls": out.pooler_output, "cls-before-pooler": hidden[:, 0],
            "mean": torch.stack(rows_mean), "max": torch.stack(rows_max)}


@pytest.mark.parametrize("pooler", ["cls", "cls-before-pooler", "mean", "max"])
def test_text_poolers_match_an_independent_computation(tiny_bert, pooler):
    tower = vlkd.build_backbone(f"hf:{tiny_bert}", modality="text", pooler=pooler)
    check_backbone(tower, name=pooler)
    assert tower.output_dim == 32 and tower.source == "directory"
    tower.eval()
    inputs = tower.preprocess(TEXTS)
    assert isinstance(inputs, dict) and inputs["input_ids"].shape[0] == 2
    assert inputs["attention_mask"][0].sum() < inputs["attention_mask"][1].sum()  # padding present
    with torch.no_grad():
        assert torch.allclose(tower(inputs), reference_pools(tiny_bert, TEXTS)[pooler], atol=1e-5)


def test_max_seq_length_truncates(tiny_bert):
    tower = vlkd.build_backbone(f"hf:{tiny_bert}", modality="text", max_seq_length=5)
    assert tower.preprocess(TEXTS)["input_ids"].shape[1] == 5
    unit = vlkd.build_backbone(f"hf:{tiny_bert}", modality="text", pooler="mean", normalize=True).eval()
    with torch.no_grad():
        assert torch.allclose(unit(unit.preprocess(TEXTS)).norm(dim=-1), torch.ones(2), atol=1e-5)


def test_pretrained_directory_replaces_the_source(tiny_bert, tiny_st):
    tower = vlkd.build_backbone("hf:some/unused-id", modality="text", pretrained=str(tiny_st))
    assert type(tower).__name__ == "SentenceTransformerTower" and tower.source == "directory"


def test_sentence_transformers_folder_uses_its_own_pooling_and_normalisation(tiny_st, tiny_bert):
    tower = vlkd.build_backbone(f"hf:{tiny_st}", modality="text")
    assert type(tower).__name__ == "SentenceTransformerTower" and tower.max_seq_length == 16
    check_backbone(tower, name="st")
    tower.eval()
    with torch.no_grad():
        out = tower(tower.preprocess(TEXTS))
    assert torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(out, F.normalize(reference_pools(tiny_bert, TEXTS)["mean"], dim=-1), atol=1e-5)
    shorter = vlkd.build_backbone(f"hf:{tiny_st}", modality="text", max_seq_length=4)
    assert shorter.preprocess(TEXTS)["input_ids"].shape[1] == 4
    # an explicit pooler bypasses the folder's modules and uses the raw transformer
    raw = vlkd.build_backbone(f"hf:{tiny_st}", modality="text", pooler="max")
    assert type(raw).__name__ == "HFTextTower"


def test_vision_tower(tiny_vit):
    tower = vlkd.build_backbone(f"hf:{tiny_vit}", modality="image")
    check_backbone(tower, name="vit")
    assert tower.output_dim == 32 and tower.preprocess(image(), train=True).shape == (3, 32, 32)
    model = AutoModel.from_pretrained(str(tiny_vit)).eval()
    x = torch.stack([tower.preprocess(image(i)) for i in range(2)])
    with torch.no_grad():
        assert torch.allclose(tower.eval()(x), model(pixel_values=x).pooler_output, atol=1e-5)
    bigger = vlkd.build_backbone(f"hf:{tiny_vit}", modality="image", image_size=48,
                                 pooler="cls-before-pooler")
    assert bigger.preprocess(image()).shape == (3, 48, 48)
    check_backbone(bigger, name="vit@48")


def test_save_and_load_tower_from_local_file(tiny_bert, tmp_path):
    tower = vlkd.build_backbone(f"hf:{tiny_bert}", modality="text", pooler="mean").eval()
    with torch.no_grad():
        for p in tower.parameters():
            p.add_(0.01 * torch.randn_like(p))
    torch.save(tower.state_dict(), tmp_path / "tower.pt")
    again = vlkd.build_backbone(f"hf:{tiny_bert}", modality="text", pooler="mean",
                                pretrained=str(tmp_path / "tower.pt")).eval()
    fresh = vlkd.build_backbone(f"hf:{tiny_bert}", modality="text", pooler="mean").eval()
    inputs = tower.preprocess(TEXTS)
    with torch.no_grad():
        assert torch.allclose(again(inputs), tower(inputs), atol=1e-6)
        assert not torch.allclose(fresh(inputs), tower(inputs), atol=1e-4)


def test_lock_and_unlock_through_the_engine(tiny_bert):
    # the engine's one door (vlkd_core.sdk.lock); the factory has no lock option
    with pytest.raises(UsageError, match="lock"):
        vlkd.build_backbone(f"hf:{tiny_bert}", modality="text", lock=True)
    locked = lock(vlkd.build_backbone(f"hf:{tiny_bert}", modality="text"))
    assert not any(p.requires_grad for p in locked.parameters())
    check_backbone(locked, name="locked")
    partial = lock(vlkd.build_backbone(f"hf:{tiny_bert}", modality="text", pooler="mean"),
                   unlock="model.encoder.layer.1.*,!*LayerNorm*")
    names = [n for n, p in partial.named_parameters() if p.requires_grad]
    assert names and all(n.startswith("model.encoder.layer.1.") and "LayerNorm" not in n for n in names)
    check_backbone(partial, name="partial")


@pytest.mark.parametrize("adapter", ["lora", "bottleneck", "prefix_tuning", "ia3", "compacter",
                                     "mam", "unipelt"])
def test_adapters_train_only_adapter_weights(tiny_bert, adapter):
    plain = {n for n, _ in vlkd.build_backbone(f"hf:{tiny_bert}", modality="text").named_parameters()}
    # hidden size 32: the default reduction factor (32) would leave a 1-wide compacter
    config = {"reduction_factor": 8} if adapter == "compacter" else None
    tower = vlkd.build_backbone(f"hf:{tiny_bert}", modality="text", pooler="mean", adapter=adapter,
                                adapter_config=config)
    trainable = [n for n, p in tower.named_parameters() if p.requires_grad]
    assert trainable and not set(trainable) & plain  # only new (adapter) parameters train
    check_backbone(tower, name=adapter, padding_invariant=adapter != "unipelt")
    if adapter == "unipelt":  # its gates average hidden states over every position, padding too
        with pytest.raises(AssertionError, match="a caption alone differ"):
            check_text_padding(tower, name=adapter)


def test_errors(tiny_bert, tiny_vit, tmp_path):
    with pytest.raises(UsageError, match="pooler"):
        vlkd.build_backbone(f"hf:{tiny_bert}", modality="text", pooler="avg")
    with pytest.raises(UsageError, match="does not exist"):
        vlkd.build_backbone(f"hf:{tmp_path}/missing", modality="text")
    with pytest.raises(UsageError, match="tokenizer"):
        vlkd.build_backbone(f"hf:{tiny_vit}", modality="text")
    with pytest.raises(UsageError, match="adapter"):
        vlkd.build_backbone(f"hf:{tiny_bert}", modality="text", adapter="dora")
    with pytest.raises(UsageError, match="compacter"):  # phm_dim 4 does not divide 32/32 = 1
        vlkd.build_backbone(f"hf:{tiny_bert}", modality="text", adapter="compacter")


def test_clip_like_model_keeps_only_the_vision_half(tmp_path):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel
    torch.manual_seed(0)
    config = CLIPConfig(text_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                                     "intermediate_size": 20, "vocab_size": 50},
                        vision_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                                       "intermediate_size": 20, "image_size": 32, "patch_size": 8},
                        projection_dim=12)
    clip = CLIPModel(config).eval()
    clip.save_pretrained(tmp_path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    tower = vlkd.build_backbone(f"hf:{tmp_path}", modality="image")
    check_backbone(tower, name="clip-vision")
    assert tower.output_dim == 12
    assert not any("text" in n for n, _ in tower.named_parameters())
    x = torch.stack([tower.preprocess(image(i)) for i in range(2)])
    with torch.no_grad():
        expected = clip.get_image_features(pixel_values=x)
        assert torch.allclose(tower.eval()(x), expected, atol=1e-5)
