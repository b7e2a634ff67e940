"""A run folder is used by one training at a time, readers are never pruned under, and a signal
stops training with a checkpoint and a way to resume.

Runs are forked children of this process (see ``fault_helpers``) or real ``vlkd train``
processes with the test plugin installed through an entry point; the plugin pauses a run at a
known step (or after each checkpoint, in lockstep with the test), so signals, readers and second
trainings arrive at a known point instead of racing a timer: the tests wait on marker files,
the run's own words and its exit, never on a sleep.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import make_distribution
from fault_helpers import (FLAGS, KILLED, STEPS, assert_same_weights, config, fault_plugin_registered,  # noqa: F401
                           run_forked, start_forked, wait)
from train_helpers import TINY, run_cli
from vlkd_core.training import checkpoint as ckpt

pytestmark = [pytest.mark.usefixtures("fault_plugin_registered"), pytest.mark.slow]
TESTS = Path(__file__).parent


def _wait_for(path: Path, pid: int | None = None, proc=None, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended early with {proc.returncode}")
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def _steps(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob("step-*"))


# -- item 4: readers hold a lease; pruning skips what a reader holds ---------------------------

def test_checkpoint_held_by_a_reader_is_not_pruned_under_it(tmp_path):
    run = tmp_path / "live"
    assert run_forked(config(tmp_path, "live", keep_checkpoints=1), "step", 7) == KILLED
    assert _steps(run) == ["step-0000006"]
    folder = ckpt.find_checkpoint(str(run))  # what `vlkd eval RUN` does first: now it holds a lease
    assert folder.name == "step-0000006"
    # the run continues and saves steps 9..24 with --keep-checkpoints 1
    assert run_forked(config(tmp_path, "live", keep_checkpoints=1, resume="latest")) == 0
    assert _steps(run) == ["step-0000006", f"step-{STEPS:07d}"]
    assert ckpt.verify(folder) is None
    assert load_file(folder / "weights.safetensors")
    ckpt.release(folder)  # the reader is done: the next save may prune it
    ckpt.prune(run / "checkpoints", keep=1)
    assert _steps(run) == [f"step-{STEPS:07d}"]


def test_eval_while_the_run_saves_every_step(tmp_path):
    """In lockstep with the run (the fault plugin holds it after each checkpoint): at every save
    `vlkd eval RUN` loads the newest checkpoint and keeps its lease across the next save, which
    must not prune it; released, it is pruned by the save after."""
    from vlkd_core.training.restore import load_run
    run = tmp_path / "live"
    pid = start_forked(config(tmp_path, "live", save_every=1, keep_checkpoints=1, eval=[]),
                       "lockstep", 0, str(tmp_path))
    held, saves = None, 0
    while _saved_or_ended(tmp_path / f"saved-{saves + 1}", pid):
        saves += 1
        newest = (tmp_path / f"saved-{saves}").read_text()
        # the newest, and the one the reader held during this save (pruned at the next)
        assert _steps(run) == sorted({newest} | ({held.name} if held else set())), saves
        if held is not None:  # the reader read on while the run saved: its checkpoint is whole
            assert ckpt.verify(held) is None and load_file(held / "weights.safetensors")
            ckpt.release(held)
        restored = load_run(run)  # vlkd eval RUN: find, verify, read meta, build, load weights
        assert restored.checkpoint.name == newest
        held = restored.checkpoint
        if saves >= STEPS:  # the end of the run saves its last step once more: let go of it
            ckpt.release(held)
            held = None
        (tmp_path / f"go-{saves}").touch()
    assert wait(pid) == 0
    assert saves == STEPS + 1
    assert _steps(run) == [f"step-{STEPS:07d}"]


def _saved_or_ended(marker: Path, pid: int) -> bool:
    """Wait until the run wrote ``marker`` (True) or exited (False, the child left to reap)."""
    while not marker.exists():
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return marker.exists()
        time.sleep(0.01)
    return True


# -- item 5: one training per run folder ----------------------------------------------------

def test_second_training_with_the_same_name_is_refused_naming_the_holder(tmp_path):
    pid = start_forked(config(tmp_path, "same"), "pause", 2, str(tmp_path))
    try:
        _wait_for(tmp_path / "paused")
        second = run_cli(["train", *TINY, "--loss", "simreg", "--teacher", "text",
                          "--output-dir", str(tmp_path), "--name", "same"])
        assert second.returncode != 0
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and f"pid {pid}" in lines[0], second.stderr
        assert run_forked(config(tmp_path, "same", resume="latest")) != 0  # a resume is refused too
    finally:
        (tmp_path / "go").touch()
    assert wait(pid) == 0
    assert json.loads((tmp_path / "same" / "summary.json").read_text())["steps"] == STEPS


def test_stale_lock_of_a_killed_run_is_taken_over(tmp_path, capfd):
    pid = start_forked(config(tmp_path, "stale", save_every=1), "pause", 2, str(tmp_path))
    _wait_for(tmp_path / "paused")
    os.kill(pid, signal.SIGKILL)
    assert wait(pid) == KILLED
    assert json.loads((tmp_path / "stale" / ".lock").read_text())["pid"] == pid
    capfd.readouterr()
    assert run_forked(config(tmp_path, "stale", save_every=1, resume="latest")) == 0
    err = capfd.readouterr().err
    assert f"pid {pid}" in err and "no longer running" in err, err


# -- item 7: SIGINT / SIGTERM -----------------------------------------------------------------

@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    """The test plugin installed through a real entry point, for `vlkd train` subprocesses."""
    site = tmp_path_factory.mktemp("site")
    make_distribution(site, "vlkd-fault-test", "vlkd_fault_shim", "fault", "from fault_plugin import *\n")
    # one thread, like this process (conftest): the numerics of a run must not depend on which ran it
    return dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1",
                PYTHONPATH=os.pathsep.join([str(site), str(TESTS), os.environ.get("PYTHONPATH", "")]))


def _train_paused(tmp_path: Path, env: dict, name: str, step: int, *extra: str) -> tuple[subprocess.Popen, Path]:
    """`vlkd train` in its own process group (like a terminal's foreground job), paused at the
    end of ``step``."""
    err = tmp_path / f"{name}.stderr"
    proc = subprocess.Popen([sys.executable, "-m", "vlkd_cli", "train", *FLAGS, "--output-dir", str(tmp_path),
                             "--name", name, *extra], env=dict(env, VLKD_TEST_FAULT=f"pause:{step}:{tmp_path}"),
                            stdout=subprocess.DEVNULL, stderr=open(err, "w"), start_new_session=True)
    _wait_for(tmp_path / "paused", proc=proc)
    return proc, err


def _wait_for_text(path: Path, text: str, timeout: float = 30, times: int = 1) -> None:
    deadline = time.time() + timeout
    while path.read_text().count(text) < times:
        assert time.time() < deadline, path.read_text()
        time.sleep(0.01)


def _past_the_same_request_window() -> None:
    """Called once the run said it got the first signal: the run noted that signal's time before
    saying so, on the machine-wide monotonic clock this process reads too, so once this clock is
    SAME_REQUEST_SECONDS later the run's window is over, however slow the machine is."""
    from vlkd_core.training.signals import SAME_REQUEST_SECONDS
    end = time.monotonic() + SAME_REQUEST_SECONDS
    while time.monotonic() <= end:
        time.sleep(end - time.monotonic() + 0.001)


@pytest.mark.parametrize("sig, code, workers", [(signal.SIGINT, 130, 1), (signal.SIGTERM, 143, 0)],
                         ids=["SIGINT-to-the-group-with-a-loader-worker", "SIGTERM"])
def test_signal_finishes_the_step_checkpoints_and_says_how_to_resume(tmp_path, plugin_env, sig, code, workers):
    proc, err = _train_paused(tmp_path, plugin_env, "sig", 5, "--workers", str(workers))
    if sig == signal.SIGINT:  # Ctrl-C in a terminal reaches every process of the job, workers too
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _wait_for_text(err, "finishing this step")
    (tmp_path / "go").touch()
    assert proc.wait(120) == code, err.read_text()
    message = " ".join(err.read_text().split())
    assert message.count("finishing this step") == 1, message  # said once, not by each loader worker
    assert f"vlkd train --resume latest --name sig --output-dir {tmp_path}" in message, message
    assert "Traceback" not in message
    assert (tmp_path / "sig" / "checkpoints" / "LATEST").read_text() == "step-0000005"
    # and the resumed run ends exactly where an uninterrupted one does
    assert run_forked(config(tmp_path, "sig", save_every=None, workers=workers, resume="latest")) == 0
    assert run_forked(config(tmp_path, "ref", save_every=None, workers=workers)) == 0
    assert_same_weights(tmp_path / "ref", tmp_path / "sig")


def test_second_ctrl_c_stops_at_once_without_a_checkpoint(tmp_path, plugin_env):
    proc, err = _train_paused(tmp_path, plugin_env, "twice", 5)
    proc.send_signal(signal.SIGINT)
    _wait_for_text(err, "finishing this step")
    _past_the_same_request_window()  # a repeat within it counts as the same Ctrl-C (torchrun forwards it)
    proc.send_signal(signal.SIGINT)  # while the step is still running (paused): no "go" given
    assert proc.wait(30) == 130, err.read_text()
    assert "stopping now" in err.read_text()
    assert not (tmp_path / "twice" / "checkpoints").exists()


@pytest.mark.distributed
def test_ctrl_c_under_torchrun_checkpoints_and_exits_130(tmp_path, plugin_env):
    """`--nproc-per-node 2`: Ctrl-C to the terminal's group (the launcher) reaches each worker
    once, through torchrun; both ranks finish the step, rank 0 writes the checkpoint."""
    proc, err = _train_paused(tmp_path, plugin_env, "dist", 3, "--nproc-per-node", "2")
    os.killpg(proc.pid, signal.SIGINT)
    _wait_for_text(err, "finishing this step", times=2)  # both workers got it, through torchrun
    assert proc.poll() is None  # the launcher waits for its workers instead of dying at once
    (tmp_path / "go").touch()
    assert proc.wait(120) == 130, err.read_text()
    message = " ".join(err.read_text().split())
    assert "again: stopping now" not in message, message  # each worker got one signal
    assert "KeyboardInterrupt" not in message, message     # the launcher waited for torchrun
    assert message.count("Resume with") == 1, message       # said by rank 0 only
    assert f"vlkd train --resume latest --name dist --output-dir {tmp_path}" in message, message
    assert (tmp_path / "dist" / "checkpoints" / "LATEST").read_text() == "step-0000003"
