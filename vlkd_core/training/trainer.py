"""The Trainer: one run, read top to bottom.

    trainer = Trainer(cfg, runtime)   # compose -> data -> optimizer (nothing written yet)
    summary = trainer.fit()           # resume, epochs of optimizer steps, checkpoints, evaluation

Lifecycle hooks receive ``self.context`` as ``run``: a frozen RunContext (``config``,
``run_dir``, ``model``, ``is_main``, ``rank``, ``world_size``, ``state``, read-only ``step`` and
``epoch``), never the trainer. ``vlkd_on_step_end`` fires after every optimizer step,
``vlkd_on_log`` every ``--log-every``; ``vlkd_on_train_end`` fires however the run ends
(finished, stopped by a signal, failed), with ``summary["status"]`` saying which.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from ..contracts import EpochAware
from ..errors import NonFiniteLossError, UsageError
from ..features.teacher import adopt_views, check_covers, reinforced_teacher, teacher_source
from .._model.images import PairedViews, training_transform
from .._runtime.notices import notice
from .._host.plugins import get_plugin_manager
from .._host.run_context import RunContext, StepMetrics
from .._runfiles.runfiles import write_atomic
from .._runfiles.storage import write_errors
from . import checkpoint as ckpt
from . import fsdp, wiseft
from .cache import FeatureCache, model_fingerprint
from .compose import compose
from .config import TrainConfig
from .data import Batch, TrainingTokens, Views, build_loader
from .episodes import episode_for
from .evals import build_evaluators
from .inputs import FirstInputs, describe_towers, start_lines, write_inputs
from .layer_decay import depth_functions
from .memory_format import wants_channels_last
from .optim import build_optimizer, build_scheduler, check_optimization, optimizer_summary, param_groups
from .progress import TrainProgress
from .runlock import RunLock
from .runtime import Runtime, resolve_run_dir, seed_everything
from .signals import StopOnSignal
from .sources import build_training_data


class Trainer:
    def __init__(self, cfg: TrainConfig, runtime: Runtime, console: Any = None):
        self.config, self.runtime, self.console = cfg, runtime, console
        self.hook = get_plugin_manager().hook
        self.state: dict[str, Any] = {}          # for hooks (loggers) to keep per-run objects
        self.step = self.epoch = self.batch_in_epoch = 0
        self.samples_seen = self.skipped = 0
        self.last_checkpoint: Path | None = None
        self.metrics: dict[str, float] = {}
        self.eval_metrics: dict[str, float] = {}
        seed_everything(cfg.seed)
        adopted = adopt_views(cfg)  # a reinforced store's K, before the config is written
        if adopted and runtime.is_main:
            notice(adopted)
        self.run_dir = resolve_run_dir(cfg, main=runtime.is_main)
        self.bundle = compose(cfg)               # fails on impossible combinations, before any data
        check_optimization(cfg)
        self.context = RunContext(cfg, self.run_dir, self.bundle.model, runtime.is_main, runtime.rank,
                                  runtime.world, "train", self.state, lambda: (self.step, self.epoch))
        if cfg.init_from and not cfg.resume:     # a new run starting from another run's weights
            from .init_from import init_from
            init_from(self.bundle.model, cfg.init_from)
        self.evaluators = build_evaluators(cfg.eval_specs()) if runtime.is_main else []
        self.evaluating = bool(cfg.eval_specs())  # on every rank: --fsdp gathers for evaluation
        self._eval_copy = None
        self.optimizer = None                     # built once the bundle is wrapped (see _start)
        self._resumed: tuple[dict, dict | None] | None = None
        self._first_inputs: FirstInputs | None = None
        self._bad: tuple[torch.Tensor, torch.Tensor] | None = None  # first non-finite step, value
        self._resumed_from: Path | None = None
        if cfg.fsdp and not runtime.distributed:
            raise UsageError("--fsdp shards the towers across processes: add --nproc-per-node 2 (or more)")
        if cfg.optimizer_in_backward and runtime.distributed:
            raise UsageError("--optimizer-in-backward steps a parameter before processes have averaged its "
                             "gradient: run it on one process")
        self._place()
        self._build_data()
        check_covers(self._stored_teacher or self.caches.get(self.bundle.teacher or ""), cfg, self.dataset)  # before any step

    @property
    def is_main(self) -> bool:
        return self.runtime.is_main

    @property
    def model(self):
        return self.bundle.model

    # -- building -----------------------------------------------------------------------------
    def _place(self) -> None:
        """Device, optional torch.compile, and feature caches for locked towers."""
        cfg = self.config
        self.bundle.to(self.runtime.device)
        if wants_channels_last(cfg.channels_last, self.bundle.tower("image"), sharded=cfg.fsdp,
                               trainable=not self.bundle.frozen["image"]):
            self.bundle.tower("image").to(memory_format=torch.channels_last)
        if cfg.compile:
            for side in ("image", "text"):
                tower = self.bundle.tower(side)
                tower.forward = torch.compile(tower.forward)
        teacher = self.bundle.teacher_model
        reinforced = reinforced_teacher(cfg, teacher)  # its features from a reinforced store
        self._recorded_crops, self._stored_teacher = reinforced or (None, None)
        caches: dict[str, FeatureCache | None] = {}
        for side in ("image", "text"):
            if cfg.teacher_features and side == self.bundle.teacher and not reinforced:  # the store is the cache
                caches[side] = teacher_source(cfg, side)
                continue
            if cfg.feature_cache == "none" or not self.bundle.frozen[side]:
                caches[side] = None
                continue
            extra = f"{cfg.data}|{json.dumps(cfg.data_options, sort_keys=True)}" if side == "image" else ""
            fingerprint = model_fingerprint(cfg.tower(side).spec, self.bundle.tower(side), extra=extra)
            caches[side] = FeatureCache(fingerprint, cfg.feature_cache_dir if cfg.feature_cache == "disk" else None)
        if reinforced:
            self.bundle.use_teacher_model(teacher, None, self._stored_teacher)
        elif teacher is not None:  # its caption embeddings: cached, and in the checkpoint
            teacher.to(self.runtime.device)
            cache = FeatureCache(model_fingerprint(f"teacher-model:{teacher.spec}", teacher)) \
                if cfg.feature_cache != "none" else None
            self.bundle.use_teacher_model(teacher, cache)
            caches["teacher_text"] = cache
        self.bundle.use_caches(caches)
        self.caches = caches

    def _image_transform(self):
        """The student image tower's preset; with a teacher model, both views from one draw."""
        tower, teacher = self.bundle.tower("image"), self.bundle.teacher_model
        if teacher is None or self._stored_teacher is not None:  # a store: its crops are replayed
            return training_transform(tower, self.config.augment)
        spec = getattr(tower, "image_spec", None)
        if spec is None:
            raise UsageError(f"--teacher-model: the image tower '{self.config.image}' declares no image_spec, so "
                             "the teacher cannot be shown the crop it trains on")
        return PairedViews(spec, teacher.image_spec, self.config.augment)

    def _build_data(self) -> None:
        cfg, rt = self.config, self.runtime
        self.dataset = build_training_data(cfg)
        self.loader, self.view, self.sampler = build_loader(
            self.dataset, self._image_transform(), cfg.batch_size,
            cfg.seed, rt.rank, rt.world, cfg.episode_size, cfg.workers,
            train_transforms=not self.bundle.frozen["image"],
            # a trainable text tower reads every caption every step: tokenise in the loader (a
            # locked one with a cache tokenises only the captions it has not encoded yet)
            tokenize=TrainingTokens(self.bundle.tower("text")) if not self.bundle.frozen["text"] else None,
            views=Views(cfg.augmentations, self._recorded_crops) if cfg.augmentations else None)
        if self.sampler is None and not cfg.max_steps:
            raise UsageError(f"dataset '{cfg.data}' streams without a length: pass --max-steps")
        batches = self.sampler.batches_per_epoch if self.sampler else None
        self.steps_per_epoch = batches // cfg.accum_steps if batches is not None else cfg.max_steps
        if self.steps_per_epoch < 1:
            raise UsageError(f"--accum-steps {cfg.accum_steps} is more than the {batches} batches "
                             "of an epoch")
        self.total_steps = cfg.max_steps or self.steps_per_epoch * cfg.epochs

    def _build_optimizer(self) -> None:
        cfg = self.config
        depths = depth_functions(self.bundle.model, {side: cfg.tower(side).spec for side in ("image", "text")},
                                 cfg.layer_decay)
        lrs = {side: cfg.tower(side).lr or cfg.lr for side in ("image", "text")} | {"other": cfg.lr}
        groups = param_groups(self.bundle.named_parameters_by_side(), lrs, cfg.weight_decay, depths)
        self.optimizer = build_optimizer(cfg.optimizer, cfg.optimizer_options, groups, cfg.optimizer_in_backward)
        self.scheduler = build_scheduler(cfg.scheduler, cfg.scheduler_options, self.optimizer,
                                         cfg.warmup(self.total_steps), self.total_steps)
        self.scaler = torch.amp.GradScaler(self.runtime.device.type, enabled=cfg.precision == "fp16")

    # -- the run ------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train to the last step; returns the summary (also RUN/summary.json)."""
        if self.config.resume and self.resume():
            from .resume import completed_summary  # a finished run: say so, write nothing
            return completed_summary(self.run_dir, self.step, self.total_steps)
        summary: dict[str, Any] = {"status": "failed"}
        try:
            with write_errors(f"run '{self.run_dir}'"):  # a full disk: one line, whichever file hit it
                self._start()
                self._train_steps()
                self.save()
                summary = self.finish_summary("finished", self.evaluate())
            return summary
        except BaseException as exc:
            summary = self.finish_summary(_status_of(exc), self.eval_metrics, error=exc)
            raise
        finally:
            self.hook.vlkd_on_train_end(run=self.context, summary=summary)

    def resume(self) -> bool:
        """Load the weights of the checkpoint ``--resume`` names into the (not yet wrapped) bundle
        and read its training state, applied once the optimizer exists; True when the run had
        already finished."""
        folder = ckpt.find_checkpoint(self.config.resume, self.run_dir)
        ckpt.load_weights(folder, self.bundle)
        state = ckpt.load_training_state(folder)
        sharded = None
        if self.config.fsdp:
            fsdp.check_world(folder, self.runtime.world)
            sharded = ckpt.load_training_state(folder, fsdp.optimizer_file(self.runtime.rank))
        self._resumed = (state, sharded)
        self.step, self.epoch, self.batch_in_epoch = ckpt.position(folder, state)
        self._resumed_from = folder
        ckpt.release()  # loaded: drop our read leases, so our own pruning may delete it later
        return self.step >= self.total_steps

    def _restore_training(self, state: dict, sharded_optimizer: dict | None) -> None:
        try:
            self._apply_training_state(state, sharded_optimizer)
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:  # its manifest vouches for it
            why = (str(exc).strip().splitlines() or [""])[0][:120]
            raise UsageError(f"checkpoint '{self._resumed_from}': its training state does not fit this "
                             f"run ({type(exc).__name__} {why})") from None

    def _apply_training_state(self, state: dict, sharded_optimizer: dict | None) -> None:
        if sharded_optimizer is not None:
            fsdp.load_local_optimizer_state(self.optimizer, sharded_optimizer)
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"][min(self.runtime.rank, len(state["rng"]) - 1)])
        self._restore_caches(state.get("feature_caches"))

    def _wrap(self) -> None:
        """What trains: the bundle itself, DDP around it, or the bundle sharded by FSDP2."""
        rt = self.runtime
        self.trainable = self.bundle
        if self.config.fsdp:
            self.replicated = fsdp.shard(self.bundle)
        elif rt.distributed:
            self.trainable = torch.nn.parallel.DistributedDataParallel(
                self.bundle, broadcast_buffers=False, find_unused_parameters=False,
                device_ids=[rt.device.index] if rt.device.type == "cuda" else None)

    def _start(self) -> None:
        cfg, rt = self.config, self.runtime
        if rt.is_main:
            rt.resources.enter_context(RunLock(self.run_dir))  # one training per run folder
            ckpt.remove_leftovers(self.run_dir / "checkpoints")  # of a failed or killed save: disk space
            write_atomic(self.run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2), durable=False)
            wiseft.prepare_start(self.run_dir, self.bundle.model, bool(cfg.resume), cfg.eval_wise_ft)
        self._wrap()
        self._build_optimizer()
        if self._resumed is not None:
            self._restore_training(*self._resumed)
        if rt.is_main:
            write_atomic(self.run_dir / "optimizer.json", json.dumps(optimizer_summary(self.optimizer), indent=2),
                         durable=False)
        self.stop = rt.resources.enter_context(StopOnSignal())  # finish the step, checkpoint, stop
        self._say_inputs()
        self.hook.vlkd_on_train_start(run=self.context)

    def _say_inputs(self) -> None:
        """One line per tower on what it receives (RUN/inputs.json); the first batch's shapes
        are measured where the towers get them and added after the first step."""
        self.inputs = {"towers": describe_towers(self.bundle, self.config.augment, not self.bundle.frozen["image"])}
        self._first_inputs = FirstInputs({side: self.bundle.tower(side) for side in ("image", "text")})
        if not self.is_main:
            return
        write_inputs(self.run_dir, self.inputs["towers"])
        for line in start_lines(self.inputs["towers"]) if self.console is not None else ():
            self.console.print(f"[dim]{line}[/]", soft_wrap=True, highlight=False)

    def _record_first_inputs(self) -> None:
        self._first_inputs.close()
        self.inputs["first_batch"] = self._first_inputs.shapes()
        self._first_inputs = None
        if self.is_main:
            write_inputs(self.run_dir, self.inputs["towers"], self.inputs["first_batch"])

    def _train_steps(self) -> None:
        self.t_start = time.perf_counter()
        self.bundle.train()
        progress = TrainProgress(self.total_steps, enabled=self.is_main and self.config.progress,
                                 console=self.console)
        with progress:
            progress.advance_to(self.step)
            while self.step < self.total_steps:
                if self.run_epoch(progress):
                    self.epoch += 1
                    self.batch_in_epoch = 0
                    self._periodic_eval()

    def run_epoch(self, progress: TrainProgress) -> bool:
        """Optimizer steps over (the rest of) one epoch; True when the epoch's data ran out."""
        cfg = self.config
        self.bundle.start_epoch(self.epoch, cfg.epochs)
        self.view.epoch = self.epoch
        if isinstance(self.dataset, EpochAware):  # streaming sets reshuffle their shards per epoch
            self.dataset.set_epoch(self.epoch)
        if self.sampler is not None:
            self.sampler.set_epoch(self.epoch, self.batch_in_epoch * cfg.accum_steps)
        self.bundle.start_episode(lambda: episode_for(self))  # losses declaring needs.episodes
        self.optimizer.zero_grad(set_to_none=True)  # drop an incomplete accumulation
        micro, t_step = 0, time.perf_counter()
        for batch in self.loader:
            batch = self._agree_on_batch(batch)
            if batch is None:  # every sample of the batch was unreadable (on some rank)
                continue
            loss, logs = self._forward_backward(batch, sync=micro + 1 == cfg.accum_steps)
            micro += 1
            if micro < cfg.accum_steps:
                continue
            micro = 0
            self.optimizer_step()
            now = time.perf_counter()
            self._after_step(loss, logs, len(batch) * self.runtime.world * cfg.accum_steps / max(now - t_step, 1e-9))
            t_step = now
            progress.update(self.step, self.metrics)
            if self.step >= self.total_steps:
                return False
        return True

    def _agree_on_batch(self, batch: Batch) -> Batch | None:
        """Skip a batch on every rank or none (DDP and the losses' gathers need every rank),
        and trim to the smallest rank's batch when a loss gathers (one size on every rank)."""
        self.skipped += batch.skipped
        size = len(batch)
        if self.runtime.distributed:  # on the CPU control group: no wait for the device
            smallest = torch.tensor([size])
            torch.distributed.all_reduce(smallest, op=torch.distributed.ReduceOp.MIN, group=self.runtime.control_group)
            if int(smallest) < size and (int(smallest) == 0 or self.bundle.gathers()):
                size = int(smallest)
        return batch.head(size) if size else None

    def _forward_backward(self, batch: Batch, sync: bool) -> tuple[torch.Tensor, dict[str, float]]:
        cfg, rt = self.config, self.runtime
        with self._gradient_sync(sync), _autocast(cfg, rt.device):
            loss, logs = self.trainable(batch)
        self._note_non_finite(loss.detach())
        self.scaler.scale(loss / cfg.accum_steps).backward()
        self.samples_seen += len(batch) * rt.world
        return loss, logs

    def _note_non_finite(self, loss: torch.Tensor) -> None:
        """Remember, on the device, the first step whose loss was not finite: reading it back
        would make every step wait for the device, so it is read only where it matters (a log
        step, before any checkpoint: :meth:`_check_finite`)."""
        if self._bad is None:
            self._bad = (torch.full((), -1, dtype=torch.long, device=loss.device), torch.zeros((), device=loss.device))
        step, value = self._bad
        first = ~torch.isfinite(loss) & (step < 0)
        self._bad = (torch.where(first, self.step + 1, step), torch.where(first, loss.float(), value))

    def _check_finite(self) -> None:
        """Stop, naming the step, if a loss since the start was NaN or infinite (a host sync)."""
        if self._bad is None or int(self._bad[0]) < 0:
            return
        step, value = int(self._bad[0]), float(self._bad[1])
        where = f"; the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint else ""
        raise NonFiniteLossError(f"loss became {value} at step {step} (epoch {(step - 1) // self.steps_per_epoch})"
                                 f"{where}. Try a lower --lr, --grad-clip or --precision fp32")

    def _gradient_sync(self, sync: bool):
        """Between accumulation micro-batches, ranks do not exchange gradients."""
        if self.config.fsdp:
            return fsdp.gradient_sync(self.bundle, sync)
        if self.runtime.distributed and not sync:
            return self.trainable.no_sync()
        return contextlib.nullcontext()

    def optimizer_step(self) -> None:
        if self.config.fsdp:
            fsdp.average_replicated_grads(self.replicated)
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.bundle.after_optimizer_step()
        self.step += 1
        self.batch_in_epoch += 1

    def _after_step(self, loss: torch.Tensor, logs: dict, samples_per_s: float) -> None:
        """Tell the plugins (every step; as numbers only on logging steps), checkpoint when due,
        and stop here if a signal arrived. Loss values become numbers only on steps that log, so
        other steps never wait for the device (``self.metrics`` holds the last logged step's)."""
        cfg = self.config
        if self._first_inputs is not None:
            self._record_first_inputs()
        values = {"loss": loss.detach(), **logs}
        extra = {"lr": self.optimizer.param_groups[0]["lr"], "epoch": self.epoch, "samples_per_s": samples_per_s}
        self.hook.vlkd_on_step_end(run=self.context, step=self.step, metrics=StepMetrics({**values, **extra}))
        if self.step % cfg.log_every == 0 or self.step == self.total_steps:
            self._check_finite()
            self.metrics = {**{k: float(v) for k, v in values.items()}, **extra}
            self.hook.vlkd_on_log(run=self.context, step=self.step, metrics=self.metrics)
        due = bool(cfg.save_every and self.step % cfg.save_every == 0)
        if due:
            self.save()
        if self.stop.requested(self.runtime.distributed, self.runtime.control_group):
            if not due:
                self.save()
            raise self.stop.interrupted(self.step, self.last_checkpoint, self.run_dir, cfg.output_dir,
                                        self.is_main)

    # -- checkpoints and evaluation -------------------------------------------------------------
    def _from_every_rank(self, mine: dict) -> list[dict]:
        """Each rank's ``mine``, in rank order (collective under DDP/FSDP)."""
        if not self.runtime.distributed:
            return [mine]
        everyone: list[Any] = [None] * self.runtime.world
        torch.distributed.all_gather_object(everyone, mine)
        return everyone

    def _cache_states(self) -> list[dict]:
        """Every rank's memory feature caches (a disk cache keeps itself): a locked tower computes
        a batch's misses together, so a resumed run needs the same cache to compute the same bits."""
        return self._from_every_rank({side: c.state_dict() for side, c in self.caches.items()
                                      if isinstance(c, FeatureCache) and c.path is None})

    def _restore_caches(self, states: list[dict] | None) -> None:
        if not states:  # a checkpoint written before caches travelled with it
            return
        for side, state in states[min(self.runtime.rank, len(states) - 1)].items():
            if isinstance(self.caches.get(side), FeatureCache):
                self.caches[side].load_state_dict(state)

    def save(self) -> None:
        """A checkpoint of the bundle and the training state (every rank's RNG) at this step;
        under --fsdp every rank writes its slices."""
        cfg, rt = self.config, self.runtime
        self._check_finite()  # never a checkpoint of weights a non-finite loss has touched
        training = {"scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                    "rng": self._from_every_rank(ckpt.rng_state()), "step": self.step, "epoch": self.epoch,
                    "batch_in_epoch": self.batch_in_epoch}
        training["feature_caches"] = self._cache_states()
        meta = {"config": cfg.to_dict(), "epoch": self.epoch}
        if cfg.fsdp:
            folder = ckpt.save_sharded_checkpoint(self.run_dir, self.step, self.bundle, self.optimizer, training,
                                                  meta, cfg.keep_checkpoints, rt.rank, rt.world)
        elif self.is_main:
            training["optimizer"] = self.optimizer.state_dict()
            folder = ckpt.save_checkpoint(self.run_dir, self.step, self.bundle, training, meta,
                                          keep=cfg.keep_checkpoints)
        if not self.is_main:
            return
        self.last_checkpoint = folder
        for cache in self.caches.values():
            if cache is not None:
                cache.save()
        self.hook.vlkd_on_checkpoint(run=self.context, path=str(self.last_checkpoint))

    def _model_for_eval(self):
        """The model evaluators score: the bundle's, or under --fsdp a plain copy with the
        gathered weights on the main rank (collective: every rank calls it)."""
        if not self.config.fsdp:
            return self.bundle.model
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
        full = get_model_state_dict(self.bundle, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not self.is_main:
            return None
        if self._eval_copy is None:
            self._eval_copy = compose(self.config).to(self.runtime.device)
        self._eval_copy.load_state_dict(full)
        return self._eval_copy.eval().model

    def evaluate(self) -> dict[str, float]:
        """Run the evaluators (main rank) on the current weights, and WiSE-FT's if asked."""
        if not self.evaluating:
            return self.eval_metrics
        model = self._model_for_eval()
        if not (self.is_main and self.evaluators):
            return self.eval_metrics
        self.eval_metrics = wiseft.evaluate(self.evaluators, model, self.run_dir, self.config.eval_wise_ft)
        self.hook.vlkd_on_eval_end(run=self.context, step=self.step, metrics=self.eval_metrics)
        self.bundle.train()
        return self.eval_metrics

    def _periodic_eval(self) -> None:
        every = self.config.eval_every
        if every and self.epoch % every == 0 and self.step < self.total_steps:
            self.evaluate()

    def finish_summary(self, status: str, metrics: dict[str, float], error: BaseException | None = None) -> dict[str, Any]:
        """The run summary; written to RUN/summary.json when the run finished."""
        elapsed = time.perf_counter() - getattr(self, "t_start", time.perf_counter())
        summary = {
            "run_dir": str(self.run_dir), "status": status, "steps": self.step,
            "epochs": round(self.step / self.steps_per_epoch, 2), "train_seconds": round(elapsed, 2),
            "samples_per_s": round(self.samples_seen / max(elapsed, 1e-9), 2),
            "final_loss": self.metrics.get("loss", math.nan), "skipped_samples": self.skipped,
            "feature_cache": {side: {"entries": len(c), "hits": c.hits, "misses": c.misses}
                              for side, c in self.caches.items() if c is not None},
            "metrics": metrics, "checkpoint": str(self.last_checkpoint) if self.last_checkpoint else None,
            "inputs": getattr(self, "inputs", {}),
            "optimizer": optimizer_summary(self.optimizer) if self.optimizer is not None else []}
        if error is not None:
            summary["error"] = f"{type(error).__name__}: {error}".splitlines()[0]
        if self.is_main and status == "finished":
            write_atomic(self.run_dir / "summary.json", json.dumps(summary, indent=2, default=str), durable=False)
        return summary


def _status_of(exc: BaseException) -> str:
    from .signals import TrainingInterrupted
    return "interrupted" if isinstance(exc, (TrainingInterrupted, KeyboardInterrupt)) else "failed"


def _autocast(cfg: TrainConfig, device: torch.device):
    if cfg.precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
