"""torchvision:<name> towers: contract, classifier removal, weights (tags via a local cache,
local files), transforms, lock."""
import socket

import pytest
import torch
import torchvision
from PIL import Image

import vlkd_core as vlkd
from vlkd_core.errors import UsageError
from vlkd_core.sdk import keep_frozen_in_eval, lock
from vlkd_core.testing import check_backbone
from vlkd_core.sdk import eval_transform
from vlkd_torchvision.transforms import spec_from_weights

torch.set_num_threads(1)


def image(seed: int = 0, size=(70, 50)) -> Image.Image:
    gen = torch.Generator().manual_seed(seed)
    return Image.fromarray((torch.rand(size[1], size[0], 3, generator=gen) * 255).byte().numpy())


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_contract_kit(name):
    tower = vlkd.build_backbone(f"torchvision:{name}", image_size=32)
    check_backbone(tower, name=name)
    assert tower.modality == "image" and tower.spec == f"torchvision:{name}"


def test_registered_example_builds():
    example = vlkd.get_component("backbones", "torchvision").metadata["example"]
    check_backbone(vlkd.build_backbone("torchvision:" + example["model"],
                                       **{k: v for k, v in example.items() if k != "model"}))


def test_features_are_the_classifier_input_of_the_original_model(tmp_path):
    torch.manual_seed(0)
    original = torchvision.models.mobilenet_v3_small().eval()
    path = tmp_path / "mnv3.pth"
    torch.save(original.state_dict(), path)  # a torchvision checkpoint, classifier included
    tower = vlkd.build_backbone("torchvision:mobilenet_v3_small", pretrained=str(path),
                                image_size=64).eval()
    assert tower.output_dim == original.classifier[-1].in_features == 1024
    seen = {}
    original.classifier[-1].register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    x = torch.stack([tower.preprocess(image(i)) for i in range(2)])
    with torch.no_grad():
        original(x)
        assert torch.allclose(tower(x), seen["x"], atol=1e-5)


def test_save_and_load_tower_state_dict_from_a_local_file(tmp_path):
    torch.manual_seed(1)
    tower = vlkd.build_backbone("torchvision:resnet18", image_size=32).eval()
    path = tmp_path / "tower.pt"
    torch.save(tower.state_dict(), path)
    again = vlkd.build_backbone("torchvision:resnet18", image_size=32, pretrained=str(path)).eval()
    fresh = vlkd.build_backbone("torchvision:resnet18", image_size=32).eval()
    x = torch.stack([tower.preprocess(image(i)) for i in range(2)])
    with torch.no_grad():
        assert torch.allclose(again(x), tower(x), atol=1e-6)
        assert not torch.allclose(fresh(x), tower(x), atol=1e-3)


def test_weights_that_do_not_fit_are_a_usage_error(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(UsageError, match="does not fit"):
        vlkd.build_backbone("torchvision:mobilenet_v3_small", pretrained=str(path))


def test_weights_tag_is_read_from_cache_dir_without_download(tmp_path):
    # Seed the torch.hub cache layout with our own weights under the official file name.
    weights = torchvision.models.MobileNet_V3_Small_Weights.IMAGENET1K_V1
    torch.manual_seed(2)
    reference = torchvision.models.mobilenet_v3_small().eval()
    (tmp_path / "checkpoints").mkdir()
    torch.save(reference.state_dict(), tmp_path / "checkpoints" / weights.url.rsplit("/", 1)[1])
    tower = vlkd.build_backbone("torchvision:mobilenet_v3_small", pretrained="DEFAULT",
                                cache_dir=str(tmp_path)).eval()
    assert torch.equal(tower.model.features[0][0].weight, reference.features[0][0].weight)
    # the eval transform keeps the weights' side, normalisation and filter, but resizes the
    # shorter side to the crop instead of cutting a border away (256 -> 224)
    img = image(3, size=(300, 260))
    preset = weights.transforms()
    expected = torchvision.transforms.Compose([
        torchvision.transforms.Resize(preset.crop_size[0], interpolation=preset.interpolation, antialias=True),
        torchvision.transforms.CenterCrop(preset.crop_size[0]), torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize(preset.mean, preset.std)])(img)
    assert torch.allclose(tower.preprocess(img), expected, atol=1e-5)


def test_transform_sizes_follow_weights_and_image_size():
    vit = torchvision.models.ViT_B_16_Weights.IMAGENET1K_SWAG_E2E_V1
    spec = spec_from_weights(vit, None)
    assert spec.size == 384
    spec = spec_from_weights(torchvision.models.ResNet18_Weights.DEFAULT, 112)
    assert spec.size == 112 and spec.mean == (0.485, 0.456, 0.406)
    assert eval_transform(spec)(image()).shape == (3, 112, 112)
    tower = vlkd.build_backbone("torchvision:mobilenet_v3_small", image_size=48)
    assert tower.preprocess(image(), train=True).shape == (3, 48, 48)
    flips = {tuple(tower.preprocess(image(), train=True).flatten()[:5].tolist()) for _ in range(6)}
    assert len(flips) > 1  # random augmentation


def test_unknown_tag_wrong_modality_and_wrong_name():
    with pytest.raises(UsageError, match="IMAGENET1K_V1"):
        vlkd.build_backbone("torchvision:resnet18", pretrained="IMAGENET9K")
    with pytest.raises(UsageError, match="image backbone"):
        vlkd.build_backbone("torchvision:resnet18", modality="text")
    with pytest.raises(UsageError, match="did you mean resnet18"):
        vlkd.build_backbone("torchvision:resnet19")


def _online(host: str = "download.pytorch.org") -> bool:
    try:
        socket.create_connection((host, 443), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(_online(), reason="needs a machine without internet")
def test_offline_download_fails_with_a_clear_message(tmp_path):
    with pytest.raises(UsageError, match="--cache-dir"):
        vlkd.build_backbone("torchvision:mobilenet_v3_small", pretrained="DEFAULT",
                            cache_dir=str(tmp_path))


def test_lock_and_partial_unlock_through_the_engine():
    # locking is the engine's one door (vlkd_core.sdk.lock); the factory has no lock option
    with pytest.raises(UsageError, match="lock"):
        vlkd.build_backbone("torchvision:mobilenet_v3_small", image_size=32, lock=True)
    tower = lock(vlkd.build_backbone("torchvision:mobilenet_v3_small", image_size=32))
    assert not any(p.requires_grad for p in tower.parameters())
    check_backbone(tower, name="locked")
    tower = lock(vlkd.build_backbone("torchvision:mobilenet_v3_small", image_size=32),
                 unlock="model.features.12.*,!*.1.*")
    names = {n for n, p in tower.named_parameters() if p.requires_grad}
    assert names == {"model.features.12.0.weight"}
    tower.train()
    keep_frozen_in_eval(tower)
    assert not tower.model.features[0].training and tower.model.features[12][0].training
    check_backbone(tower, name="partially unlocked")
