"""vlkd_on_train_end fires however a run ends (the hook spec's promise), so loggers close their
files: after a NaN stop the tensorboard writer is closed and its events are on disk."""
import json
import re
import os
from pathlib import Path

import pytest
import vlkd_core as vlkd
from vlkd_core.errors import NonFiniteLossError
from vlkd_core.training import TrainConfig, train

pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

RECORDER = """
    import json
    from vlkd_core import hookimpl

    @hookimpl
    def vlkd_on_train_end(run, summary):
        if run.is_main:
            (run.run_dir / "ended.json").write_text(json.dumps(
                {"status": summary["status"], "error": summary.get("error"), "step": run.step}))
"""


def _config(tmp_path, **overrides) -> TrainConfig:
    base = dict(image="toy:tiny", text="toy:tiny", image_options={"image_size": 32}, image_head=None,
                batch_size=16, epochs=1, max_steps=4, warmup_steps=0, eval=[], progress=False,
                log_every=1, data_options={"size": 32, "length": 64}, output_dir=str(tmp_path), name="run",
                loss="infonce", teacher="none")
    return TrainConfig(**dict(base, **overrides))


def _open_files_under(folder: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


def _logged_steps(folder: Path) -> set[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {e.step for e in acc.Scalars("train/loss")}


@pytest.fixture
def recorder(plugin_env):
    plugin_env("vlkd-recorder", "vlkd_recorder", "recorder", RECORDER)
    vlkd.reset_plugin_manager()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to list open files")
def test_train_end_fires_after_a_nan_stop_and_tensorboard_is_closed(tmp_path, recorder):
    with pytest.raises(NonFiniteLossError):
        train(_config(tmp_path, lr=1e30, grad_clip=0.0, max_steps=20))
    ended = json.loads((tmp_path / "run" / "ended.json").read_text())
    assert ended["status"] == "failed" and "loss became" in ended["error"]
    board = tmp_path / "run" / "tensorboard"
    assert _open_files_under(board) == []                     # the writer was closed
    bad = int(re.search(r"at step (\d+)", ended["error"]).group(1))  # found at that step's log, not logged
    assert _logged_steps(board) == set(range(1, bad))  # and flushed every step logged before it


def test_train_end_reports_a_finished_run(tmp_path, recorder):
    train(_config(tmp_path))
    ended = json.loads((tmp_path / "run" / "ended.json").read_text())
    assert ended == {"status": "finished", "error": None, "step": 4}
    assert _open_files_under(tmp_path / "run" / "tensorboard") == []
