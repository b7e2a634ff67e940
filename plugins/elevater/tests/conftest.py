"""Shared fixtures: a tiny ELEVATER root (a multi-class and a multi-label set) and a toy model."""
import pytest
import torch

from vlkd_core import testing
from vlkd_elevater.testing import write_dataset

VOC = ['aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow', 'diningtable',
       'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor']


def voc_labels(n: int, step: int) -> list[list[int]]:
    """Two labels per image with every class present (the toolkit's few-shot sampler needs that)."""
    return [sorted({(i * step) % 20, (i * step + 7) % 20}) for i in range(n)]


@pytest.fixture(scope="session")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("elevater")
    write_dataset(root / "mnist", [str(i) for i in range(10)],
                  {"train.txt": ("train.zip", [[i % 10] for i in range(40)]),
                   "test.txt": ("val.zip", [[i % 10] for i in range(20)])})
    write_dataset(root / "voc-2007-classification", VOC, {"train.txt": ("train.zip", voc_labels(24, 1)),
                                                          "test.txt": ("test.zip", voc_labels(12, 3))})
    return root


@pytest.fixture(scope="session")
def model():
    torch.set_num_threads(1)
    return testing.toy_dual_encoder()
