"""TrainConfig: every option of `vlkd train`; config files (TOML/YAML) use the same keys."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .evals import suggested_evals


@dataclass(frozen=True)
class Option:
    """How one TrainConfig field appears to users: its help, CLI flags, range and form.

    ``form``: ``value`` (one value), ``switch`` (``--x/--no-x``), ``pairs`` (repeatable
    ``key=value`` into a dict), ``loss-pairs`` (repeatable ``LOSS.option=value``), ``list``
    (repeatable), ``name`` (a component name, ``none`` for None), ``evals`` (repeatable eval
    specs, ``none`` clears what came before).
    """

    help: str
    flags: tuple[str, ...] = ()
    low: tuple[float, bool] | None = None     # (bound, inclusive)
    high: tuple[float, bool] | None = None
    choices: tuple[str, ...] = ()
    form: str = "value"
    resumable: bool = False                   # may differ from the saved config on --resume

    def flag(self, key: str) -> str:
        return self.flags[0] if self.flags else f"--{key.replace('_', '-')}"


def option(default: Any = dataclasses.MISSING, help: str = "", *, factory: Any = None, **meta: Any) -> Any:
    """A TrainConfig field: its default written once, with its :class:`Option`."""
    info = {"option": Option(help, **meta)}
    if factory is not None:
        return field(default_factory=factory, metadata=info)
    return field(default=default, metadata=info)


POSITIVE, NON_NEGATIVE = (0, False), (0, True)
AT_LEAST_1 = (1, True)


def options() -> dict[str, Option]:
    """Every training option by TrainConfig key."""
    return {f.name: f.metadata["option"] for f in dataclasses.fields(TrainConfig)}


def option_name(key: str, source: str) -> str:
    """How to name a TrainConfig key to the user: ``--max-steps`` for flags, ``file: max_steps``."""
    if source != "flags":
        return f"{source}: {key}"
    known = options()
    return known[key].flag(key) if key in known else f"--{key.replace('_', '-')}"


# One tower's options, written once for both sides ({side}: image | text).
TOWER_HELP = {
    "spec": "{Side} tower, family:model.",
    "pretrained": "{Side} weights: a family tag or a local path.",
    "options": "key=value for the {side} tower (repeatable){example} (default: the tower's own).",
    "head": "Head on the {side} tower (linear, mlp, ...; 'none' for none).",
    "lr": "Learning rate of the {side} tower and head (default: --lr).",
    "lock": "Freeze the {side} tower.",
}


def tower_option(side: str, part: str, default: Any = None, **meta: Any) -> Any:
    """The TrainConfig field of one part of one tower, its help from :data:`TOWER_HELP`."""
    example = ", e.g. image_size=64" if side == "image" else ""  # text families share no option to show
    text = TOWER_HELP[part].format(side=side, Side=side.capitalize(), example=example)
    forms = {"options": dict(factory=dict, flags=(f"--{side}-option",), form="pairs"),
             "head": dict(form="name"), "lr": dict(low=POSITIVE), "lock": dict(form="switch")}
    extra = {**forms.get(part, {}), **meta}
    if "factory" in extra:
        return option(help=text, **extra)
    return option(default, text, **extra)


@dataclass(frozen=True)
class TowerConfig:
    """One tower's settings, as every command names them (``--image``, ``--image-pretrained``,
    ``--image-option``, ``--image-head``, ``--image-lr``, ``--lock-image``; ``text`` alike):
    a view of a :class:`TrainConfig`'s per-side fields (``cfg.tower("image")``), which stay flat
    in config files and run folders."""

    side: str
    spec: str
    pretrained: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    head: str | None = None
    lr: float | None = None
    lock: bool = False

    FIELDS = ("spec", "pretrained", "options", "head", "lr", "lock")

    @staticmethod
    def key(side: str, part: str) -> str:
        """The TrainConfig key of one part: ``("image", "options")`` -> ``image_options``."""
        return {"spec": side, "lock": f"lock_{side}"}.get(part, f"{side}_{part}")


@dataclass
class TrainConfig:
    # towers
    image: str = tower_option("image", "spec", "torchvision:resnet18")
    text: str = tower_option("text", "spec", "hf:sentence-transformers/all-MiniLM-L6-v2")
    image_pretrained: str | None = tower_option("image", "pretrained")
    text_pretrained: str | None = tower_option("text", "pretrained")
    image_options: dict[str, Any] = tower_option("image", "options")
    text_options: dict[str, Any] = tower_option("text", "options")
    cache_dir: str | None = option(None, "Where towers cache downloaded weights.", resumable=True)
    recipe: str | None = option("default", "Values tuned for one job (`vlkd components list recipes`), filling "
                                "the options you do not set while the towers and data are the recipe's; "
                                "named explicitly, for any job; 'none' for none.", form="name")
    # heads and roles
    image_head: str | None = tower_option("image", "head", "linear")
    text_head: str | None = tower_option("text", "head")
    head_options: dict[str, Any] = option(help="key=value for the heads (repeatable).", factory=dict,
                                          flags=("--head-option",), form="pairs")
    embed_dim: int | None = option(None, "Head output width (default: the teacher's).", low=AT_LEAST_1)
    prototypes: int = option(1024, "Prototype count for DINO/ProtoCPC-style losses.", low=AT_LEAST_1)
    prototype_head: str | None = option(None, "Head for prototype losses (default: the one the loss names).")
    teacher: str = option("text", "Which tower is the locked teacher.", choices=("text", "image", "none"))
    teacher_model: str | None = option(None, "A trained dual encoder teaching the student's towers: a vlkd run, "
                                       "checkpoint or safetensors export, a family:model of both towers "
                                       "(openclip:ViT-B-32), or IMAGE_SPEC+TEXT_SPEC. Locked; losses read its "
                                       "features (teacher_image, teacher_text, teacher_logit_scale).")
    teacher_pretrained: str | None = option(None, "Weights of --teacher-model given as towers: a family tag or "
                                            "a local path (A+B for two tower specs).")
    init_from: str | None = option(None, "Start a new run from another run's (or checkpoint's) towers and heads, "
                                   "e.g. a LiT run before unlocking its text tower; losses, optimizer and data "
                                   "start fresh.")
    student_init_from_teacher: bool = option(False, "Build the student's towers and heads as copies of the "
                                             "--teacher-model's, with its weights (TinyCLIP's weight inheritance; "
                                             "replaces --image/--text and their heads).", form="switch")
    inherit_weights: bool = option(True, "With --student-init-from-teacher: start from the teacher's weights "
                                   "(off: the same architecture, freshly initialised, the baseline).", form="switch")
    inherit_layers: list[str] = option(help="SIDE:i,j,... blocks of the teacher's tower the student keeps, e.g. "
                                       "'image:0,2,4,6' 'text:0,3' (repeatable; default: all).", factory=list,
                                       form="list")
    lock_image: bool = tower_option("image", "lock", False)
    lock_text: bool = tower_option("text", "lock", False)
    unlock: list[str] = option(help="TOWER:patterns kept trainable in a locked tower, e.g. 'image:layer4*,!*bn*'.",
                               factory=list, flags=("--unlock", "--unlock-pattern"), form="list")
    # loss
    loss: str = option("infonce", "name[:weight],... of the losses to sum.")
    loss_options: dict[str, dict[str, Any]] = option(help="LOSS.option=value (repeatable), e.g. seed.queue_size=4096.",
                                                     factory=dict, flags=("--loss-option",), form="loss-pairs")
    # data
    data: str = option("shapes", "Training dataset name.")
    data_options: dict[str, Any] = option(help="key=value for the dataset (repeatable).", factory=dict,
                                          flags=("--data-option",), form="pairs")
    episode_size: int | None = option(None, "A fresh random subset of this many samples per epoch.", low=AT_LEAST_1)
    augment: str = option("openclip", "Training augmentation: openclip (crop 90-100%, no flip) | imagenet | none.",
                          choices=("openclip", "imagenet", "none"))
    augmentations: int | None = option(None, "K fixed augmentations per image (MobileCLIP's dataset "
                                       "reinforcement): each epoch a sample shows one of them, view v drawn "
                                       "from (--seed, sample key, v); the views a reinforced store "
                                       "(`vlkd features extract --augmentations K`) holds. Default: a fresh "
                                       "draw every epoch.", low=AT_LEAST_1)
    strict: bool = option(False, "Stop at the first unreadable image.", form="switch", resumable=True)
    workers: int | None = option(None, "DataLoader worker processes; raise it when decoding images starves a GPU "
                                 "(default: decided at run time, one per 4 cores up to 4, none for an epoch "
                                 "of two batches or fewer).", low=NON_NEGATIVE, resumable=True)
    # optimisation
    epochs: int = option(3, "Passes over the training data.", low=AT_LEAST_1, resumable=True)
    max_steps: int | None = option(None, "Stop after this many optimizer steps.", low=AT_LEAST_1, resumable=True)
    batch_size: int = option(128, "Per-process batch size.", low=AT_LEAST_1)
    accum_steps: int = option(1, "Gradient accumulation steps.", low=AT_LEAST_1)
    lr: float = option(5e-4, "Peak learning rate, reached after the warm-up (OpenCLIP's default for AdamW).",
                       low=POSITIVE)
    image_lr: float | None = tower_option("image", "lr")
    text_lr: float | None = tower_option("text", "lr")
    weight_decay: float = option(0.05, "Weight decay (not on norms, biases and temperatures).", low=NON_NEGATIVE)
    layer_decay: float | None = option(None, "Layer-wise lr decay: a tower layer at depth d of L trains at "
                                       "lr x decay^(L-d) (0 < decay <= 1).", low=POSITIVE, high=(1, True))
    warmup_steps: int | None = option(None, "Linear warm-up steps (default: 5 % of the run's optimizer steps).",
                                      low=NON_NEGATIVE)
    optimizer: str = option("adamw", "Optimizer (`vlkd components list optimizers`); it gets the engine's "
                            "parameter groups: --lr, --weight-decay, per-tower lr, --layer-decay.")
    optimizer_options: dict[str, Any] = option(help="key=value for the optimizer (repeatable), e.g. betas=[0.9,0.95] "
                                               "for small batches, or sgd's nesterov=true.", factory=dict,
                                               flags=("--optimizer-option",), form="pairs")
    scheduler: str = option("warmup-cosine", "Learning-rate schedule after the linear warm-up "
                            "(`vlkd components list schedulers`); constant for runs you extend later.")
    scheduler_options: dict[str, Any] = option(help="key=value for the schedule (repeatable), e.g. "
                                               "final_lr_ratio=0.1.", factory=dict, flags=("--scheduler-option",),
                                               form="pairs")
    grad_clip: float | None = option(1.0, "Max gradient norm (0 disables).", low=NON_NEGATIVE)
    precision: str = option("fp32", "Numeric precision.", choices=("fp32", "bf16", "fp16"))
    compile: bool = option(False, "torch.compile the towers.", form="switch")
    fsdp: bool = option(False, "Shard the trainable towers across processes with FSDP2 (per block); "
                        "checkpoints are sharded too.", form="switch")
    grad_checkpointing: bool = option(False, "Recompute the trainable towers' activations in the "
                                      "backward pass (less memory, more compute).", form="switch")
    optimizer_in_backward: bool = option(False, "Step each parameter as soon as backward has its gradient and "
                                         "free it (never a full set of gradients in memory); one process, "
                                         "--grad-clip 0, --accum-steps 1, not fp16.", form="switch")
    channels_last: str = option("auto", "Image tower weights in NHWC memory format (faster convolutions); "
                                "auto: on when it trains and convolutions hold most of its parameters.",
                                choices=("auto", "on", "off"))
    seed: int = option(0, "Seed of initialisation, sampling and augmentation.")
    # frozen-tower feature cache
    feature_cache: str = option("memory", "Frozen-tower feature cache.", choices=("memory", "disk", "none"), resumable=True)
    feature_cache_dir: str | None = option(None, "Folder of the disk feature cache.", resumable=True)
    teacher_features: str | None = option(None, "Feature store of the teacher (`vlkd features extract`): its "
                                          "features are read by sample key and the teacher tower is never built.")
    # evaluation
    eval: list[str] | None = option(None, "NAME[:key=value,...] (repeatable; 'none' for none; default: "
                                    "the evaluators the training data suggests).", flags=("--eval",), form="evals", resumable=True)
    eval_every: int | None = option(None, "Evaluate every N epochs (and always at the end).", low=AT_LEAST_1, resumable=True)
    eval_wise_ft: float | None = option(None, "Also evaluate WiSE-FT weights (1-A)*start + A*current "
                                        "(metrics 'wise-ft/...').", low=NON_NEGATIVE, high=(1, True), resumable=True)
    # run directory, checkpoints, logging
    output_dir: str = option("runs", "Folder of the run folders.", resumable=True)
    name: str | None = option(None, "Run name: the run directory is OUTPUT_DIR/NAME (default: time, tower, loss).", resumable=True)
    save_every: int | None = option(None, "Checkpoint every N steps (and at the end).", low=AT_LEAST_1, resumable=True)
    keep_checkpoints: int = option(2, "Checkpoints kept (the newest).", low=AT_LEAST_1, resumable=True)
    resume: str | None = option(None, "'latest' (of --name) or a run/checkpoint path.", resumable=True)
    log_every: int = option(10, "Log metrics every N steps.", low=AT_LEAST_1, resumable=True)
    progress: bool = option(True, "Show a progress bar.", form="switch", resumable=True)

    def check_fields(self, source: str = "flags") -> None:
        """Every field against its annotation (values coerced where harmless, e.g. 2 -> 2.0 for a
        float), its range and its choices; a UsageError naming the option otherwise."""
        from .._host.typecheck import coerce, hints, show
        declared = options()
        for key, ann in hints(type(self)).items():
            value = getattr(self, key)
            try:
                value = coerce(value, ann)
            except TypeError as exc:
                raise UsageError(f"{option_name(key, source)} must be {exc}, not {show(value)}") from None
            setattr(self, key, value)
            problem = _out_of_range(value, declared[key])
            if problem:
                raise UsageError(f"{option_name(key, source)} must be {problem}, not {show(value)}")

    def validate(self) -> None:
        self.check_fields()
        from .._host.grammar import parse_weighted_names
        parse_weighted_names(self.loss, "--loss")  # weights finite and > 0, before any run folder
        parse_weighted_names(self.data, "--data")
        if self.fsdp and self.precision == "fp16":
            raise UsageError("--fsdp with --precision fp16 is not supported (its loss scaling is not "
                             "shard-aware); use --precision bf16")
        if self.feature_cache == "disk" and not self.feature_cache_dir:
            raise UsageError("--feature-cache disk needs --feature-cache-dir")
        if self.optimizer_in_backward:
            self._check_optimizer_in_backward()

    def _check_optimizer_in_backward(self) -> None:
        """Each parameter is stepped alone, mid-backward: nothing may need all gradients first."""
        needs_all = [("--grad-clip 0", bool(self.grad_clip)), ("--accum-steps 1", self.accum_steps != 1),
                     ("--precision fp32 or bf16", self.precision == "fp16"), ("no --fsdp", self.fsdp)]
        for fix, broken in needs_all:
            if broken:
                raise UsageError(f"--optimizer-in-backward steps each parameter as soon as its gradient "
                                 f"exists, before clipping, accumulation or loss scaling could see them all: "
                                 f"pass {fix}")

    def eval_specs(self) -> list[str]:
        """The ``--eval`` specs to run: the user's, or those the data's plugin registered."""
        if self.eval is not None:
            return list(self.eval)
        return suggested_evals(self.data)

    def tower(self, side: str) -> TowerConfig:
        """The settings of the ``image`` or ``text`` tower."""
        if side not in ("image", "text"):
            raise ValueError(f"side must be 'image' or 'text', not {side!r}")
        return TowerConfig(side, **{part: getattr(self, TowerConfig.key(side, part)) for part in TowerConfig.FIELDS})

    @classmethod
    def create(cls, given: dict[str, Any] | None = None, source: str = "flags") -> "TrainConfig":
        """A new run's config as ``vlkd train`` makes it: the options in ``given`` (those the
        user set), then the recipe's values (``recipe``), then the defaults. ``TrainConfig(...)``
        itself applies no recipe."""
        return resolve_new_run(given or {}, source)[0]

    def warmup(self, total_steps: int) -> int:
        """Warm-up steps of a run of ``total_steps``: ``warmup_steps``, or 5 % of the run."""
        return self.warmup_steps if self.warmup_steps is not None else round(0.05 * total_steps)

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


def resolve_new_run(given: dict[str, Any], source: str = "flags"):
    """(the TrainConfig of a new run, the :class:`~.recipes.RecipeUse` saying what its recipe
    set): ``given`` over the recipe over the defaults."""
    from .recipes import apply_recipe
    given = {k.replace("-", "_"): v for k, v in given.items()}
    settings = {**TrainConfig().to_dict(), **given}
    use = apply_recipe(settings, set(given), explicit="recipe" in given)
    return TrainConfig.from_dict(settings, source=source), use


def _out_of_range(value: Any, opt: Option) -> str | None:
    """What ``value`` must be when it breaks the option's range or choices (None values pass)."""
    import math
    if value is None:
        return None
    if opt.choices and value not in opt.choices:
        return "one of " + ", ".join(opt.choices)
    for bound, is_low in ((opt.low, True), (opt.high, False)):
        if bound is None:
            continue
        limit, inclusive = bound
        ok = (value >= limit if inclusive else value > limit) if is_low else \
             (value <= limit if inclusive else value < limit)
        if not ok or (isinstance(value, float) and not math.isfinite(value)):
            return f"{'>' if is_low else '<'}{'=' if inclusive else ''} {limit}"
    return None


def _toml():
    """tomllib (Python 3.11+), or on 3.10 the tomli package it was made from (same API)."""
    try:
        import tomllib
        return tomllib
    except ImportError:
        import tomli
        return tomli


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or YAML run config (keys mirror the flags, with underscores or dashes)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--config: file '{path}' does not exist")
    from .._runfiles.runfiles import read_text
    text = read_text(path, follow=True)  # not UTF-8: one line naming the file
    try:
        if path.suffix == ".toml":
            data = _toml().loads(text)
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
