"""fashion-mnist (IDX files) and torchvision-from-local-root datasets, and the shipped prompt sets."""
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

import vlkd_core
from vlkd_core import testing
from vlkd_core.errors import UnknownComponentError, UsageError
from vlkd_core.evaluation.prompts import available_prompt_sets, load_classnames, load_templates


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def make_mnist_files(root: Path, n: int = 12, compress: bool = True, prefixes=("train", "t10k")) -> np.ndarray:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 10
    for prefix in prefixes:
        ext = ".gz" if compress else ""
        write_idx(root / f"{prefix}-images-idx3-ubyte{ext}", rng.integers(0, 256, (n, 28, 28)), compress)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{ext}", labels, compress)
    return labels


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_reads_idx_files(tmp_path, compress):
    labels = make_mnist_files(tmp_path, compress=compress)
    ds = vlkd_core.build_dataset("fashion-mnist", root=str(tmp_path), split="test")
    testing.check_dataset(ds)
    assert len(ds) == 12 and [ds[i]["label"] for i in range(12)] == labels.tolist()
    assert ds[0]["image"].size == (28, 28)
    item = ds[3]
    assert ds.classnames[3] == "dress" and "dress" in item["text"]
    first = vlkd_core.build_dataset("fashion-mnist", root=str(tmp_path), caption="first", length=5)
    assert len(first) == 5 and first[3]["text"] == "a photo of a dress."


def test_fashion_mnist_missing_files_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="root"):
        vlkd_core.build_dataset("fashion-mnist", root=str(tmp_path / "nowhere"))
    make_mnist_files(tmp_path, prefixes=("train",))
    with pytest.raises(UsageError, match="t10k-images-idx3-ubyte"):
        vlkd_core.build_dataset("fashion-mnist", root=str(tmp_path), split="test")


def test_fashion_mnist_zeroshot_runs_end_to_end(tmp_path):
    make_mnist_files(tmp_path, n=20)
    metrics = testing.check_evaluator(vlkd_core.build_evaluator(
        "zeroshot", dataset="fashion-mnist", dataset_options={"root": str(tmp_path)}), testing.toy_dual_encoder())
    assert 0.0 <= metrics["zeroshot/top1"] <= 1.0


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist_package():
    ds = vlkd_core.build_dataset("fashion-mnist", split="test")
    assert len(ds) == 10000 and ds[0]["label"] == 9  # the first test image is an ankle boot


def test_torchvision_mnist_from_local_root(tmp_path):
    labels = make_mnist_files(tmp_path / "MNIST" / "raw", n=10, compress=False)
    ds = vlkd_core.build_dataset("torchvision", dataset="MNIST", root=str(tmp_path), split="train")
    testing.check_dataset(ds)
    assert [ds[i]["label"] for i in range(10)] == labels.tolist()
    assert ds[7]["text"] == 'a photo of the number: "7".'


def test_torchvision_missing_files_and_bad_names(tmp_path):
    with pytest.raises(UsageError, match="CIFAR10.*root="):
        vlkd_core.build_dataset("torchvision", dataset="CIFAR10", root=str(tmp_path))
    with pytest.raises(UsageError, match="does not exist"):
        vlkd_core.build_dataset("torchvision", dataset="CIFAR10", root=str(tmp_path / "nope"))
    with pytest.raises(UnknownComponentError, match="CIFAR10"):
        vlkd_core.build_dataset("torchvision", dataset="CIFAR-10", root=str(tmp_path))


def test_shipped_prompt_sets():
    assert {"cifar10", "cifar100", "imagenet", "fashion-mnist", "mnist", "stl10", "food101"} <= set(available_prompt_sets())
    sizes = {"cifar10": 10, "cifar100": 100, "imagenet": 1000, "mnist": 10, "stl10": 10, "food101": 101, "fashion-mnist": 10}
    for name, n in sizes.items():
        assert len(load_classnames(name)) == n, name
        assert all("{}" in t for t in load_templates(name))
    assert len(load_templates("imagenet")) == 80 and load_classnames("imagenet")[0] == "tench"
    assert load_classnames("cifar-100") == load_classnames("cifar100")
    with pytest.raises(UnknownComponentError):
        load_classnames("cifar1000")
