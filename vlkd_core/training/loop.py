"""The training recipe: compose -> data -> optimise -> evaluate -> checkpoint, on one process or
under torchrun. Read top to bottom; every component lives in its own module."""
from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from .. import api
from ..contracts import loss_needs
from ..errors import NonFiniteLossError
from ..images import training_transform
from ..plugins import get_plugin_manager
from . import checkpoint as ckpt
from . import wiseft
from .cache import FeatureCache, model_fingerprint
from .compose import compose
from .config import TrainConfig
from .data import build_loader
from .evals import build_evaluators
from .layer_decay import depth_functions
from .optim import build_optimizer, optimizer_summary, param_groups, warmup_cosine
from .progress import TrainProgress
from .runlock import RunLock
from .signals import StopOnSignal
from .runtime import RunContext, resolve_run_dir, seed_everything, setup_runtime, teardown_runtime
from .step import TrainStep


def _caches(cfg: TrainConfig, comp) -> dict[str, FeatureCache | None]:
    caches: dict[str, FeatureCache | None] = {}
    for side in ("image", "text"):
        tower = getattr(comp.model, f"{side}_tower")
        if cfg.feature_cache == "none" or not comp.frozen[side]:
            caches[side] = None
            continue
        spec = getattr(cfg, side)
        fp = model_fingerprint(spec, tower, extra=f"{cfg.data}|{json.dumps(cfg.data_options, sort_keys=True)}"
                               if side == "image" else "")
        caches[side] = FeatureCache(fp, cfg.feature_cache_dir if cfg.feature_cache == "disk" else None)
    return caches


def _amp(cfg: TrainConfig, device: torch.device):
    if cfg.precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def train(cfg: TrainConfig, console: Any = None) -> dict[str, Any]:
    """Train as configured; returns the run summary (also written to RUN/summary.json)."""
    rt = setup_runtime()
    try:
        return _train(cfg, rt, console)
    finally:
        teardown_runtime(rt)


def _train(cfg: TrainConfig, rt, console) -> dict[str, Any]:
    seed_everything(cfg.seed)
    run_dir = resolve_run_dir(cfg, main=rt.is_main)
    comp = compose(cfg)                          # fails on impossible combinations, before any data
    depths = depth_functions(comp.model, {"image": cfg.image, "text": cfg.text}, cfg.layer_decay)
    evaluators = build_evaluators(cfg.eval_specs()) if rt.is_main else []
    comp.model.to(rt.device), comp.proto_heads.to(rt.device), comp.losses.to(rt.device)
    if cfg.compile:
        for side in ("image", "text"):
            tower = getattr(comp.model, f"{side}_tower")
            tower.forward = torch.compile(tower.forward)
    caches = _caches(cfg, comp)
    step_module = TrainStep(comp, caches)

    dataset = api.build_dataset(cfg.data, split="train", **cfg.data_options)
    if cfg.strict and hasattr(dataset, "strict"):
        dataset.strict = True
    image_tower = comp.model.image_tower
    loader, view, sampler = build_loader(dataset, training_transform(image_tower, cfg.augment),
                                         cfg.batch_size, cfg.seed,
                                         rt.rank, rt.world, cfg.episode_size, cfg.workers,
                                         train_transforms=not comp.frozen["image"])
    if sampler is None and not cfg.max_steps:
        from ..errors import UsageError
        raise UsageError(f"dataset '{cfg.data}' streams without a length: pass --max-steps")
    steps_per_epoch = sampler.batches_per_epoch // cfg.accum_steps if sampler else cfg.max_steps
    if steps_per_epoch < 1:
        from ..errors import UsageError
        raise UsageError(f"--accum-steps {cfg.accum_steps} is more than the {sampler.batches_per_epoch} "
                         "batches of an epoch")
    total_steps = cfg.max_steps or steps_per_epoch * cfg.epochs

    lrs = {"image": cfg.image_lr or cfg.lr, "text": cfg.text_lr or cfg.lr, "other": cfg.lr}
    named = {"image": list(comp.model.image_tower.named_parameters()) + [("head." + n, p) for n, p in comp.model.image_head.named_parameters()],
             "text": list(comp.model.text_tower.named_parameters()) + [("head." + n, p) for n, p in comp.model.text_head.named_parameters()],
             "other": list(comp.proto_heads.named_parameters()) + list(comp.losses.named_parameters())}
    optimizer = build_optimizer(param_groups(named, lrs, cfg.weight_decay, depths))
    scheduler = warmup_cosine(optimizer, cfg.warmup_steps, total_steps)
    scaler = torch.amp.GradScaler(rt.device.type, enabled=cfg.precision == "fp16")

    step, epoch, batch_in_epoch = 0, 0, 0
    if cfg.resume:
        folder = ckpt.find_checkpoint(cfg.resume, run_dir)
        ckpt.load_weights(folder, step_module)
        state = ckpt.load_training_state(folder)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"][min(rt.rank, len(state["rng"]) - 1)])
        step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        ckpt.release()  # loaded: drop this process's read leases, so our own pruning may delete it later
        if step >= total_steps:  # a finished run: say so, write nothing
            from .resume import completed_summary
            return completed_summary(run_dir, step, total_steps)

    trainable = step_module
    if rt.distributed:
        trainable = torch.nn.parallel.DistributedDataParallel(
            step_module, broadcast_buffers=False, find_unused_parameters=False,
            device_ids=[rt.device.index] if rt.device.type == "cuda" else None)

    run = RunContext(cfg, run_dir, rt, comp.model, step, epoch)
    hook = get_plugin_manager().hook
    if rt.is_main:
        rt.resources.enter_context(RunLock(run_dir))  # one training per run folder
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        wiseft.prepare_start(run_dir, comp.model, bool(cfg.resume), cfg.eval_wise_ft)
        (run_dir / "optimizer.json").write_text(json.dumps(optimizer_summary(optimizer), indent=2))
    hook.vlkd_on_train_start(run=run)

    def gather_rng() -> list[dict]:
        mine = ckpt.rng_state()
        if not rt.distributed:
            return [mine]
        everyone: list[Any] = [None] * rt.world
        torch.distributed.all_gather_object(everyone, mine)
        return everyone

    last_ckpt: Path | None = None

    def save() -> None:
        nonlocal last_ckpt
        rngs = gather_rng()
        if rt.is_main:
            training = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict(), "rng": rngs, "step": step, "epoch": epoch,
                        "batch_in_epoch": batch_in_epoch}
            last_ckpt = ckpt.save_checkpoint(run_dir, step, step_module, training,
                                             {"config": cfg.to_dict(), "epoch": epoch},
                                             keep=cfg.keep_checkpoints)
            for cache in caches.values():
                if cache is not None:
                    cache.save()
            hook.vlkd_on_checkpoint(run=run, path=str(last_ckpt))

    progress = TrainProgress(total_steps, enabled=rt.is_main and cfg.progress, console=console)
    metrics: dict[str, float] = {}
    eval_metrics: dict[str, float] = {}
    skipped_total, samples_seen, t_start = 0, 0, time.perf_counter()
    after_step_losses = [loss for loss in comp.losses.values() if loss_needs(loss).after_step]
    step_module.train()
    stop = rt.resources.enter_context(StopOnSignal())  # SIGINT/SIGTERM: finish the step, checkpoint
    with progress:
        progress.advance_to(step)
        while step < total_steps:
            for loss in comp.losses.values():
                if hasattr(loss, "set_epoch"):
                    loss.set_epoch(epoch, cfg.epochs)
            view.epoch = epoch
            if hasattr(dataset, "set_epoch"):  # streaming sets reshuffle their shards per epoch
                dataset.set_epoch(epoch)
            if sampler is not None:
                sampler.set_epoch(epoch, batch_in_epoch * cfg.accum_steps)
            micro = 0
            optimizer.zero_grad(set_to_none=True)  # drop an incomplete accumulation from last epoch
            t_step = time.perf_counter()
            for batch in loader:
                skipped_total += batch.skipped
                if len(batch) == 0:  # every sample of the batch was unreadable
                    continue
                sync = micro + 1 == cfg.accum_steps or not rt.distributed
                with (contextlib.nullcontext() if sync else trainable.no_sync()), _amp(cfg, rt.device):
                    loss_value, logs = trainable(batch)
                if not torch.isfinite(loss_value.detach()):
                    where = f"; the last good checkpoint is {last_ckpt}" if last_ckpt else ""
                    raise NonFiniteLossError(f"loss became {loss_value.item()} at step {step + 1} "
                                             f"(epoch {epoch}){where}. Try a lower --lr, --grad-clip "
                                             "or --precision fp32")
                scaler.scale(loss_value / cfg.accum_steps).backward()
                micro += 1
                samples_seen += len(batch) * rt.world
                if micro < cfg.accum_steps:
                    continue
                micro = 0
                if cfg.grad_clip:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                for loss in after_step_losses:  # e.g. InfoNCE clamps its logit scale in place
                    loss.after_optimizer_step()
                step += 1
                batch_in_epoch += 1
                now = time.perf_counter()
                metrics = {"loss": float(loss_value.detach()), **logs,
                           "lr": optimizer.param_groups[0]["lr"], "epoch": epoch,
                           "samples_per_s": len(batch) * rt.world * cfg.accum_steps / max(now - t_step, 1e-9)}
                t_step = now
                run.step, run.epoch = step, epoch
                progress.update(step, metrics)
                if step % cfg.log_every == 0 or step == total_steps:
                    hook.vlkd_on_step_end(run=run, step=step, metrics=metrics)
                if cfg.save_every and step % cfg.save_every == 0:
                    save()
                if stop.requested(rt.distributed, rt.device):
                    if not (cfg.save_every and step % cfg.save_every == 0):
                        save()
                    raise stop.interrupted(step, last_ckpt, run_dir, cfg.output_dir, rt.is_main)
                if step >= total_steps:
                    break
            else:  # epoch finished
                epoch += 1
                batch_in_epoch = 0
                if cfg.eval_every and epoch % cfg.eval_every == 0 and step < total_steps and rt.is_main:
                    eval_metrics = wiseft.evaluate(evaluators, comp.model, run_dir, cfg.eval_wise_ft)
                    hook.vlkd_on_eval_end(run=run, step=step, metrics=eval_metrics)
                    step_module.train()
                continue
            break
    save()
    elapsed = time.perf_counter() - t_start
    if rt.is_main and evaluators:
        eval_metrics = wiseft.evaluate(evaluators, comp.model, run_dir, cfg.eval_wise_ft)
        hook.vlkd_on_eval_end(run=run, step=step, metrics=eval_metrics)
    summary = {"run_dir": str(run_dir), "steps": step, "epochs": round(step / steps_per_epoch, 2), "train_seconds": round(elapsed, 2),
               "samples_per_s": round(samples_seen / max(elapsed, 1e-9), 2),
               "final_loss": metrics.get("loss", math.nan), "skipped_samples": skipped_total,
               "feature_cache": {side: {"entries": len(c), "hits": c.hits, "misses": c.misses}
                                 for side, c in caches.items() if c is not None},
               "metrics": eval_metrics, "checkpoint": str(last_ckpt) if last_ckpt else None,
               "optimizer": optimizer_summary(optimizer)}
    if rt.is_main:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    hook.vlkd_on_train_end(run=run, summary=summary)
    return summary
