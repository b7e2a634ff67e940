"""Composition: towers + heads + roles + losses from a TrainConfig, validated before any data
is read so that impossible combinations fail fast with a fix in the message."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .. import api
from ..contracts import LossNeeds, loss_needs
from ..errors import UsageError
from ..model import DualEncoder
from ..specs import parse_weighted_names
from .config import TrainConfig

SIDES = ("image", "text")


@dataclass
class Composition:
    model: DualEncoder
    losses: nn.ModuleDict                 # name -> loss module (its state is checkpointed)
    weights: dict[str, float]
    proto_heads: nn.ModuleDict            # side -> prototype head (only for prototype losses)
    student: str | None                   # "image" | "text" | None (symmetric training)
    teacher: str | None
    frozen: dict[str, bool] = field(default_factory=dict)  # side -> tower has no trainable params

    def needs(self) -> dict[str, LossNeeds]:
        return {name: loss_needs(loss) for name, loss in self.losses.items()}


def _backbone_options(spec: str, options: dict[str, Any], cache_dir: str | None) -> dict[str, Any]:
    options = dict(options)
    if cache_dir:
        family = api.get_component("backbones", spec.split(":", 1)[0])
        if "cache_dir" in api.factory_options(family):
            options.setdefault("cache_dir", cache_dir)
    return options


def _unlock_patterns(cfg: TrainConfig, side: str) -> str | None:
    patterns = [u.split(":", 1)[1] for u in cfg.unlock if u.startswith(side + ":")]
    bad = [u for u in cfg.unlock if not u.startswith(("image:", "text:"))]
    if bad:
        raise UsageError(f"--unlock '{bad[0]}' must start with 'image:' or 'text:' "
                         "(e.g. --unlock 'image:layer4*,!*bn*')")
    return ",".join(patterns) or None


def build_losses(cfg: TrainConfig) -> tuple[nn.ModuleDict, dict[str, float]]:
    losses, weights = nn.ModuleDict(), {}
    parsed = parse_weighted_names(cfg.loss, flag="--loss")
    unknown = set(cfg.loss_options) - {n for n, _ in parsed}
    if unknown:
        raise UsageError(f"--loss-option for '{sorted(unknown)[0]}', which is not in --loss '{cfg.loss}'")
    for name, weight in parsed:
        losses[name] = api.build_loss(name, **cfg.loss_options.get(name, {}))
        weights[name] = weight
    return losses, weights


def share_prototypes(student: nn.Module, teacher: nn.Module) -> None:
    """Teacher and student score against the same prototype vectors (ITRA / ProtoCPC): the
    teacher head's prototype layer (``last_layer``) becomes the student's, learned through the
    student's side only (the loss detaches the teacher's logits); the teacher's own projection
    stays frozen. Without a shared layer the student would learn to predict a fixed random
    partition of the teacher's space."""
    if not hasattr(student, "last_layer") or not hasattr(teacher, "last_layer"):
        raise UsageError("a prototype head must expose its prototype layer as 'last_layer' so "
                         "teacher and student can share it")
    teacher.requires_grad_(False)
    teacher.last_layer = student.last_layer


def compose(cfg: TrainConfig) -> Composition:
    """Build and check everything that does not need data."""
    from ..freeze import apply_freeze
    cfg.validate()
    losses, weights = build_losses(cfg)
    needs = {n: loss_needs(l) for n, l in losses.items()}
    teacher = None if cfg.teacher == "none" else cfg.teacher
    student = None if teacher is None else ("image" if teacher == "text" else "text")
    kd = [n for n, nd in needs.items() if nd.teacher and not nd.symmetric]
    if kd and teacher is None:
        raise UsageError(f"loss '{kd[0]}' distils from a teacher; pass --teacher text or --teacher image "
                         "(or use a symmetric loss such as infonce)")

    towers = {side: api.build_backbone(getattr(cfg, side), modality=side,
                                       pretrained=getattr(cfg, f"{side}_pretrained"),
                                       **_backbone_options(getattr(cfg, side), getattr(cfg, f"{side}_options"), cfg.cache_dir))
              for side in SIDES}
    locks = {"image": cfg.lock_image or teacher == "image", "text": cfg.lock_text or teacher == "text"}
    for side in SIDES:
        unlock = _unlock_patterns(cfg, side)
        if locks[side] or unlock:
            apply_freeze(towers[side], lock=locks[side], unlock=unlock)
    frozen = {side: not any(p.requires_grad for p in towers[side].parameters()) for side in SIDES}

    # heads project to a common width: the teacher's, unless --embed-dim says otherwise
    dims = {side: towers[side].output_dim for side in SIDES}
    target = cfg.embed_dim or (dims[teacher] if teacher else dims["text"])
    heads: dict[str, nn.Module | None] = {}
    for side in SIDES:
        name = getattr(cfg, f"{side}_head")
        heads[side] = api.build_head(name, in_dim=dims[side], out_dim=target, **cfg.head_options) if name else None
        if heads[side] is not None:
            dims[side] = target
    if dims["image"] != dims["text"] and any(nd.same_dim and not nd.prototype_head for nd in needs.values()):
        fix = f"--{student or 'image'}-head linear" if not heads.get(student or "image") else "--embed-dim"
        raise UsageError(f"dimension mismatch: image features are {dims['image']}-d and text features "
                         f"{dims['text']}-d; add {fix} to project them to the same width")

    proto_heads = nn.ModuleDict()
    if any(nd.prototype_head for nd in needs.values()):
        if "dino" not in [c.name for c in api.list_components("heads")]:
            raise UsageError("a prototype loss needs the 'dino' head: pip install -e plugins/dino")
        for side in SIDES:
            proto_heads[side] = api.build_head("dino", in_dim=dims[side], out_dim=cfg.prototypes)
        if teacher:
            share_prototypes(proto_heads[student], proto_heads[teacher])

    model = DualEncoder(towers["image"], towers["text"], heads["image"], heads["text"])
    if not any(p.requires_grad for p in list(model.parameters()) + list(proto_heads.parameters())
               + list(losses.parameters())):
        raise UsageError("nothing to train: both towers are locked and there is no trainable head "
                         "(drop --lock-image/--lock-text or add --image-head/--text-head)")
    return Composition(model, losses, weights, proto_heads, student, teacher, frozen)
