"""The Python API; the CLI is a thin layer over these functions."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from .errors import UnknownComponentError, UsageError
from ._host.plugins import get_plugin_manager
from ._host.registry import SINGULAR, Component, normalize_kind
from ._host.grammar import parse_backbone_spec


@dataclass(frozen=True)
class ComponentListing:
    kind: str
    name: str
    plugin: str
    distribution: str
    description: str


def list_components(kind: str) -> list[ComponentListing]:
    """Registered names of one kind (``"losses"``, ``"loss"``, ...) with the registering plugin."""
    kind = normalize_kind(kind)
    reg = get_plugin_manager().registry(kind)
    return [ComponentListing(kind, c.name, c.plugin, c.distribution, c.description) for c in reg]


def get_component(kind: str, name: str) -> Component:
    return get_plugin_manager().registry(normalize_kind(kind)).get(name)


def with_cache_dir(spec: str, options: dict[str, Any], cache_dir: str | None) -> dict[str, Any]:
    """A tower's options with ``--cache-dir`` added when its family takes one (families that
    download nothing, such as ``toy``, have no such option and get none)."""
    options = dict(options)
    if cache_dir:
        family = get_component("backbones", parse_backbone_spec(spec).family)
        if "cache_dir" in factory_options(family):
            options.setdefault("cache_dir", cache_dir)
    return options


def factory_options(component: Component) -> dict[str, Any]:
    """Keyword options of a factory with their defaults (``inspect.Parameter.empty`` if required)."""
    factory = component.resolve()
    target = factory.__init__ if inspect.isclass(factory) else factory
    params = list(inspect.signature(target).parameters.values())
    if inspect.isclass(factory):
        params = params[1:]  # self
    return {p.name: p.default for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _check_options(component: Component, options: dict[str, Any], fixed: tuple[str, ...] = ()) -> None:
    factory = component.resolve()
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return
    accepted = factory_options(component)
    missing = [k for k, v in accepted.items() if v is inspect.Parameter.empty and k not in options
               and k not in fixed]
    if missing:
        raise UsageError(f"{SINGULAR[component.kind]} '{component.name}' needs the option '{missing[0]}' "
                         f"(see `vlkd components show {SINGULAR[component.kind]} {component.name}`)")
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        unknown = [k for k in options if k not in accepted]
        if unknown:
            valid = sorted(k for k in accepted if k not in fixed)
            raise UsageError(f"{SINGULAR[component.kind]} '{component.name}' has no option "
                             f"'{unknown[0]}'; valid options: {', '.join(valid) or '(none)'}")
    check_option_types(component, options)


def check_option_types(component: Component, options: dict[str, Any]) -> None:
    """Each option against the factory's annotation (the class's and its bases' ``__init__`` for
    classes): coerced in place where harmless, else a UsageError naming the option."""
    from ._host.typecheck import coerce, hints, show
    declared = hints(component.resolve())
    for key, value in list(options.items()):
        if key not in declared:
            continue
        try:
            options[key] = coerce(value, declared[key], one_for_many=True)
        except TypeError as exc:
            raise UsageError(f"{SINGULAR[component.kind]} '{component.name}': option {key} must be "
                             f"{exc}, not {show(value)}") from None


def check_options(kind: str, name: str, options: dict[str, Any], fixed: tuple[str, ...] = ()) -> None:
    """Check ``options`` for component ``name`` of ``kind`` (names, required ones, types) without
    building it; values are coerced in place where harmless. UsageError otherwise."""
    _check_options(get_component(kind, name), options, fixed)


def _build(kind: str, name: str, **options: Any) -> Any:
    component = get_component(kind, name)
    _check_options(component, options)
    return component.resolve()(**options)


def build_backbone(spec: str, modality: str = "image", pretrained: str | None = None,
                   **options: Any):
    """Build a tower from ``family:model``; ``pretrained`` is a family tag or a local path."""
    if modality not in ("image", "text"):
        raise UsageError(f"modality must be 'image' or 'text', not '{modality}'")
    parsed = parse_backbone_spec(spec)
    component = get_component("backbones", parsed.family)
    if not component.accepts_model(parsed.model):
        raise UnknownComponentError("model", parsed.model, component.models() or [],
                                    where=f"family '{parsed.family}'")
    _check_options(component, options, fixed=("model", "modality", "pretrained"))
    from ._model.pretrained_flag import pretrained_named_by
    with pretrained_named_by(f"--{modality}-pretrained", keep_outer=True):  # what the family's errors name
        backbone = component.resolve()(model=parsed.model, modality=modality, pretrained=pretrained,
                                       **options)
    for attr in ("modality", "output_dim"):
        if not hasattr(backbone, attr):
            raise UsageError(f"backbone family '{parsed.family}' (plugin '{component.plugin}') "
                             f"returned an object without '{attr}'")
    backbone.spec = str(parsed)
    return backbone


def build_head(name: str, in_dim: int, out_dim: int, **options: Any):
    return _build("heads", name, in_dim=in_dim, out_dim=out_dim, **options)


# Keyword parameters a loss factory may declare to receive the widths of the tensors it will be
# called with (the engine knows them from the towers and heads; for prototype losses both are
# the prototype count K; teacher_model_dim: the width of a --teacher-model's embeddings).
# Declared ones are filled in; they are not user options.
LOSS_WIDTHS = ("student_dim", "teacher_dim", "teacher_model_dim")


# What the engine fills in for an optimizer (every parameter group carries its own lr and weight
# decay, from --lr, --image-lr, --text-lr, --layer-decay and --weight-decay) and a schedule (the
# run's step counts), besides the factory's first parameter (the groups; the optimizer).
OPTIMIZER_FIXED = ("lr", "weight_decay")
SCHEDULER_FIXED = ("warmup_steps", "total_steps")


def engine_options(component: Component) -> tuple[str, ...]:
    """The factory parameters the engine fills in: never user options (`vlkd components show`
    lists them as set by the engine)."""
    if component.kind == "losses":
        return LOSS_WIDTHS
    fixed = {"optimizers": OPTIMIZER_FIXED, "schedulers": SCHEDULER_FIXED}.get(component.kind)
    if fixed is None:
        return ()
    return tuple(list(factory_options(component))[:1]) + fixed


def build_loss(name: str, widths: dict[str, int] | None = None, **options: Any):
    """Build loss ``name`` with the user's ``options``; ``widths`` (``student_dim``,
    ``teacher_dim``) go to the factory when it declares them, so state such as queues and
    centres is allocated at its final shape at construction."""
    component = get_component("losses", name)
    given = [k for k in options if k in LOSS_WIDTHS]
    if given:
        raise UsageError(f"loss '{name}': {given[0]} is set by the engine from the towers' widths, "
                         "not an option")
    declared = factory_options(component)
    _check_options(component, options, fixed=LOSS_WIDTHS)
    filled = {k: v for k, v in (widths or {}).items() if k in declared}
    missing = [k for k in LOSS_WIDTHS if declared.get(k, None) is inspect.Parameter.empty and k not in filled]
    if missing:
        raise UsageError(f"loss '{name}' needs widths={{'{missing[0]}': ...}}: the width of the "
                         "features it will be called with")
    loss = component.resolve()(**options, **filled)
    loss.vlkd_name = name
    return loss


def build_dataset(name: str, **options: Any):
    return _build("datasets", name, **options)


def build_evaluator(name: str, **options: Any):
    return _build("evaluators", name, **options)
