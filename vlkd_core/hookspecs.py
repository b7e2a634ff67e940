"""The vlkd hook specifications: the whole contract between the core and its plugins.

A plugin is a module (found through the ``vlkd`` entry-point group, or registered directly)
that implements some of these hooks with ``@vlkd_core.hookimpl``. Registration hooks are
called once per plugin when the registry is first built; lifecycle hooks are called by the
training engine and evaluators as runs progress.
"""
from __future__ import annotations

from typing import Any, Protocol

import pluggy

hookspec = pluggy.HookspecMarker("vlkd")
hookimpl = pluggy.HookimplMarker("vlkd")


class Register(Protocol):
    """The callback handed to every registration hook: ``register(name, factory, **metadata)``.

    ``factory`` is a callable or a lazy ``"module:attr"`` import string (preferred: listing
    plugins then never imports torch-heavy code). The metadata keywords are the fields of
    :class:`vlkd_core.component_info.ComponentInfo` (``description``, ``models``,
    ``model_patterns``, ``example``, ``evals``, ``formula``, ``paper``, ``per_parameter``), checked at
    registration: an unknown keyword or a value of the wrong shape marks the plugin broken
    (nothing it registered is kept) with a one-line error naming the plugin, the component and
    the keyword. Registering the same name twice with the same factory is a no-op; another
    plugin's name is a collision.
    """

    def __call__(self, name: str, factory: Any, **metadata: Any) -> None: ...


@hookspec
def vlkd_register_backbones(register: Register) -> None:
    """Register backbone *families*, addressed as ``family:model``.

    ``factory(model: str, modality: str, pretrained: str | None, **options)`` must return an
    ``nn.Module`` honouring the Backbone contract (``modality``, ``output_dim``,
    ``preprocess(inputs, train=False)``, ``forward(inputs) -> [B, output_dim]``).
    Pass ``models=`` so ``vlkd components list`` can count models and suggest names.
    """


@hookspec
def vlkd_register_heads(register: Register) -> None:
    """Register projection heads: ``factory(in_dim: int, out_dim: int, **options) -> nn.Module``."""


@hookspec
def vlkd_register_losses(register: Register) -> None:
    """Register losses: ``factory(**options) -> nn.Module`` called as ``loss(student, teacher)``.

    The module should carry a ``needs`` attribute (:class:`vlkd_core.contracts.LossNeeds`)
    telling the engine whether it needs a teacher, a prototype head, labels, etc.
    """


@hookspec
def vlkd_register_datasets(register: Register) -> None:
    """Register datasets: ``factory(split: str = "train", **options)`` returning a sized or
    iterable dataset of samples ``{"image": PIL.Image, "text": str, "label": int?}``.
    Optional metadata ``evals=[spec, ...]``: the ``--eval`` specs a run training on this data
    uses when the user names none."""


@hookspec
def vlkd_register_evaluators(register: Register) -> None:
    """Register evaluators: ``factory(**options)`` returning an object with
    ``evaluate(model, **kwargs) -> dict[str, float]`` (see :class:`vlkd_core.contracts.Evaluator`)."""


@hookspec
def vlkd_register_recipes(register: Register) -> None:
    """Register recipes: ``factory() -> vlkd_core.training.recipes.Recipe``, the option values
    tuned for one job (``job``: the towers and data it was tuned on; ``values``: by TrainConfig
    key). ``vlkd train --recipe NAME`` fills in what the user did not set, while the run is that
    job (or always, when the user names the recipe)."""


@hookspec
def vlkd_register_optimizers(register: Register) -> None:
    """Register optimizers (``vlkd train --optimizer NAME --optimizer-option key=value``).

    :param register: call ``register(name, factory, per_parameter=...)`` per optimizer;
        ``factory(groups: list[dict], **options) -> torch.optim.Optimizer``. ``groups`` are the
        engine's parameter groups (``params``, ``lr``, ``weight_decay``, ``name``: no decay on
        norms, biases and temperatures, per-tower lr, ``--layer-decay``), so ``lr`` and
        ``weight_decay`` are never options; the factory's other keyword parameters are. A
        ``torch.optim.Optimizer`` class works as a factory as it is. Its ``state_dict()`` goes
        into every checkpoint and must load with ``torch.load(weights_only=True)`` (tensors and
        plain values). ``per_parameter=True`` says a step of one parameter reads only that
        parameter's gradient and state, so ``--optimizer-in-backward`` may run one instance per
        parameter; without it that flag refuses the optimizer.
    """


@hookspec
def vlkd_register_schedulers(register: Register) -> None:
    """Register learning-rate schedules (``vlkd train --scheduler NAME --scheduler-option k=v``).

    :param register: call ``register(name, factory)`` per schedule;
        ``factory(optimizer, **options)`` returns a ``torch.optim.lr_scheduler.LRScheduler``,
        stepped once after every optimizer step; ``warmup_steps`` and ``total_steps`` are passed
        when the factory declares them (from ``--warmup-steps`` and the run's length). Its
        ``state_dict()`` goes into every checkpoint, so a resumed run continues the schedule.
    """


# --- lifecycle hooks (loggers and callbacks); every implementation is called -----------------


@hookspec
def vlkd_on_train_start(run: Any) -> None:
    """Called on every rank once the model, optimizer and data are built, before step 1.
    ``run`` is the :class:`vlkd_core.training.trainer.Trainer`: it exposes ``config``,
    ``run_dir``, ``is_main`` (rank 0), ``model``, ``step``, ``epoch`` and ``state`` (a dict
    where a plugin keeps its per-run objects)."""


@hookspec
def vlkd_on_step_end(run: Any, step: int, metrics: dict[str, float]) -> None:
    """Called after each optimizer step with scalar metrics (loss, lr, samples/s, ...)."""


@hookspec
def vlkd_on_eval_end(run: Any, step: int, metrics: dict[str, float]) -> None:
    """Called after a periodic or final evaluation with the evaluators' metrics."""


@hookspec
def vlkd_on_checkpoint(run: Any, path: str) -> None:
    """Called on the main rank after a checkpoint was written atomically to ``path``."""


@hookspec
def vlkd_on_train_end(run: Any, summary: dict[str, Any]) -> None:
    """Called once when training ends, on every rank, however it ends: ``summary["status"]``
    is ``finished``, ``interrupted`` (a signal; a checkpoint was written) or ``failed``
    (``summary["error"]`` holds the one-line error). Close files and writers here."""
