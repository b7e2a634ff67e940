"""Shared pieces of the feature-store tests: tiny webdataset shards, a pretrained toy text
teacher (fixed weights, so a store and a live teacher hold the same tower), a dataset that SIGKILLs
its own process at a chosen sample, and file comparison."""
from __future__ import annotations

import io
import os
import random
import signal
from pathlib import Path

import torch
from safetensors.torch import save_file

from vlkd_core.hookspecs import hookimpl
from vlkd_core._model.toy import ToyImageTower, ToyTextTower

KILL_AT = "VLKD_TEST_KILL_AT"  # set in a forked child only: the sample index that kills it


def write_shards(folder: Path, shards: int, per_shard: int, captions: int = 1) -> str:
    """``shards`` webdataset tars of ``per_shard`` 16 px images; returns the brace pattern."""
    import webdataset as wds
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for s in range(shards):
        with wds.TarWriter(str(folder / f"shard-{s:06d}.tar")) as writer:
            for i in range(per_shard):
                image = Image.new("RGB", (16, 16), tuple(rng.randrange(256) for _ in range(3)))
                buf = io.BytesIO()
                image.save(buf, format="PNG")
                text = f"a {rng.choice(['red', 'blue', 'green'])} {rng.choice(['circle', 'square'])} {i}"
                writer.write({"__key__": f"{s:03d}{i:05d}", "png": buf.getvalue(), "txt": text})
    return str(folder / f"shard-{{000000..{shards - 1:06d}}}.tar")


def toy_weights(path: Path, modality: str) -> str:
    """A toy:tiny tower's weights in a file (``--pretrained``): fixed, whatever the seed."""
    from vlkd_core._model.toy import build_toy_backbone
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        save_file(build_toy_backbone("tiny", modality, image_size=32).state_dict(), str(path))
    return str(path)


class KillingShapes:
    """The shapes set; reading sample ``$VLKD_TEST_KILL_AT`` SIGKILLs this process."""

    def __init__(self, split: str = "train", **options):
        import vlkd_core as vlkd
        self.base = vlkd.build_dataset("shapes", split=split, **options)
        self.kill_at = int(os.environ.get(KILL_AT, "-1"))

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        if index == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.base[index]


class TwoCaptionShapes(KillingShapes):
    """Shapes whose samples carry two captions (as COCO's five), keyed ``s<index>``."""

    def __getitem__(self, index: int):
        item = dict(self.base[index])
        item["captions"] = [item["text"], f"a picture of {item['text']}"]
        item["key"] = f"s{index}"
        return item


class RowwiseText(ToyTextTower):
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.cat([super(RowwiseText, self).forward(ids[i:i + 1]) for i in range(len(ids))])


class RowwiseImage(ToyImageTower):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([super(RowwiseImage, self).forward(images[i:i + 1]) for i in range(len(images))])


def build_rowwise(model: str, modality: str = "image", pretrained: str | None = None,
                  image_size: int = 32) -> torch.nn.Module:
    """toy:tiny computing each row alone: its features do not depend on batch neighbours (a
    real transformer's do, in the last bits), so a store and a live teacher agree bit for bit
    whatever the batches."""
    tower = RowwiseText(16, 64) if modality == "text" else RowwiseImage(16, 64, image_size)
    if pretrained:
        from safetensors.torch import load_file
        tower.load_state_dict(load_file(pretrained))
    return tower


@hookimpl
def vlkd_register_backbones(register):
    register("rowwise", build_rowwise, models=["tiny"], description="toy:tiny, one row at a time")


@hookimpl
def vlkd_register_datasets(register):
    register("killing-shapes", KillingShapes, description="shapes that SIGKILLs its reader at a sample")
    register("two-caption-shapes", TwoCaptionShapes, description="shapes with two captions per sample")


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file of a store (temporary files too: none may be left behind)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def assert_two_processes_write_what_one_does(args: list[str], folder: Path) -> None:
    """`vlkd ARGS` into FOLDER/one on one process and FOLDER/two on two: the same files."""
    from train_helpers import run_cli
    one = run_cli(args + ["--out", str(folder / "one")])
    assert one.returncode == 0, one.stderr
    two = run_cli(args + ["--out", str(folder / "two"), "--nproc-per-node", "2"])
    assert two.returncode == 0, two.stderr
    assert folder_bytes(folder / "one") == folder_bytes(folder / "two")
