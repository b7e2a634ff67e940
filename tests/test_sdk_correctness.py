"""Small correctness promises of the core: what a feature cache is keyed on, config files on
the oldest supported Python, and a CLI that leaves the process as it found it."""
from __future__ import annotations

import glob
import logging
import subprocess
import sysconfig
import warnings
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from typer.testing import CliRunner

from vlkd_core.training.cache import model_fingerprint


def test_a_tower_that_differs_past_its_first_values_gets_another_fingerprint():
    torch.manual_seed(0)
    tower = torch.nn.Linear(128, 64)
    before = model_fingerprint("toy:tiny", tower)
    with torch.no_grad():
        tower.weight.view(-1)[-1] += 1e-3  # value 8192 of the tensor, past the first 4096
    assert model_fingerprint("toy:tiny", tower) != before
    assert model_fingerprint("toy:tiny", tower) == model_fingerprint("toy:tiny", tower)
    assert model_fingerprint("toy:other", tower) != model_fingerprint("toy:tiny", tower)


def _python310() -> str | None:
    found = sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.10*/bin/python3.10")) +
                   glob.glob("/usr/bin/python3.10"))
    return found[0] if found else None


@pytest.mark.skipif(_python310() is None, reason="no Python 3.10 interpreter on this machine")
def test_config_toml_reads_on_python_310(tmp_path):
    """The README promises Python 3.10+; tomllib arrived in 3.11 (3.10 reads it with tomli)."""
    path = tmp_path / "run.toml"
    path.write_text('lr = 0.01\n[loss_options.seed]\nqueue_size = 64\n')
    repo = Path(__file__).resolve().parents[1]
    code = f"from vlkd_core.training.config import load_config_file; print(load_config_file({str(path)!r}))"
    # this environment's pure-Python packages (pluggy, tomli) on the 3.10 interpreter's path
    env = {"PYTHONPATH": f"{repo}:{sysconfig.get_paths()['purelib']}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([_python310(), "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "{'lr': 0.01, 'loss_options': {'seed': {'queue_size': 64}}}"


def test_the_cli_leaves_warnings_and_logging_as_it_found_them():
    shown, handlers = warnings.showwarning, list(logging.getLogger("vlkd").handlers)
    import vlkd_cli.app
    import vlkd_cli.common  # noqa: F401
    assert warnings.showwarning is shown
    result = CliRunner().invoke(vlkd_cli.app.app, ["--disable-plugin", "nosuch", "plugins", "list"])
    assert result.exit_code == 0 and "no plugin named 'nosuch'" in result.output
    assert warnings.showwarning is shown and logging.getLogger("vlkd").handlers == handlers


class _HostReads(TorchDispatchMode):
    """Counts reads of a tensor's value back to the host (``.item()``, ``bool()``, ``float()``:
    aten._local_scalar_dense), which make the host wait for the device."""

    def __init__(self):
        super().__init__()
        self.at_steps: list[int] = []
        self.step = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.at_steps.append(self.step)
        return func(*args, **(kwargs or {}))


def test_steps_that_do_not_log_never_wait_for_the_device(tmp_path):
    from vlkd_core.training.config import TrainConfig
    from vlkd_core.training.runtime import setup_runtime, teardown_runtime
    from vlkd_core.training.trainer import Trainer
    reads = _HostReads()

    class Watched(Trainer):  # the step's three parts run under the counter
        def _forward_backward(self, batch, sync):
            reads.step = self.step + 1
            with reads:
                return super()._forward_backward(batch, sync)

        def optimizer_step(self):
            with reads:
                return super().optimizer_step()

        def _after_step(self, *args):
            with reads:
                return super()._after_step(*args)

    cfg = TrainConfig(image="toy:tiny", text="toy:tiny", image_options={"image_size": 32}, image_head=None,
                      teacher="none", loss="infonce", batch_size=16, max_steps=6, log_every=3, eval=[],
                      progress=False, data_options={"size": 32, "length": 128}, output_dir=str(tmp_path),
                      name="run", workers=0)
    runtime = setup_runtime()
    try:
        Watched(cfg, runtime).fit()
    finally:
        teardown_runtime(runtime)
    assert reads.at_steps and set(reads.at_steps) <= {3, 6}  # only the steps that log read values back


def test_a_trainable_text_tower_is_tokenised_in_the_loader_workers(tmp_path):
    """The training thread gets token tensors, made in a DataLoader worker; a locked, cached
    text tower is left to tokenise only its misses."""
    import os

    from vlkd_core import build_backbone, build_dataset
    from vlkd_core.training.data import TrainingTokens, build_loader

    class WhereTokenised(TrainingTokens):
        def __call__(self, texts):
            return {"pid": torch.tensor([os.getpid()]), **{"ids": super().__call__(texts)}}

    tower = build_backbone("toy:tiny", modality="text")
    image = build_backbone("toy:tiny", modality="image", image_size=32)
    data = build_dataset("shapes", length=16, size=32)
    loader, _, _ = build_loader(data, image.preprocess, 8, 0, 0, 1, None, workers=1, train_transforms=True,
                                tokenize=WhereTokenised(tower))
    batch = next(iter(loader))
    assert int(batch.tokens["pid"]) != os.getpid()  # a worker made them
    assert torch.equal(batch.tokens["ids"], tower.preprocess(batch.texts, train=True))
    assert torch.equal(batch.head(3).tokens["ids"], batch.tokens["ids"][:3])
