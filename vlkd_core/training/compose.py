"""compose(cfg) -> Bundle: towers + heads + roles + losses from a TrainConfig, validated before
any data is read so that impossible combinations fail fast with a fix in the message."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .. import api
from .._model.abilities import GradCheckpointing
from ..contracts import LossNeeds, loss_needs
from ..errors import UsageError
from ..features.teacher import stored_tower
from .._model.freeze import apply_freeze, lock
from .._model.model import DualEncoder
from .._host.grammar import parse_unlock, parse_weighted_names
from .._model.sharing import sharing
from .bundle import Bundle
from .config import TrainConfig
from .inherit import inherited_parts, parse_inherit_layers
from .teacher_model import build_teacher_model

SIDES = ("image", "text")


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


def _loss_factories(cfg: TrainConfig) -> list[tuple[str, float, LossNeeds]]:
    """(name, weight, needs) per ``--loss`` item, read before anything is built; ``needs`` is the
    factory's class attribute when it has one (a function factory's needs are read once built)."""
    parsed = parse_weighted_names(cfg.loss, flag="--loss")
    unknown = set(cfg.loss_options) - {n for n, _ in parsed}
    if unknown:
        raise UsageError(f"--loss-option for '{sorted(unknown)[0]}', which is not in --loss '{cfg.loss}'")
    out = []
    for name, weight in parsed:
        factory = api.get_component("losses", name).resolve()
        out.append((name, weight, loss_needs(factory)))
    return out


def _check_roles(cfg: TrainConfig, needs: dict[str, LossNeeds]) -> str | None:
    teacher = None if cfg.teacher == "none" else cfg.teacher
    kd = [n for n, nd in needs.items() if nd.teacher and not nd.symmetric]
    if kd and teacher is None:
        raise UsageError(f"loss '{kd[0]}' distils from a teacher; pass --teacher text or --teacher image "
                         "(or use a symmetric loss such as infonce)")
    return teacher


def _student_parts(cfg: TrainConfig, teacher_model: nn.Module | None) -> tuple[dict, dict] | None:
    """--student-init-from-teacher: the student's towers and heads copied from the teacher model
    (keeping the --inherit-layers blocks), or None."""
    if not cfg.student_init_from_teacher:
        if cfg.inherit_layers:
            raise UsageError("--inherit-layers chooses the teacher's blocks a student inherits: add "
                             "--student-init-from-teacher")
        return None
    if teacher_model is None:
        raise UsageError("--student-init-from-teacher copies the towers of a --teacher-model: pass one")
    return inherited_parts(teacher_model, parse_inherit_layers(cfg.inherit_layers), cfg.inherit_weights)


def _towers(cfg: TrainConfig, teacher: str | None, inherited: dict | None = None) -> dict[str, nn.Module]:
    """Both towers, locked where asked (the teacher is always locked): the one place that locks."""
    def build(side: str) -> nn.Module:
        tower = cfg.tower(side)
        return api.build_backbone(tower.spec, modality=side, pretrained=tower.pretrained,
                                  **api.with_cache_dir(tower.spec, tower.options, cfg.cache_dir))

    def build_teacher(side: str) -> nn.Module:
        # the global RNG is left as it was, so the student's initialisation does not depend on
        # whether the teacher was built here or read from a store (--teacher-features)
        with torch.random.fork_rng(devices=[]):
            return build(side)
    # --teacher-features: the teacher is a stand-in of the stored width, its tower never built;
    # sharing(): a family may build one model for both towers (OpenCLIP's two halves)
    with sharing():
        towers = dict(inherited) if inherited else {
            side: stored_tower(cfg, side, teacher, lambda side=side: build_teacher(side))
            or (build_teacher(side) if side == teacher else build(side)) for side in SIDES}
    locks = {side: cfg.tower(side).lock or teacher == side for side in SIDES}
    patterns = parse_unlock(cfg.unlock)
    for side in SIDES:
        unlock = patterns.get(side)
        if locks[side]:
            lock(towers[side], unlock=unlock)
        elif unlock:  # nothing to re-enable, but a pattern that matches nothing is still an error
            apply_freeze(towers[side], unlock=unlock)
    return towers


def _grad_checkpointing(cfg: TrainConfig, towers: dict[str, nn.Module]) -> None:
    """--grad-checkpointing on every trainable tower, through its family's own switch."""
    for side in SIDES if cfg.grad_checkpointing else ():
        tower = towers[side]
        if not any(p.requires_grad for p in tower.parameters()):
            continue
        if not isinstance(tower, GradCheckpointing):
            raise UsageError(f"--grad-checkpointing: the {side} tower '{cfg.tower(side).spec}' cannot recompute "
                             "its activations (its family has no set_grad_checkpointing); drop the flag")
        tower.set_grad_checkpointing(True)


def _heads(cfg: TrainConfig, towers: dict[str, nn.Module], teacher: str | None,
           inherited: dict | None = None) -> tuple[dict, dict[str, int]]:
    """Heads project to a common width: the teacher's, unless --embed-dim says otherwise (or the
    heads a student inherited from a teacher model, at their own width)."""
    dims = {side: towers[side].output_dim for side in SIDES}
    if inherited is not None:
        return inherited, {side: _out_width(inherited[side], dims[side]) for side in SIDES}
    target = cfg.embed_dim or (dims[teacher] if teacher else dims["text"])
    heads: dict[str, nn.Module | None] = {}
    for side in SIDES:
        name = cfg.tower(side).head
        heads[side] = api.build_head(name, in_dim=dims[side], out_dim=target, **cfg.head_options) if name else None
        if heads[side] is not None:
            dims[side] = target
    return heads, dims


def _out_width(head: nn.Module | None, width: int) -> int:
    if head is None:
        return width
    with torch.no_grad():
        return int(head(torch.zeros(1, width)).shape[-1])


def _check_second_views(needs: dict[str, LossNeeds], towers: dict[str, nn.Module]) -> None:
    for name, nd in needs.items():
        side = nd.second_view
        if side is None:
            continue
        if side not in SIDES:
            raise UsageError(f"loss '{name}' asks for a second view of '{side}'; LossNeeds.second_view "
                             "must be 'image' or 'text'")
        if not any(p.requires_grad for p in towers[side].parameters()):
            raise UsageError(f"loss '{name}' trains the {side} tower on two views of each input, but the "
                             f"{side} tower is locked; drop --lock-{side} / --teacher {side} "
                             "(e.g. --teacher none)")


def _check_widths(dims: dict[str, int], needs: dict[str, LossNeeds], heads: dict, student: str | None) -> None:
    if dims["image"] != dims["text"] and any(nd.same_dim and not nd.prototype_head for nd in needs.values()):
        fix = f"--{student or 'image'}-head linear" if not heads.get(student or "image") else "--embed-dim"
        raise UsageError(f"dimension mismatch: image features are {dims['image']}-d and text features "
                         f"{dims['text']}-d; add {fix} to project them to the same width")


def _prototype_head_name(cfg: TrainConfig, needs: dict[str, LossNeeds]) -> str | None:
    """``--prototype-head``, else the head the prototype losses name in their needs."""
    wanted = {n: nd.prototype_head for n, nd in needs.items() if nd.prototype_head}
    if not wanted:
        return None
    if cfg.prototype_head:
        return cfg.prototype_head
    named = {h for h in wanted.values() if isinstance(h, str)}
    if len(named) != 1:
        raise UsageError(f"loss '{sorted(wanted)[0]}' needs a prototype head: pass --prototype-head NAME "
                         "(see `vlkd components list heads`)")
    return named.pop()


def _prototype_heads(cfg: TrainConfig, needs: dict[str, LossNeeds], dims: dict[str, int],
                     teacher: str | None) -> nn.ModuleDict:
    proto_heads = nn.ModuleDict()
    name = _prototype_head_name(cfg, needs)
    if name is None:
        return proto_heads
    for side in SIDES:
        proto_heads[side] = api.build_head(name, in_dim=dims[side], out_dim=cfg.prototypes)
    if teacher:
        share_prototypes(proto_heads["image" if teacher == "text" else "text"], proto_heads[teacher])
    return proto_heads


def _losses(cfg: TrainConfig, items, dims: dict[str, int], teacher: str | None,
            teacher_model: nn.Module | None) -> nn.ModuleDict:
    """Each loss built with the widths of the tensors it will receive."""
    student_side = "image" if teacher in (None, "text") else "text"
    teacher_side = "text" if student_side == "image" else "image"
    losses = nn.ModuleDict()
    for name, _, needs in items:
        _check_teacher_model(name, teacher_model)
        width = {"student_dim": dims[student_side], "teacher_dim": dims[teacher_side]}
        if teacher_model is not None:
            width["teacher_model_dim"] = teacher_model.output_dim
        if needs.second_view in SIDES:
            width = {"student_dim": dims[needs.second_view], "teacher_dim": dims[needs.second_view]}
        elif needs.prototype_head:
            width = {"student_dim": cfg.prototypes, "teacher_dim": cfg.prototypes}
        losses[name] = api.build_loss(name, widths=width, **cfg.loss_options.get(name, {}))
    return losses


TEACHER_MODEL_FIELDS = ("teacher_image", "teacher_text", "teacher_logit_scale")


def _check_teacher_model(name: str, teacher_model: nn.Module | None) -> None:
    """A loss that reads a teacher model's features (its forward names them, or its factory
    wants ``teacher_model_dim``) needs ``--teacher-model``."""
    if teacher_model is not None:
        return
    factory = api.get_component("losses", name).resolve()
    import inspect
    forward = getattr(factory, "forward", None)
    named = set(inspect.signature(forward).parameters) if callable(forward) else set()
    wants = set(api.factory_options(api.get_component("losses", name)))
    if named & set(TEACHER_MODEL_FIELDS) or "teacher_model_dim" in wants:
        raise UsageError(f"loss '{name}' distils from a teacher model's image and text features: pass "
                         "--teacher-model RUN_OR_SPEC (a vlkd run, or e.g. openclip:ViT-B-32 with --teacher-pretrained)")


def compose(cfg: TrainConfig) -> Bundle:
    """Build and check everything that does not need data."""
    cfg.validate()
    items = _loss_factories(cfg)
    teacher = _check_roles(cfg, {n: nd for n, _, nd in items})
    with torch.random.fork_rng(devices=[]):  # the student's initialisation is the same with or without it
        teacher_model = build_teacher_model(cfg)
    inherited = _student_parts(cfg, teacher_model)
    towers = _towers(cfg, teacher, inherited[0] if inherited else None)
    _grad_checkpointing(cfg, towers)
    heads, dims = _heads(cfg, towers, teacher, inherited[1] if inherited else None)
    losses = _losses(cfg, items, dims, teacher, teacher_model)
    needs = {n: loss_needs(l) for n, l in losses.items()}  # function factories: now known
    _check_roles(cfg, needs)
    student = None if teacher is None else ("image" if teacher == "text" else "text")
    _check_second_views(needs, towers)
    _check_widths(dims, {n: nd for n, nd in needs.items() if not nd.second_view}, heads, student)
    proto_heads = _prototype_heads(cfg, needs, dims, teacher)
    model = DualEncoder(towers["image"], towers["text"], heads["image"], heads["text"])
    bundle = Bundle(model, losses, {n: w for n, w, _ in items}, proto_heads, teacher)
    bundle.use_teacher_model(teacher_model)
    if not any(p.requires_grad for p in bundle.parameters()):
        raise UsageError("nothing to train: both towers are locked and there is no trainable head "
                         "(drop --lock-image/--lock-text or add --image-head/--text-head)")
    return bundle
