"""encode_dataset: the DataLoader path (preprocessing in workers, tensors to the model) gives the
features ``model.encode_images`` gives on PIL lists, keeps labels and captions in order, skips
unreadable samples and leaves the global random stream alone."""
import pytest
import torch

import vlkd_core
from vlkd_core import testing
from vlkd_core.errors import DataError
from vlkd_core.evaluation.features import encode_dataset


@pytest.fixture(scope="module")
def model():
    return testing.toy_dual_encoder()


@pytest.fixture(scope="module")
def data():
    return vlkd_core.build_dataset("shapes", split="test", size=16, length=23)


class PILOnly:
    """A model that only offers the documented evaluator API (PIL lists), no tensor path."""

    def __init__(self, model):
        self.model = model

    def encode_images(self, images):
        return self.model.encode_images(images)


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_path_equals_pil_path(model, data, workers):
    fast = encode_dataset(model, data, batch_size=5, show_progress=False, workers=workers)
    slow = encode_dataset(PILOnly(model), data, batch_size=5, show_progress=False)
    assert torch.equal(fast.image_features, slow.image_features)
    assert fast.image_features.shape[0] == len(data)
    assert fast.labels.tolist() == slow.labels.tolist() == [data[i]["label"] for i in range(len(data))]
    assert fast.texts == [data[i]["text"] for i in range(len(data))]
    assert fast.text_to_image == list(range(len(data)))


def test_limit_and_features_usable_with_autograd(model, data):
    enc = encode_dataset(model, data, batch_size=4, limit=9, show_progress=False, workers=0)
    assert enc.image_features.shape[0] == 9 and len(enc.labels) == 9
    weight = torch.zeros(enc.image_features.shape[1], 3, requires_grad=True)  # e.g. a probe head
    (enc.image_features @ weight).sum().backward()
    assert weight.grad is not None


class Holes(torch.utils.data.Dataset):
    """Every third sample unreadable (None), several captions per sample."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        if i % 3 == 1:
            return None
        item = self.base[i]
        return {"image": item["image"], "captions": [f"{i} a", f"{i} b"]}


@pytest.mark.parametrize("workers", [0, 1])
def test_unreadable_samples_are_skipped_and_captions_follow_their_image(model, data, workers):
    enc = encode_dataset(model, Holes(data), batch_size=4, show_progress=False, workers=workers)
    kept = [i for i in range(len(data)) if i % 3 != 1]
    assert enc.image_features.shape[0] == len(kept)
    assert enc.texts == [f"{i} {s}" for i in kept for s in "ab"]
    assert enc.text_to_image == [row for row in range(len(kept)) for _ in "ab"]
    assert len(enc.labels) == 0
    expected = model.encode_images([data[i]["image"] for i in kept])
    assert torch.allclose(enc.image_features, expected, atol=1e-6)


def test_missing_labels_are_an_error_when_needed(model):
    unlabelled = [{"image": item["image"], "text": "x"} for item in
                  (vlkd_core.build_dataset("shapes", split="test", size=16, length=3)[i] for i in range(3))]
    with pytest.raises(DataError, match="no 'label'"):
        encode_dataset(model, unlabelled, show_progress=False, need_labels=True, workers=0)


def test_global_random_stream_untouched(model, data):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    encode_dataset(model, data, batch_size=4, show_progress=False, workers=1)
    assert torch.equal(torch.rand(3), expected)


def test_workers_option_validated():
    with pytest.raises(vlkd_core.errors.UsageError, match="workers"):
        vlkd_core.build_evaluator("zeroshot", workers=-1)


def test_split_transform_gives_the_eval_transform_values():
    """Per-sample uint8 + per-batch normalisation equals the whole eval transform per sample,
    bit for bit, for RGB, grayscale, transparent and non-square images."""
    import numpy as np
    from PIL import Image
    from vlkd_core.evaluation.features import split_transform
    from vlkd_core._model.images import ImageSpec, eval_transform
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)),
              Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)),
              Image.fromarray(rng.integers(0, 256, (20, 50, 4), dtype=np.uint8), "RGBA")]
    spec = ImageSpec(24, (0.48, 0.46, 0.41), (0.27, 0.26, 0.28))
    whole = eval_transform(spec)
    per_sample, per_batch = split_transform(whole)
    assert per_batch is not None
    assert per_sample(images[0]).dtype == torch.uint8
    batch = per_batch(torch.stack([per_sample(im) for im in images]))
    assert torch.equal(batch, torch.stack([whole(im) for im in images]))


def test_split_transform_leaves_other_transforms_whole():
    from vlkd_core.evaluation.features import split_transform
    custom = lambda image: torch.zeros(3, 4, 4)  # noqa: E731
    assert split_transform(custom) == (custom, None)
