"""What one `vlkd features extract` does, checked without torch: the launcher of a
multi-process extraction validates it before any process imports torch (see :mod:`.extraction`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._model.augment_presets import RANDOM_PRESETS
from .._runfiles.folders import STORE, claim
from ..errors import UsageError
from ..training.config import TowerConfig
from . import layout


@dataclass
class ExtractConfig:
    """One extraction. ``tower``: the locked tower whose features are stored, named as every
    command names it (``TowerConfig("text", "hf:...", options={...})``, from ``--text SPEC``
    ``--text-pretrained`` ``--text-option``); its side is the store's side. Only its spec,
    pretrained and options matter: a store holds the tower's own features, the head trains on
    them. None with ``teacher_model`` (a reinforced store)."""

    data: str
    tower: TowerConfig | None
    out: str
    data_options: dict[str, Any] = field(default_factory=dict)
    split: str = "train"
    cache_dir: str | None = None
    dtype: str = "fp32"
    batch_size: int = 256
    shard_size: int = 4096
    seed: int = 0          # towers built from scratch get the same weights on every rank; the views' draws
    progress: bool = True
    # a reinforced store (:mod:`.reinforce`): a teacher model's embeddings of K training views
    teacher_model: str | None = None
    teacher_pretrained: str | None = None
    augmentations: int | None = None
    augment: str = "openclip"

    @property
    def reinforced(self) -> bool:
        return self.teacher_model is not None

    def validate(self) -> None:
        if self.tower is not None and not isinstance(self.tower, TowerConfig):
            raise UsageError(f"ExtractConfig.tower is a TowerConfig(side, spec, ...), not {self.tower!r}")
        if (self.tower is None) == (self.teacher_model is None):
            raise UsageError("give --image SPEC or --text SPEC (one locked tower's features) or --teacher-model "
                             "with --augmentations K (a reinforced store), not both" if self.tower else
                             "give --image SPEC or --text SPEC (the side whose features are stored), "
                             "or --teacher-model")
        if self.reinforced and (self.augmentations is None or self.augmentations < 1):
            raise UsageError("--teacher-model stores K training views per image: add --augmentations K (K >= 1)")
        if self.reinforced and self.augment not in RANDOM_PRESETS:
            raise UsageError(f"--augmentations stores random views: --augment {self.augment} draws none "
                             f"(use {' or '.join(RANDOM_PRESETS)})")
        if not self.reinforced and self.augmentations is not None:
            raise UsageError("--augmentations needs --teacher-model (a reinforced store)")
        if self.tower is not None and self.tower.side not in ("text", "image"):
            raise UsageError(f"the tower's side must be text or image, not '{self.tower.side}'")
        if self.dtype not in layout.DTYPES:
            raise UsageError(f"--dtype must be one of {', '.join(layout.DTYPES)}, not '{self.dtype}'")
        for flag, value in (("--batch-size", self.batch_size), ("--shard-size", self.shard_size)):
            if value < 1:
                raise UsageError(f"{flag} must be >= 1, not {value}")

    def check_out(self) -> None:
        """``--out`` is absent, empty or this store to finish (see :mod:`vlkd_core._runfiles.folders`).
        The main rank's call: the others would see its first files appear."""
        claim(self.out, "--out", STORE, resume=True)
