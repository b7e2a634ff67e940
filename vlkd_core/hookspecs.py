"""The vlkd hook specifications: the whole contract between the core and its plugins.

A plugin is a module (found through the ``vlkd`` entry-point group, or registered directly)
that implements some of these hooks with ``@vlkd_core.hookimpl``. An implementation may take
any subset of a hook's arguments, by name.

*Registration hooks* (``vlkd_register_<kind>``) are called once per process, when the registry
is first built: one pluggy call per kind, so ``@hookimpl(tryfirst=True)`` / ``trylast=True``
order the calls and ``hookwrapper=True`` / ``wrapper=True`` implementations wrap them. Whatever
the order, a builtin's name is never taken over; of two plugins claiming one name, the one
called first keeps it and the other is broken, naming both. A plugin whose registration raises
is recorded as broken (``vlkd plugins list``), nothing it registered is kept, and every other
plugin registers as usual.

*Lifecycle hooks* (``vlkd_on_*``) are called by the training engine and ``vlkd eval`` as runs
progress; every implementation is called. ``run`` is a :class:`vlkd_core._host.run_context.RunContext`
(frozen: ``config``, ``run_dir``, ``model``, ``is_main``, ``rank``, ``world_size``,
``command``, ``state``, ``step``, ``epoch``), never the Trainer itself.
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol

import pluggy

from ._host.run_context import RunContext

hookspec = pluggy.HookspecMarker("vlkd")
hookimpl = pluggy.HookimplMarker("vlkd")


class Register(Protocol):
    """The callback handed to every registration hook: ``register(name, factory, **metadata)``.

    ``factory`` is a callable or a lazy ``"module:attr"`` import string (preferred: listing
    plugins then never imports torch-heavy code). The metadata keywords are the fields of
    :class:`vlkd_core._host.component_info.ComponentInfo` (``description``, ``models``,
    ``model_patterns``, ``example``, ``evals``, ``formula``, ``paper``, ``per_parameter``),
    checked at registration: an unknown keyword or a value of the wrong shape marks the plugin
    broken (nothing it registered is kept) with a one-line error naming the plugin, the
    component and the keyword. Registering the same name twice with the same factory is a
    no-op; another distribution's name is a collision. Call it only while your hook runs.
    """

    def __call__(self, name: str, factory: Any, **metadata: Any) -> None: ...


@hookspec
def vlkd_register_backbones(register: Register) -> None:
    """Register backbone *families*, addressed as ``family:model``.

    :param register: call ``register(family, factory, models=[...])`` once per family.

    ``factory(model: str, modality: str, pretrained: str | None, **options)`` must return an
    ``nn.Module`` honouring the Backbone contract (``modality``, ``output_dim``,
    ``preprocess(inputs, train=False)``, ``forward(inputs) -> [B, output_dim]``). Its other
    keyword parameters are the ``--image-option`` / ``--text-option`` keys. Pass ``models=`` so
    ``vlkd components list`` can count models and suggest names.
    """


@hookspec
def vlkd_register_heads(register: Register) -> None:
    """Register projection heads.

    :param register: call ``register(name, factory)`` per head;
        ``factory(in_dim: int, out_dim: int, **options) -> nn.Module`` mapping ``[B, in_dim]``
        to ``[B, out_dim]`` (``--head-option`` keys are its other keyword parameters).
    """


@hookspec
def vlkd_register_losses(register: Register) -> None:
    """Register losses.

    :param register: call ``register(name, factory)`` per loss; ``factory(**options)`` returns
        an ``nn.Module`` (``--loss-option NAME.key=value`` keys are its keyword parameters;
        ``student_dim`` / ``teacher_dim``, when declared, are filled in by the engine).

    The engine calls the loss with what its ``forward`` names (:mod:`vlkd_core._model.loss_inputs`):
    the classic ``loss(student, teacher)``, or any loss-inputs field (``labels``,
    ``student_tower_features``, ``inputs``, ...). A ``needs`` attribute
    (:class:`vlkd_core.contracts.LossNeeds`) asks for what changes the engine's work.
    """


@hookspec
def vlkd_register_datasets(register: Register) -> None:
    """Register datasets.

    :param register: call ``register(name, factory)`` per dataset;
        ``factory(split: str = "train", **options)`` returns a sized or iterable dataset of
        samples ``{"image": PIL.Image, "text": str, "label": int?}``. Optional metadata
        ``evals=[spec, ...]``: the ``--eval`` specs of a run training on this data when the
        user names none.
    """


@hookspec
def vlkd_register_evaluators(register: Register) -> None:
    """Register evaluators.

    :param register: call ``register(name, factory)`` per evaluator; ``factory(**options)``
        returns an object with ``evaluate(model, **kwargs) -> dict[str, float]`` (see
        :class:`vlkd_core.contracts.Evaluator`); ``--eval NAME:key=value`` sets the options.
    """


@hookspec
def vlkd_register_recipes(register: Register) -> None:
    """Register recipes.

    :param register: call ``register(name, factory)`` per recipe;
        ``factory() -> vlkd_core.training.recipes.Recipe``: the option values tuned for one job
        (``job``: the towers and data it was tuned on; ``values``: by TrainConfig key).
        ``vlkd train --recipe NAME`` fills in what the user did not set, while the run is that
        job (or always, when the user names the recipe).
    """


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


@hookspec
def vlkd_register_export_formats(register: Register) -> None:
    """Register export formats (``vlkd export RUN --format NAME``, ``vlkd.export(RUN, NAME, OUT)``).

    :param register: call ``register(name, factory, description="...")`` per format; pass
        ``description`` (one line for ``vlkd components list export_formats`` and error
        messages) so listing never imports the format's module. ``factory()`` returns an
        :class:`vlkd_core.exports.ExportFormat`: ``fits(model) -> None | str`` (None, or why
        this loaded run cannot be written, in a few words) and ``write(model, folder) -> dict``
        (write into the empty staging folder; the dict goes into ``vlkd_export.json``).
        ``model`` is a :class:`vlkd_core._model.loaded_model.LoadedModel` (``config``, ``image_tower``,
        ``text_tower``, ``image_head``, ``text_head``, ``model``, ``preprocess``, ``tokenizer``).

    A format for one family's towers asks the towers, never their classes: a tower that can be
    written in format ``NAME`` has the :class:`vlkd_core._model.abilities.ExportsAs` ability
    (``exports_as(NAME)`` gives what the format writes, or why not), read with
    :func:`vlkd_core.exports.export_part`.
    """


# --- lifecycle hooks (loggers and callbacks); every implementation is called -----------------


@hookspec
def vlkd_on_train_start(run: RunContext) -> None:
    """Called on every rank once the model, optimizer and data are built, before the first
    step (also when a run resumes: then ``run.step`` is the checkpoint's step).

    :param run: the run (see the module docstring); put per-run objects in ``run.state``.
    """


@hookspec
def vlkd_on_step_end(run: RunContext, step: int, metrics: Mapping[str, float]) -> None:
    """Called on every rank after *every* optimizer step (EMA weights, step counters, kill
    switches in tests), before the step's checkpoint is written.

    :param run: the run.
    :param step: the optimizer steps done, counting this one (1 after the first step).
    :param metrics: a :class:`vlkd_core._host.run_context.StepMetrics`: ``loss``, the loss's logs,
        ``lr``, ``epoch``, ``samples_per_s``. Values become floats when read, which waits for
        the device (a host sync); ``metrics.tensor("loss")`` does not. Logging belongs in
        :func:`vlkd_on_log`.
    """


@hookspec
def vlkd_on_log(run: RunContext, step: int, metrics: dict[str, float]) -> None:
    """Called on every rank every ``--log-every`` optimizer steps and after the last one, after
    :func:`vlkd_on_step_end` (the builtin loggers write ``metrics.jsonl`` and tensorboard here).

    :param run: the run (write files only where ``run.is_main``).
    :param step: the optimizer steps done.
    :param metrics: plain floats: ``loss``, the loss's logs, ``lr`` (of the first parameter
        group), ``epoch``, ``samples_per_s``.
    """


@hookspec
def vlkd_on_eval_end(run: RunContext, step: int, metrics: dict[str, float]) -> None:
    """Called after an evaluation: a periodic or final one during training (main rank), and
    after ``vlkd eval`` (``run.command == "eval"``; no other hook fires there).

    :param run: the run (for ``vlkd eval``, the evaluated run: its saved config and folder).
    :param step: the optimizer steps of the evaluated weights (0 for untrained towers).
    :param metrics: the evaluators' metrics by name (``zeroshot-shape/top1``, ...).
    """


@hookspec
def vlkd_on_checkpoint(run: RunContext, path: str) -> None:
    """Called on the main rank after a checkpoint was written atomically.

    :param run: the run.
    :param path: the checkpoint folder (``RUN/checkpoints/step-N``).
    """


@hookspec
def vlkd_on_train_end(run: RunContext, summary: dict[str, Any]) -> None:
    """Called once when training ends, on every rank, however it ends. Close files and writers
    here.

    :param run: the run.
    :param summary: the run summary; ``summary["status"]`` is ``finished``, ``interrupted`` (a
        signal; a checkpoint was written) or ``failed`` (``summary["error"]`` holds the one-line
        error).
    """
