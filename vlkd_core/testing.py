"""Contract checks for plugin authors (pytest-style helpers; they raise AssertionError).

    from vlkd_core.testing import check_loss
    def test_my_loss():
        check_loss(lambda: MyLoss(temperature=0.1))
        check_loss("my-loss")                     # a registered name, built by vlkd_core.build_loss
        check_loss(lambda teacher_dim: MyQueueLoss(teacher_dim=teacher_dim, queue_size=64))

The project runs the same checks over every registered component, so a component is tested the
moment it registers.
"""
from __future__ import annotations

import copy
import inspect
from typing import Any, Callable

import torch
from torch import nn

from .api import LOSS_WIDTHS, build_loss
from .contracts import loss_needs, loss_value

Maker = Callable[[], nn.Module]


def _maker(obj: nn.Module | Maker) -> Maker:
    if isinstance(obj, nn.Module):
        template = copy.deepcopy(obj)
        return lambda: copy.deepcopy(template)
    return obj


def _scalar(output: Any, who: str) -> torch.Tensor:
    value = loss_value(output)
    assert isinstance(value, torch.Tensor), f"{who}: returned {type(value).__name__}, not a tensor"
    assert value.dim() == 0, f"{who}: loss must be a scalar, got shape {tuple(value.shape)}"
    assert value.is_floating_point(), f"{who}: loss dtype {value.dtype} is not floating point"
    assert torch.isfinite(value), f"{who}: loss is not finite ({value.item()})"
    return value


def loss_inputs(student: torch.Tensor, teacher: torch.Tensor, distils: bool = False, **fields: Any):
    """A :class:`~vlkd_core._model.loss_inputs.LossInputs` over given tensors, for testing a loss that
    reads ``inputs``: ``student`` is the image side and ``teacher`` the text side (both as tower
    output and after the head), plus any other field by name (``labels=``, ``teacher_image=``,
    ...; ``teacher_image``/``teacher_text``/``teacher_logit_scale`` make a teacher model)."""
    from ._model.loss_inputs import LossInputs, StepParts
    compute = {"image_features": lambda: student, "text_features": lambda: teacher,
               "image_tower": lambda: student, "text_tower": lambda: teacher,
               "has_teacher_model": lambda: "teacher_image" in fields}
    compute.update({k: (lambda v=v: v) for k, v in fields.items()})
    for key in ("labels", "caption_ids"):
        if key in fields:
            compute["caption_ids"] = compute[key]
    parts = StepParts(compute)
    pair = lambda: (student, teacher.detach() if distils else teacher)  # noqa: E731
    return LossInputs(parts, pair, {"student": "image", "teacher": "text"}, "text" if distils else None,
                      "caption_ids")


TEACHER_MODEL_FIELDS = ("teacher_image", "teacher_text", "teacher_logit_scale")


def teacher_model_fields(batch: int, dim: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """What a ``--teacher-model`` gives a loss, at random: raw (unnormalised, detached) image and
    text embeddings ``[batch, dim]`` and its logit scale σ as a 0-dim tensor."""
    image, text = torch.randn(batch, dim, generator=gen), torch.randn(batch, dim, generator=gen)
    return {"teacher_image": image, "teacher_text": text,
            "teacher_logit_scale": torch.rand((), generator=gen) * 50 + 10}


def _call(loss: nn.Module, s: torch.Tensor, t: torch.Tensor, teacher_model: dict[str, torch.Tensor]) -> Any:
    """The loss on (s, t) as the engine calls it: classic ``loss(s, t)``, or through
    :func:`loss_inputs` for a loss that reads ``inputs`` or a teacher model's fields (which then
    get ``teacher_model``, and ``labels`` the distinct ids of a batch of distinct captions)."""
    from ._model.loss_inputs import LossCall
    call = LossCall(loss, getattr(loss, "vlkd_name", "loss"))
    if not call.whole and not set(call.by_name) & set(TEACHER_MODEL_FIELDS):
        return loss(s, t)
    fields = {**teacher_model, **({"labels": torch.arange(len(s))} if "labels" in call.by_name else {})}
    return call(loss, loss_inputs(s, t, distils=loss_needs(loss).distils, **fields))


def _loss_maker(loss: nn.Module | Maker | str, dim: int, options: dict[str, Any]) -> Maker:
    """A zero-argument maker; widths (``student_dim``/``teacher_dim`` = ``dim``) go to a
    registered name and to a maker that takes them (by name or ``**kwargs``)."""
    widths = {k: dim for k in LOSS_WIDTHS}
    if isinstance(loss, str):
        return lambda: build_loss(loss, widths=widths, **options)
    if isinstance(loss, nn.Module):
        return _maker(loss)
    try:
        params = inspect.signature(loss).parameters
    except (TypeError, ValueError):
        return loss
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return lambda: loss(**widths)
    return lambda: loss(**{k: v for k, v in widths.items() if k in params})


def _check_fixed_state_shapes(fresh: nn.Module, used: nn.Module, name: str) -> None:
    """State is allocated at its final shape in ``__init__``, so a fresh loss loads a checkpoint
    with torch's own checks (no lazy buffers)."""
    before = {k: tuple(v.shape) for k, v in fresh.state_dict().items()}
    after = {k: tuple(v.shape) for k, v in used.state_dict().items()}
    assert set(before) == set(after), (f"{name}: state keys change on the first call "
                                       f"({sorted(before)} -> {sorted(after)})")
    for key, shape in after.items():
        assert before[key] == shape, (f"{name}: state '{key}' is {before[key]} before the first call and "
                                      f"{shape} after; allocate it at its final shape in __init__ "
                                      "(declare student_dim/teacher_dim to receive the widths)")


def check_loss(loss: nn.Module | Maker | str, dim: int = 32, batch: int = 8, seed: int = 0,
               name: str | None = None, options: dict[str, Any] | None = None) -> None:
    """Scalar finite value; gradient reaches the student (and the teacher only for symmetric
    losses); deterministic; works without torch.distributed; state keeps its shape from
    construction; state_dict round-trips so a restored loss gives the identical next value after
    a state update. A loss whose ``forward`` reads a teacher model's fields (``teacher_image``,
    ``teacher_text``, ``teacher_logit_scale``) gets random ones of width ``dim``
    (:func:`teacher_model_fields`).

    ``loss`` is a module, a maker, or a registered name (built with ``options``). A name, or a
    maker taking ``student_dim``/``teacher_dim`` (or ``**kwargs``), receives ``dim`` for both
    widths, as the engine passes the widths it will call the loss with."""
    name = name or (loss if isinstance(loss, str) else "loss")
    make = _loss_maker(loss, dim, dict(options or {}))
    gen = torch.Generator().manual_seed(seed)
    first = make()
    needs = loss_needs(first)
    s = torch.randn(batch, dim, generator=gen, requires_grad=True)
    t = torch.randn(batch, dim, generator=gen, requires_grad=True)
    teacher_model = teacher_model_fields(batch, dim, gen)  # read only by losses that name its fields
    value = _scalar(_call(first, s, t, teacher_model), name)
    value.backward()
    _check_fixed_state_shapes(make(), first, name)
    assert s.grad is not None and torch.isfinite(s.grad).all(), f"{name}: no finite gradient to student"
    assert s.grad.abs().sum() > 0, f"{name}: gradient to the student is zero"
    if needs.symmetric:
        assert t.grad is not None and t.grad.abs().sum() > 0, f"{name}: symmetric loss gives no gradient to its second input"
    elif needs.teacher:
        assert t.grad is None or t.grad.abs().sum() == 0, f"{name}: gradient leaks into the (detached) teacher"

    # determinism: a fresh instance on the same inputs gives the same value
    again = _scalar(_call(make(), s.detach(), t.detach(), teacher_model), name)
    assert torch.allclose(again, value.detach()), f"{name}: not deterministic ({again} vs {value})"

    # state round trip after one state update (queues, centers, priors, temperatures)
    s2, t2 = torch.randn(batch, dim, generator=gen), torch.randn(batch, dim, generator=gen)
    teacher_model2 = teacher_model_fields(batch, dim, gen)
    restored = make()
    restored.load_state_dict(copy.deepcopy(first.state_dict()))
    a = _scalar(_call(first, s2, t2, teacher_model2), name)
    b = _scalar(_call(restored, s2, t2, teacher_model2), name)
    assert torch.allclose(a, b, atol=1e-6), f"{name}: restored from state_dict gives {b} instead of {a}"
    for (ka, va), (kb, vb) in zip(first.state_dict().items(), restored.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), f"{name}: state '{ka}' diverges after restore"


def check_head(head: nn.Module | Maker, in_dim: int, out_dim: int, batch: int = 4,
               name: str = "head") -> None:
    """[B, in_dim] -> [B, out_dim], gradients to input and parameters, state_dict round trip."""
    make = _maker(head)
    module = make().eval()
    x = torch.randn(batch, in_dim, requires_grad=True)
    y = module(x)
    assert y.shape == (batch, out_dim), f"{name}: output shape {tuple(y.shape)} != {(batch, out_dim)}"
    assert torch.isfinite(y).all(), f"{name}: non-finite output"
    y.float().square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0, f"{name}: no gradient to the input"
    other = make().eval()
    other.load_state_dict(module.state_dict())
    with torch.no_grad():
        assert torch.allclose(other(x), module(x), atol=1e-6), f"{name}: state_dict round trip changes output"


def _example_inputs(backbone: nn.Module, batch: int, train: bool):
    if backbone.modality == "image":
        from PIL import Image
        gen = torch.Generator().manual_seed(0)
        images = [Image.fromarray((torch.rand(48, 40, 3, generator=gen) * 255).byte().numpy())
                  for _ in range(batch)]
        return torch.stack([backbone.preprocess(im, train=train) for im in images])
    texts = ["a small red circle", "a large blue square above a green triangle"][:batch]
    texts += ["a photo"] * (batch - len(texts))
    return backbone.preprocess(texts, train=train)


def check_backbone(backbone: nn.Module, batch: int = 2, name: str = "backbone", padding_invariant: bool = True) -> None:
    """modality/output_dim attributes; preprocess (train and eval) feeds forward; output
    [B, output_dim] finite; gradient reaches trainable parameters; state_dict round trip; image
    towers also pass :func:`check_image_preprocess`, text towers :func:`check_text_padding`
    (``padding_invariant=False``: only its trimming part, for a tower known to read padding),
    towers with a depth map :func:`check_layer_depth`."""
    assert backbone.modality in ("image", "text"), f"{name}: modality {backbone.modality!r}"
    assert isinstance(backbone.output_dim, int) and backbone.output_dim > 0, f"{name}: output_dim"
    backbone.eval()
    inputs = _example_inputs(backbone, batch, train=False)
    train_inputs = _example_inputs(backbone, batch, train=True)
    if isinstance(inputs, torch.Tensor):  # text may drop padding in training (only the batch must agree)
        same = (inputs.shape == train_inputs.shape if backbone.modality == "image"
                else len(inputs) == len(train_inputs))
        assert same, f"{name}: train and eval preprocessing shapes differ"
    out = backbone(inputs)
    assert out.shape == (batch, backbone.output_dim), f"{name}: output {tuple(out.shape)} != {(batch, backbone.output_dim)}"
    assert torch.isfinite(out).all(), f"{name}: non-finite features"
    trainable = [p for p in backbone.parameters() if p.requires_grad]
    if trainable:
        out.float().square().mean().backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable), \
            f"{name}: no gradient reaches the trainable parameters"
        backbone.zero_grad(set_to_none=True)
    if backbone.modality == "image":
        check_image_preprocess(backbone, name=name)
    else:
        check_text_padding(backbone, name=name, alone=padding_invariant)
    if getattr(backbone, "num_layers", None) is not None:
        check_layer_depth(backbone, name=name)
    clone = copy.deepcopy(backbone)
    for p in clone.parameters():
        p.data.add_(1.0)
    clone.load_state_dict(backbone.state_dict())
    with torch.no_grad():
        assert torch.allclose(clone(inputs), backbone(inputs), atol=1e-5), f"{name}: state_dict round trip changes output"
        assert torch.allclose(backbone(inputs), out.detach(), atol=1e-5), f"{name}: eval forward not deterministic"


@torch.no_grad()
def check_text_padding(backbone: nn.Module, name: str = "backbone", atol: float = 1e-6, alone: bool = True) -> None:
    """A caption's features do not depend on how its batch was padded: training tokens (which
    a tower may trim after the batch's longest caption) give the eval tokens' features, and
    (``alone``) a short caption alone gives what it gives beside a long one (to ``atol``, in
    eval mode, relative to the features' largest magnitude). A padding trim is only the same job
    when this holds."""
    was_training = backbone.training
    backbone.eval()
    try:
        texts = ["a red circle", "a large blue square above a small green triangle left of a cross"]
        full = backbone(backbone.preprocess(texts, train=False))
        trimmed = backbone(backbone.preprocess(texts, train=True))
        single = backbone(backbone.preprocess(texts[:1], train=True))
    finally:
        backbone.train(was_training)
    pairs = [("training (trimmed) tokens", trimmed, full)] + ([("a caption alone", single, full[:1])] if alone else [])
    for what, got, want in pairs:
        # relative to the features' largest magnitude: another sequence length changes float32
        # summation order, which is rounding, not a different computation
        diff = float((got.float() - want.float()).abs().max()) / max(1.0, float(want.abs().max()))
        assert diff <= atol, (f"{name}: features of {what} differ from the padded batch's by {diff:.3g} "
                              f"of their scale (> {atol:g}): the tower's padding changes what it computes")


def check_layer_depth(backbone: nn.Module, name: str = "backbone") -> None:
    """A declared depth map (``num_layers``, ``layer_id``; see :mod:`vlkd_core._model.depth`) gives
    every parameter an int depth in 0..num_layers, and not all the same one."""
    top = backbone.num_layers
    assert isinstance(top, int) and top >= 1, f"{name}: num_layers must be a positive int, not {top!r}"
    depths = {n: backbone.layer_id(n) for n, _ in backbone.named_parameters()}
    bad = {n: d for n, d in depths.items() if not isinstance(d, int) or not 0 <= d <= top}
    assert not bad, f"{name}: layer_id outside 0..{top}: {dict(list(bad.items())[:3])}"
    assert len(depths) < 2 or len(set(depths.values())) > 1, f"{name}: every parameter at one depth"


def layer_depths(backbone: nn.Module, decay: float = 0.5, name: str = "backbone") -> dict[str, int]:
    """:func:`check_layer_depth`, then the depth of every named parameter as the core's layer
    decay sees it, asserting its lr factor is ``decay ** (num_layers - depth)``; compare the
    returned map with a hand-written table of your tower."""
    import math

    from .training.layer_decay import tower_depth
    check_layer_depth(backbone, name)
    depth = tower_depth(backbone, backbone.modality, name, decay)
    out = {}
    for param_name, param in backbone.named_parameters():
        d, factor = depth(param_name, param)
        assert math.isclose(factor, decay ** (backbone.num_layers - d), rel_tol=1e-9), param_name
        out[param_name] = d
    return out


def _transparent_images():
    """The same fully transparent picture in each PIL mode that carries transparency."""
    from PIL import Image
    rgba = Image.new("RGBA", (40, 48), (0, 0, 0, 0))
    palette = Image.new("P", (40, 48), 0)
    palette.putpalette([0, 0, 0] * 256)
    palette.info["transparency"] = 0
    return {"RGBA": rgba, "LA": Image.new("LA", (40, 48), (0, 0)), "P": palette}


def _crop_box(out: torch.Tensor, spec) -> tuple[float, float, bool]:
    """On a coordinate image (red = x, green = y, 256 px), the fraction of the source area a
    training crop kept and whether left stayed left."""
    mean = torch.tensor(spec.mean).view(3, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1)
    pixels = (out * std + mean) * 255
    size = out.shape[-1]
    x, y = pixels[0, size // 2], pixels[1, :, size // 2]
    width = (x[-1] - x[0]).abs() * size / (size - 1)   # pixel centres sit half a pixel inside
    height = (y[-1] - y[0]).abs() * size / (size - 1)
    return float(width * height / 255 ** 2), float(x[-1] - x[0]), bool(x[-1] > x[0])


def check_image_preprocess(backbone: nn.Module, name: str = "backbone", draws: int = 20) -> None:
    """Image towers: transparent pixels arrive white (RGBA, LA, P with a transparent colour);
    with an ``image_spec``, an image at the crop size passes the eval transform unchanged apart
    from normalisation, and the run's default ``openclip`` augmentation never flips and keeps at
    least 90 % of the area."""
    from PIL import Image
    from torchvision.transforms import functional as F

    from ._model.images import training_transform
    white = backbone.preprocess(Image.new("RGB", (40, 48), (255, 255, 255)))
    for mode, image in _transparent_images().items():
        assert torch.allclose(backbone.preprocess(image), white, atol=1e-5), \
            f"{name}: a transparent {mode} image does not arrive white"
    spec = getattr(backbone, "image_spec", None)
    if spec is None:
        return
    gen = torch.Generator().manual_seed(0)
    exact = Image.fromarray((torch.rand(spec.size, spec.size, 3, generator=gen) * 255).byte().numpy())
    expected = F.normalize(F.to_tensor(exact), spec.mean, spec.std)
    assert torch.allclose(backbone.preprocess(exact), expected, atol=1e-5), \
        f"{name}: the eval transform changes an image already at the crop size ({spec.size} px)"
    ramp = torch.arange(256, dtype=torch.uint8)
    coords = torch.stack([ramp.expand(256, 256), ramp[:, None].expand(256, 256),
                          torch.zeros(256, 256, dtype=torch.uint8)], dim=-1)
    source = Image.fromarray(coords.numpy())
    augment = training_transform(backbone, "openclip")
    state = torch.random.get_rng_state()
    try:
        for draw in range(draws):
            torch.manual_seed(draw)
            area, _, left_stays_left = _crop_box(augment(source, train=True), spec)
            assert left_stays_left, f"{name}: the openclip augmentation flipped an image (draw {draw})"
            assert area >= 0.9 - 0.03, f"{name}: the openclip augmentation kept {area:.0%} of the area"
    finally:
        torch.random.set_rng_state(state)


def check_recipe(name: str) -> None:
    """A registered recipe names training options only, and a new run of its own job takes
    every value it sets (they pass the options' types and ranges)."""
    from .training.config import TrainConfig, options
    from .training.recipes import get_recipe
    recipe = get_recipe(name)
    known = options()
    for key in (*recipe.job, *recipe.values):
        assert key in known, f"recipe {name}: '{key}' is not a training option"
    cfg = TrainConfig.create({**recipe.job, "recipe": name})
    for key, value in recipe.values.items():
        got = getattr(cfg, key)
        assert (got.items() >= value.items() if isinstance(value, dict) else got == value), \
            f"recipe {name}: {key} resolved to {got!r}, not {value!r}"


def _toy_groups(seed: int) -> tuple[nn.Module, list[dict]]:
    """A small model and the engine's parameter groups over it (decay / no-decay)."""
    from .training.optim import param_groups
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Linear(8, 3))
    return model, param_groups({"other": list(model.named_parameters())}, {"other": 0.01}, 0.05)


def _steps(model: nn.Module, optimizers: list[torch.optim.Optimizer], steps: range) -> None:
    """Optimizer steps on gradients that depend only on the step number (so a resumed copy
    sees the same ones)."""
    for step in steps:
        gen = torch.Generator().manual_seed(1000 + step)
        for param in model.parameters():
            param.grad = torch.randn(param.shape, generator=gen)
        for optimizer in optimizers:
            optimizer.step()


def _roundtrip(state: dict) -> dict:
    """Through a checkpoint's file: ``torch.load(weights_only=True)`` refuses pickled objects."""
    import io
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def check_optimizer(name: str, options: dict[str, Any] | None = None) -> None:
    """A registered optimizer keeps the engine's per-group lr and weight decay, changes the
    weights, resumes from its state dict (saved like a checkpoint) to the same weights bit for
    bit, and, if it declares ``per_parameter``, gives the same weights as one instance per
    parameter (what ``--optimizer-in-backward`` runs)."""
    from .api import get_component
    from .training.optim import build_optimizer
    options = dict(options or {})
    model, groups = _toy_groups(0)
    optimizer = build_optimizer(name, options, groups)
    for mine, given in zip(optimizer.param_groups, groups):
        assert (mine["lr"], mine["weight_decay"]) == (given["lr"], given["weight_decay"]), \
            f"optimizer {name}: a parameter group lost the engine's lr / weight_decay"
    start = copy.deepcopy(model.state_dict())
    _steps(model, [optimizer], range(2))
    assert any(not torch.equal(start[k], v) for k, v in model.state_dict().items()), f"optimizer {name}: no change"
    saved, weights = _roundtrip(optimizer.state_dict()), copy.deepcopy(model.state_dict())
    _steps(model, [optimizer], range(2, 4))
    again, again_groups = _toy_groups(0)
    again.load_state_dict(weights)
    resumed = build_optimizer(name, options, again_groups)
    resumed.load_state_dict(saved)
    _steps(again, [resumed], range(2, 4))
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), f"optimizer {name}: resumed run differs at {key}"
    if get_component("optimizers", name).info.per_parameter:
        alone, alone_groups = _toy_groups(0)
        each = [build_optimizer(name, options, [{**g, "params": [p]}]) for g in alone_groups for p in g["params"]]
        _steps(alone, each, range(4))
        for key, value in model.state_dict().items():
            assert torch.allclose(value, alone.state_dict()[key], rtol=1e-6, atol=1e-7), \
                f"optimizer {name} declares per_parameter, but one instance per parameter differs at {key}"


def check_scheduler(name: str, options: dict[str, Any] | None = None, warmup_steps: int = 3,
                    total_steps: int = 12) -> None:
    """A registered schedule gives finite, non-negative learning rates for every step of a run
    and resumes from its state dict (saved like a checkpoint) to the same rates."""
    from .training.optim import build_scheduler
    options = dict(options or {})

    def run(steps: range, state: tuple[dict, dict] | None = None) -> tuple[list[float], tuple[dict, dict]]:
        param = nn.Parameter(torch.zeros(2))
        optimizer = torch.optim.SGD([param], lr=0.1)
        scheduler = build_scheduler(name, options, optimizer, warmup_steps, total_steps)
        if state is not None:
            optimizer.load_state_dict(state[0])
            scheduler.load_state_dict(state[1])
        lrs = []
        for _ in steps:
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return lrs, (_roundtrip(optimizer.state_dict()), _roundtrip(scheduler.state_dict()))

    whole, _ = run(range(total_steps))
    assert all(isinstance(lr, float) and 0 <= lr < float("inf") for lr in whole), f"scheduler {name}: {whole}"
    first, state = run(range(5))
    rest, _ = run(range(5, total_steps), state)
    assert first + rest == whole, f"scheduler {name}: resumed at step 5 gives {first + rest}, not {whole}"


def check_dataset(dataset: Any, n: int = 3, name: str = "dataset") -> None:
    """Samples are dicts with a PIL ``image``, a ``text`` string and optionally an int ``label``."""
    from PIL import Image
    items = []
    if hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__"):
        assert len(dataset) > 0, f"{name}: empty"
        items = [dataset[i] for i in range(min(n, len(dataset)))]
    else:
        for i, item in enumerate(dataset):
            items.append(item)
            if i + 1 >= n:
                break
    assert items, f"{name}: yields nothing"
    for item in items:
        assert isinstance(item.get("image"), Image.Image), f"{name}: 'image' must be a PIL image"
        assert isinstance(item.get("text"), str), f"{name}: 'text' must be a string"
        if "label" in item and item["label"] is not None:
            assert int(item["label"]) == item["label"], f"{name}: 'label' must be an int"


def check_evaluator(evaluator: Any, model: Any, name: str = "evaluator", **kwargs: Any) -> dict[str, float]:
    """``evaluate(model, ...)`` returns a non-empty dict of finite floats with string keys."""
    import math
    metrics = evaluator.evaluate(model, **kwargs)
    assert isinstance(metrics, dict) and metrics, f"{name}: must return a non-empty dict"
    for key, value in metrics.items():
        assert isinstance(key, str), f"{name}: metric name {key!r} is not a string"
        assert isinstance(value, (int, float)) and math.isfinite(value), f"{name}: metric {key}={value!r}"
    return metrics


def toy_dual_encoder(output_dim: int = 64, seed: int = 0, model: str = "tiny"):
    """A :class:`vlkd_core._model.model.DualEncoder` of the builtin ``toy`` towers (no downloads),
    initialised deterministically from ``seed``: the model evaluator contract tests use."""
    from .api import build_backbone
    from ._model.model import DualEncoder
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        image = build_backbone(f"toy:{model}", modality="image", output_dim=output_dim)
        text = build_backbone(f"toy:{model}", modality="text", output_dim=output_dim)
    finally:
        torch.random.set_rng_state(state)  # do not disturb the caller's random stream
    return DualEncoder(image, text).eval()


def _forward_backward_counting(tower: nn.Module, inputs: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
    """(output, gradients by name, how many sub-module forward calls ran in forward + backward)."""
    calls = [0]
    hooks = [m.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1)) for m in tower.modules()]
    try:
        torch.manual_seed(1)  # the same dropout masks in both towers (recomputation replays them)
        out = tower(inputs)
        out.float().square().sum().backward()
    finally:
        for hook in hooks:
            hook.remove()
    grads = {n: p.grad.clone() for n, p in tower.named_parameters() if p.grad is not None}
    return out.detach(), grads, calls[0]


def check_grad_checkpointing(make_tower: Callable[[], nn.Module], name: str = "backbone",
                             batch: int = 2) -> None:
    """``set_grad_checkpointing(True)`` (what ``--grad-checkpointing`` calls) changes nothing but
    memory: the same output and gradients as without, while blocks really run again in the
    backward pass (more sub-module forward calls are counted)."""
    plain, checkpointed = make_tower().train(), make_tower().train()
    checkpointed.load_state_dict(plain.state_dict())
    assert callable(getattr(checkpointed, "set_grad_checkpointing", None)), f"{name}: no set_grad_checkpointing"
    checkpointed.set_grad_checkpointing(True)
    inputs = _example_inputs(plain, batch, train=False)
    out_a, grads_a, calls_a = _forward_backward_counting(plain, inputs)
    out_b, grads_b, calls_b = _forward_backward_counting(checkpointed, inputs)
    assert torch.allclose(out_a, out_b, atol=1e-5), f"{name}: outputs differ with checkpointing"
    assert grads_a.keys() == grads_b.keys(), f"{name}: different parameters got gradients"
    for key in grads_a:
        assert torch.allclose(grads_a[key], grads_b[key], atol=1e-5, rtol=1e-4), f"{name}: gradient of {key} differs"
    assert calls_b > calls_a, f"{name}: set_grad_checkpointing(True) recomputed nothing ({calls_a} calls both ways)"
