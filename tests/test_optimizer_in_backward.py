"""--optimizer-in-backward: the weights of a run equal, bit for bit, those of the same run with
one optimizer stepped after backward; no gradient survives backward (that is the memory it
saves); a SIGKILLed run resumes exactly; the options it cannot work with are refused in one line."""
from __future__ import annotations

import pytest
import torch

from fault_helpers import KILLED, STEPS, assert_same_weights, config, fault_plugin_registered, run_forked  # noqa: F401 (fixture)
from train_helpers import TINY, invoke_cli
from vlkd_core.training import Trainer
from vlkd_core.training.optim_in_backward import OptimizerInBackward
from vlkd_core.training.runtime import setup_runtime, teardown_runtime

IN_BACKWARD = dict(grad_clip=0.0, optimizer_in_backward=True)


# every builtin optimizer declaring per_parameter runs one instance of it per parameter
OPTIMIZERS = {"adamw": {}, "sgd": dict(optimizer="sgd", optimizer_options={"nesterov": True}, lr=0.05,
                                       scheduler="constant")}


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_same_weights_as_one_optimizer_after_backward(tmp_path, fault_plugin_registered, optimizer):
    chosen = OPTIMIZERS[optimizer]
    assert run_forked(config(tmp_path, "after", grad_clip=0.0, **chosen)) == 0
    assert run_forked(config(tmp_path, "during", **IN_BACKWARD, **chosen)) == 0
    assert_same_weights(tmp_path / "after", tmp_path / "during")


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_sigkill_then_resume_is_exact(tmp_path, fault_plugin_registered, optimizer):
    chosen = dict(OPTIMIZERS[optimizer], **IN_BACKWARD)
    assert run_forked(config(tmp_path, "full", **chosen)) == 0
    assert run_forked(config(tmp_path, "run", **chosen), "step", 11) == KILLED
    assert run_forked(config(tmp_path, "run", resume="latest", **chosen)) == 0
    assert_same_weights(tmp_path / "full", tmp_path / "run", STEPS)


@pytest.mark.slow
def test_no_gradient_outlives_backward(tmp_path, fault_plugin_registered):
    runtime = setup_runtime()
    try:
        trainer = Trainer(config(tmp_path, "probe", **IN_BACKWARD), runtime)
        trainer._start()
        assert isinstance(trainer.optimizer, OptimizerInBackward)
        params = [p for g in trainer.optimizer.param_groups for p in g["params"]]
        before = [p.detach().clone() for p in params]
        batch = next(iter(trainer.loader))
        trainer._forward_backward(batch, sync=True)
        assert all(p.grad is None for p in params)                     # freed as they were used
        assert all(not torch.equal(a, p) for a, p in zip(before, params) if p.requires_grad)  # and stepped
    finally:
        teardown_runtime(runtime)


@pytest.mark.parametrize("flags, fix", [
    ([], "--grad-clip 0"),
    (["--grad-clip", "0", "--accum-steps", "2"], "--accum-steps 1"),
    (["--grad-clip", "0", "--precision", "fp16"], "--precision fp32 or bf16"),
])
def test_refuses_what_needs_every_gradient_first(tmp_path, flags, fix):
    out = invoke_cli(["train", *TINY, "--optimizer-in-backward", *flags, "--output-dir", str(tmp_path), "--name", "x"])
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--optimizer-in-backward" in lines[0] and lines[0].endswith(f"pass {fix}")
    assert not (tmp_path / "x").exists()
