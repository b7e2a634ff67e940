"""TrainConfig: every option of `vlkd train`; config files (TOML/YAML) use the same keys."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

TEACHERS = ("text", "image", "none")
PRECISIONS = ("fp32", "bf16", "fp16")
AUGMENTS = ("openclip", "imagenet", "none")

# Ranges of the numeric options (types come from the annotations below): (lowest, inclusive).
# None values (where the annotation allows None) are not range-checked.
MINIMUM: dict[str, tuple[float, bool]] = {
    "embed_dim": (1, True), "prototypes": (1, True), "episode_size": (1, True), "workers": (0, True),
    "epochs": (1, True), "max_steps": (1, True), "batch_size": (1, True), "accum_steps": (1, True),
    "lr": (0, False), "image_lr": (0, False), "text_lr": (0, False), "weight_decay": (0, True),
    "warmup_steps": (0, True), "grad_clip": (0, True), "eval_every": (1, True),
    "save_every": (1, True), "keep_checkpoints": (1, True), "log_every": (1, True),
    "layer_decay": (0, False), "eval_wise_ft": (0, True),
}
# Upper bounds, the same way: (highest, inclusive).
MAXIMUM: dict[str, tuple[float, bool]] = {"layer_decay": (1, True), "eval_wise_ft": (1, True)}


FLAGS = {"image_options": "--image-option", "text_options": "--text-option", "head_options": "--head-option",
         "loss_options": "--loss-option", "data_options": "--data-option"}


def option_name(key: str, source: str) -> str:
    """How to name a TrainConfig key to the user: ``--max-steps`` for flags, ``file: max_steps``."""
    if source != "flags":
        return f"{source}: {key}"
    return FLAGS.get(key, f"--{key.replace('_', '-')}")


@dataclass
class TrainConfig:
    # towers
    image: str = "torchvision:resnet18"
    text: str = "hf:sentence-transformers/all-MiniLM-L6-v2"
    image_pretrained: str | None = None
    text_pretrained: str | None = None
    image_options: dict[str, Any] = field(default_factory=lambda: {"image_size": 48})
    text_options: dict[str, Any] = field(default_factory=dict)
    cache_dir: str | None = None          # where families cache downloaded weights
    # heads and roles
    image_head: str | None = "linear"     # a head name, or None
    text_head: str | None = None
    head_options: dict[str, Any] = field(default_factory=dict)
    embed_dim: int | None = None          # head output size (default: the teacher's width)
    prototypes: int = 1024                # prototype-head size for DINO/ProtoCPC-style losses
    teacher: str = "text"                 # text | image | none
    lock_image: bool = False
    lock_text: bool = False
    unlock: list[str] = field(default_factory=list)  # "image:layer4*,!*bn*" / "text:..."
    # loss
    loss: str = "infonce"                 # name[:weight],name[:weight]
    loss_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per loss name
    # data
    data: str = "shapes"
    data_options: dict[str, Any] = field(default_factory=dict)
    episode_size: int | None = None
    augment: str = "openclip"             # image-text augmentation preset: openclip | imagenet | none
    strict: bool = False                  # stop on the first unreadable image
    workers: int = 0
    # optimisation
    epochs: int = 3
    max_steps: int | None = None
    batch_size: int = 128
    accum_steps: int = 1
    lr: float = 2e-3
    image_lr: float | None = None
    text_lr: float | None = None
    weight_decay: float = 0.05
    layer_decay: float | None = None      # lr x decay^(L - depth) per tower layer (BEiT/timm); None: off
    warmup_steps: int = 20
    grad_clip: float | None = 1.0
    precision: str = "fp32"
    compile: bool = False
    seed: int = 0
    # frozen-tower feature cache
    feature_cache: str = "memory"         # memory | disk | none
    feature_cache_dir: str | None = None
    # evaluation
    eval: list[str] | None = None         # None: the evaluators the training data suggests
    eval_every: int | None = None         # epochs
    eval_wise_ft: float | None = None     # also evaluate (1 - a) * start + a * current weights
    # run directory, checkpoints, logging
    output_dir: str = "runs"
    name: str | None = None
    save_every: int | None = None         # steps
    keep_checkpoints: int = 2
    resume: str | None = None             # latest | PATH
    log_every: int = 10
    progress: bool = True

    def check_fields(self, source: str = "flags") -> None:
        """Every field against its annotation (values coerced where harmless, e.g. 2 -> 2.0 for a
        float) and its range in MINIMUM and MAXIMUM; a UsageError naming the option otherwise."""
        import math

        from ..typecheck import coerce, hints, show
        for key, ann in hints(type(self)).items():
            value = getattr(self, key)
            try:
                value = coerce(value, ann)
            except TypeError as exc:
                raise UsageError(f"{option_name(key, source)} must be {exc}, not {show(value)}") from None
            setattr(self, key, value)
            if key in MINIMUM and value is not None:
                low, inclusive = MINIMUM[key]
                ok = value >= low if inclusive else value > low
                if not ok or (isinstance(value, float) and not math.isfinite(value)):
                    bound = f">= {low}" if inclusive else f"> {low}"
                    raise UsageError(f"{option_name(key, source)} must be {bound}, not {show(value)}")
            if key in MAXIMUM and value is not None:
                high, inclusive = MAXIMUM[key]
                if not (value <= high if inclusive else value < high):
                    bound = f"<= {high}" if inclusive else f"< {high}"
                    raise UsageError(f"{option_name(key, source)} must be {bound}, not {show(value)}")

    def validate(self) -> None:
        self.check_fields()
        if self.teacher not in TEACHERS:
            raise UsageError(f"--teacher '{self.teacher}' must be one of {', '.join(TEACHERS)}")
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision '{self.precision}' must be one of {', '.join(PRECISIONS)}")
        if self.augment not in AUGMENTS:
            raise UsageError(f"--augment '{self.augment}' must be one of {', '.join(AUGMENTS)}")
        if self.feature_cache not in ("memory", "disk", "none"):
            raise UsageError(f"--feature-cache '{self.feature_cache}' must be memory, disk or none")
        if self.feature_cache == "disk" and not self.feature_cache_dir:
            raise UsageError("--feature-cache disk needs --feature-cache-dir")

    def eval_specs(self) -> list[str]:
        """The ``--eval`` specs to run: the user's, or those the data's plugin registered."""
        if self.eval is not None:
            return list(self.eval)
        from .evals import suggested_evals
        return suggested_evals(self.data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        clean = {k.replace("-", "_"): v for k, v in data.items()}
        unknown = sorted(set(clean) - known)
        if unknown:
            from ..errors import suggest
            hint = suggest(unknown[0], known)
            raise UsageError(f"{source}: unknown key '{unknown[0]}'"
                             + (f"; did you mean {', '.join(hint)}?" if hint else ""))
        cfg = cls(**clean)
        cfg.check_fields(source)
        return cfg

    def with_overrides(self, overrides: dict[str, Any]) -> "TrainConfig":
        data = self.to_dict()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return TrainConfig.from_dict(data, source="flags")


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or YAML run config (keys mirror the flags, with underscores or dashes)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--config: file '{path}' does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            import tomllib
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise UsageError(f"--config '{path}': use a .toml, .yaml or .json file")
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"--config '{path}': cannot parse: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise UsageError(f"--config '{path}': expected a table of options at the top level")
    return data
