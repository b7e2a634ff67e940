"""A reinforced feature store (MobileCLIP's dataset reinforcement): a teacher model's embeddings
of K fixed training augmentations of every image, the crops that produced them, and its
embedding of every caption.

    vlkd features extract --data csv --data-option path=train.csv \\
        --teacher-model runs/teacher --augmentations 4 --seed 0 --out store
    vlkd train ... --teacher-model runs/teacher --teacher-features store

Entries (beside :mod:`.layout`'s caption entries ``<key>#<caption id>``):

    <key>@<v>        the teacher's image embedding of view v (0 <= v < K)
    <key>@<v>:crop   int32 [7]: the source image's height and width, the crop box (top, left,
                     height, width) and the flip, as the training preset drew them

View v of a sample is drawn from (seed, sample key, v) alone (:func:`view_seed`), the very draw
`vlkd train --augmentations K` makes with a live teacher, so the two runs see the same views; a
run from the store renders the *recorded* crop at the student's own size (:class:`RecordedCrops`)
and reads the teacher's features instead of running it. The store's seed, preset and K must be
the run's (checked before the first step).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..datasets.captions import captions_of
from ..datasets.keys import caption_entry
from ..datasets.sampling import view_seed
from ..errors import UsageError
from .._model.augment_presets import RANDOM_PRESETS
from .._model.images import ImagePreprocess, RandomCropTransform, as_uint8, render, train_transform
from . import layout
from .encode import TORCH_DTYPES, weights_sha256
from .fingerprint import data_fingerprint
from .sources import Unit

KIND = "reinforced"
CROP = ":crop"
KEY_SCHEME = {"image": "<sample key>@<view>, and <sample key>@<view>:crop (int32 [H, W, top, left, h, w, flip])",
              "text": "<sample key>#<first 16 hex digits of sha1(caption utf-8)>, one per caption"}


def view_entry(key: str, view: int) -> str:
    return f"{key}@{view}"


def crop_entry(key: str, view: int) -> str:
    return f"{key}@{view}{CROP}"


def crop_drawer(augment: str, spec: Any) -> RandomCropTransform:
    """The preset's random crop (its draw depends on the source image alone, not on ``spec``)."""
    crop = train_transform(spec, augment)
    if not isinstance(crop, RandomCropTransform):
        raise UsageError(f"--augmentations stores random views: --augment {augment} draws none "
                         f"(use {' or '.join(RANDOM_PRESETS)})")
    return crop


def draw_view(x: torch.Tensor, crop: RandomCropTransform, seed: int, key: str, view: int) -> tuple[tuple, bool]:
    """View ``view`` of sample ``key``: the preset's crop box and flip from its own seed."""
    return crop.draw(x, torch.Generator().manual_seed(view_seed(seed, key, view)))


def settings_of(cfg: Any, teacher: Any, units: int) -> dict[str, Any]:
    """Everything a reinforced store's entries depend on (a restart must match it)."""
    spec = teacher.image_spec
    return {"format": layout.FORMAT, "version": layout.VERSION, "side": "model", "kind": KIND,
            "model": {"spec": cfg.teacher_model, "pretrained": cfg.teacher_pretrained, "options": {}},
            "weights_sha256": weights_sha256(teacher), "logit_scale": teacher.logit_scale,
            "preprocessing": {"transform": "the training preset's crop, rendered at the teacher's image_spec",
                              "image_spec": {"size": spec.size, "mean": list(spec.mean), "std": list(spec.std),
                                             "interpolation": getattr(spec.interpolation, "value", str(spec.interpolation))}},
            "augmentations": cfg.augmentations, "augment": cfg.augment, "seed": cfg.seed,
            "dtype": cfg.dtype, "width": int(teacher.output_dim), "batch_size": cfg.batch_size,
            "data": {"name": cfg.data, "options": cfg.data_options, "split": cfg.split},
            "data_fingerprint": data_fingerprint(cfg.data_options),
            "shard_size": cfg.shard_size, "units": units, "key_scheme": KEY_SCHEME}


class ReinforcedEncoder:
    """One unit's entries: per sample, K views through the teacher and their crops, and every
    caption through the teacher. Batches start at the unit's beginning (so 1 and N processes
    write the same bytes)."""

    def __init__(self, teacher: Any, views: int, seed: int, augment: str, batch_size: int, dtype: str,
                 device: torch.device):
        self.teacher, self.views, self.seed, self.batch_size = teacher, views, seed, batch_size
        self.dtype, self.device = TORCH_DTYPES[dtype], device
        self.crop = crop_drawer(augment, teacher.image_spec)

    def encode(self, unit: Unit, advance: Callable[[int], None]) -> tuple[dict[str, torch.Tensor], int]:
        out: dict[str, torch.Tensor] = {}
        images: list[tuple[str, torch.Tensor]] = []
        texts: list[tuple[str, str]] = []
        samples = 0

        def flush_images() -> None:
            feats = self.teacher.encode_image(torch.stack([x for _, x in images]), self.device)
            for (entry, _), f in zip(images, feats.to("cpu", self.dtype)):
                out[entry] = f.clone()  # own storage: safetensors refuses shared tensors
            images.clear()

        def flush_texts() -> None:
            feats = self.teacher.encode_texts([t for _, t in texts], self.device)
            for (entry, _), f in zip(texts, feats.to("cpu", self.dtype)):
                out[entry] = f.clone()
            texts.clear()

        with torch.no_grad():
            for n, (key, item) in enumerate(unit.items(), 1):
                x = as_uint8(item["image"])
                for view in range(self.views):
                    box, flip = draw_view(x, self.crop, self.seed, key, view)
                    out[crop_entry(key, view)] = torch.tensor([x.shape[-2], x.shape[-1], *box, int(flip)],
                                                              dtype=torch.int32)
                    images.append((view_entry(key, view), render(x, box, flip, self.teacher.image_spec)))
                    if len(images) == self.batch_size:
                        flush_images()
                for caption in dict.fromkeys(captions_of(item)):  # a sample's repeated caption once
                    texts.append((caption_entry(key, caption), caption))
                    if len(texts) == self.batch_size:
                        flush_texts()
                advance(n - samples)
                samples = n
            if images:
                flush_images()
            if texts:
                flush_texts()
        return out, samples


# -- training from a reinforced store --------------------------------------------------------------
def is_reinforced(store: Any) -> bool:
    return store.manifest.get("kind") == KIND


class RecordedCrops:
    """The store's crop of every (sample, view), held in memory (7 int32 per view), rendered at
    the student's own size: the loader's replay of the views the teacher embedded."""

    def __init__(self, store: Any):
        self.folder = store.folder
        self.crops: dict[str, torch.Tensor] = {}
        for entry in store.entries():
            if entry.endswith(CROP):
                self.crops[entry[:-len(CROP)]] = store.get_raw(entry)

    def render(self, image: Any, key: str, view: int, transform: Any) -> torch.Tensor:
        if not isinstance(transform, ImagePreprocess):
            raise UsageError("a reinforced store's crops are rendered at the image tower's image_spec; "
                             "this tower declares none")
        crop = self.crops.get(view_entry(key, view))
        if crop is None:
            raise UsageError(f"teacher feature store '{self.folder}': no crop for view {view} of sample '{key}'")
        x = as_uint8(image)
        height, width, top, left, h, w, flip = (int(v) for v in crop)
        if (x.shape[-2], x.shape[-1]) != (height, width):
            raise UsageError(f"teacher feature store '{self.folder}': sample '{key}' is {x.shape[-1]}x{x.shape[-2]} px "
                             f"now but was {width}x{height} when the store was extracted; extract it again")
        return render(x, (top, left, h, w), bool(flip), transform.spec)


class ReinforcedTeacher:
    """The teacher model's features of a step's batch, read from the store."""

    def __init__(self, store: Any):
        self.store = store

    def image(self, keys: list[str], views: torch.Tensor) -> torch.Tensor:
        return self.store.get([view_entry(k, int(v)) for k, v in zip(keys, views)])

    def text(self, keys: list[str], texts: list[str]) -> torch.Tensor:
        return self.store.get([caption_entry(k, t) for k, t in zip(keys, texts)])


def check_run(store: Any, cfg: Any, teacher: Any) -> None:
    """The run must draw the store's views and be taught by the store's teacher."""
    m = store.manifest
    if not cfg.teacher_model:
        raise store.error(f"holds the features of --teacher-model {m['model'].get('spec')}: name it "
                          "(its architecture and logit scale are the run's teacher's)")
    if m["model"].get("spec") != cfg.teacher_model or m["model"].get("pretrained") != cfg.teacher_pretrained:
        raise store.error(f"holds features of --teacher-model {m['model'].get('spec')!r} "
                          f"(pretrained {m['model'].get('pretrained')!r}), not {cfg.teacher_model!r}")
    if m.get("weights_sha256") != weights_sha256(teacher):
        raise store.error(f"--teacher-model {cfg.teacher_model}'s weights differ from the ones the store "
                          "was extracted with; extract it again")
    for flag, ours, theirs in (("--seed", cfg.seed, m.get("seed")), ("--augment", cfg.augment, m.get("augment")),
                               ("--augmentations", cfg.augmentations, m.get("augmentations"))):
        if ours != theirs:
            raise store.error(f"its views were drawn with {flag} {theirs}, but the run has {flag} {ours}")


def covered(store: Any, key: str, item: dict) -> str | None:
    """The first entry of sample ``key`` the store lacks."""
    views = int(store.manifest["augmentations"])
    wanted = [e for v in range(views) for e in (view_entry(key, v), crop_entry(key, v))]
    wanted += [caption_entry(key, c) for c in captions_of(item)]
    return store.missing(wanted)
