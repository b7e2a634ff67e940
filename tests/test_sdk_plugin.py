"""A third party builds on the plugin SDK without a core edit: one test package, installed
through a real entry point, adds an optimizer, a learning-rate schedule, an EMA callback and a
loss reading loss-inputs fields, and a real `vlkd train` run uses them all; it also ships a
backbone family with an export format of its own, which `vlkd export` writes for a real run."""
from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file

import vlkd_core
from train_helpers import TOWERS, run_cli
from vlkd_core import testing

SDK_PLUGIN = """
    import json

    import torch
    import torch.nn.functional as F
    from torch import nn

    from vlkd_core import LossNeeds, hookimpl
    from vlkd_core.sdk import ImagePreprocess, ImageSpec, UsageError, export_part


    class SignMomentum(torch.optim.Optimizer):
        "Lion-style: step along the sign of the momentum, decoupled weight decay."

        def __init__(self, params, lr: float = 1e-4, beta: float = 0.9, weight_decay: float = 0.0):
            super().__init__(params, dict(lr=lr, beta=beta, weight_decay=weight_decay))

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    momentum = self.state[p].setdefault("momentum", torch.zeros_like(p))
                    momentum.mul_(group["beta"]).add_(p.grad, alpha=1 - group["beta"])
                    p.mul_(1 - group["lr"] * group["weight_decay"]).add_(torch.sign(momentum), alpha=-group["lr"])


    def step_decay(optimizer, total_steps: int, drops: int = 1, gamma: float = 0.1):
        "lr x gamma after each of `drops` equal parts of the run (declares no warm-up: gets none)."
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: gamma ** min(drops, step * (drops + 1) // total_steps))


    class PreHeadCosine(nn.Module):
        "Cosine distillation after the head, plus a small pull on the student tower's own features."

        needs = LossNeeds(teacher=True)

        def __init__(self, pre_head_weight: float = 0.01):
            super().__init__()
            self.pre_head_weight = pre_head_weight
            self.register_buffer("seen", torch.zeros(3, dtype=torch.long))  # rows, labels, pre-head width

        def forward(self, inputs, labels, student_tower_features):
            self.seen += torch.tensor([inputs.student.shape[0], labels.shape[0], student_tower_features.shape[1]])
            distil = (1 - F.cosine_similarity(inputs.student, inputs.teacher, dim=-1)).mean()
            return distil + self.pre_head_weight * student_tower_features.pow(2).mean()


    # -- a backbone family with an export format of its own ------------------------------------
    class ProbeImageTower(nn.Module):
        "One linear map over 8x8 RGB pixels; exportable as probe-npz (the ExportsAs ability)."

        modality = "image"

        def __init__(self, output_dim: int = 12):
            super().__init__()
            self.output_dim = output_dim
            self.image_spec = ImageSpec(8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
            self._preprocess = ImagePreprocess(self.image_spec)
            self.linear = nn.Linear(3 * 8 * 8, output_dim)

        def preprocess(self, image, train: bool = False):
            return self._preprocess(image, train)

        def forward(self, images):
            return self.linear(images.flatten(1))

        def exports_as(self, format):
            return {"weight": self.linear.weight, "bias": self.linear.bias} if format == "probe-npz" else None


    def build_probe(model: str, modality: str = "image", pretrained=None, output_dim: int = 12):
        if modality != "image":
            raise UsageError("probe towers are image towers")
        return ProbeImageTower(output_dim)


    class ProbeNpz:
        "image.npz: the probe image tower's linear map (weight, bias) for numpy."

        def fits(self, model):
            part = export_part(model.image_tower, "probe-npz")
            if isinstance(part, dict):
                return None
            return part or f"the image tower ({model.config.image}) is not a probe tower"

        def write(self, model, folder):
            import numpy as np
            part = export_part(model.image_tower, "probe-npz")
            np.savez(folder / "image.npz", **{k: v.detach().cpu().numpy() for k, v in part.items()})
            return {"files": {"image": "image.npz"}, "load": "numpy.load(FOLDER / 'image.npz')"}


    @hookimpl
    def vlkd_register_backbones(register):
        register("probe", build_probe, models=["tiny"])


    @hookimpl
    def vlkd_register_export_formats(register):
        register("probe-npz", ProbeNpz, description="image.npz: the probe image tower's linear map")


    @hookimpl
    def vlkd_register_optimizers(register):
        register("sign-momentum", SignMomentum, per_parameter=True)


    @hookimpl
    def vlkd_register_schedulers(register):
        register("step-decay", step_decay)


    @hookimpl
    def vlkd_register_losses(register):
        register("pre-head-cosine", PreHeadCosine)


    # -- an EMA of the weights, updated after every optimizer step -----------------------------
    DECAY = 0.5


    @hookimpl
    def vlkd_on_train_start(run):
        weights = {k: v.detach().clone() for k, v in run.model.state_dict().items() if v.is_floating_point()}
        run.state["ema"] = {"weights": weights, "steps": []}


    @hookimpl
    def vlkd_on_step_end(run, step, metrics):
        ema = run.state["ema"]
        ema["steps"].append(step)
        with torch.no_grad():
            for key, value in run.model.state_dict().items():
                if key in ema["weights"]:
                    ema["weights"][key].mul_(DECAY).add_(value, alpha=1 - DECAY)


    @hookimpl
    def vlkd_on_train_end(run, summary):
        if run.is_main and summary["status"] == "finished":
            from safetensors.torch import save_file
            weights = {k: v.contiguous() for k, v in run.state["ema"]["weights"].items()}  # channels-last towers
            save_file(weights, str(run.run_dir / "ema.safetensors"))
            (run.run_dir / "ema.json").write_text(json.dumps({"steps": run.state["ema"]["steps"]}))
"""


@pytest.fixture
def sdk_plugin(plugin_env):
    plugin_env("vlkd-sdk-probe", "vlkd_sdk_probe", "sdk-probe", SDK_PLUGIN)
    vlkd_core.reset_plugin_manager()
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(plugin_env.site), os.environ.get("PYTHONPATH")) if p)}
    return env


def test_the_plugins_components_pass_the_contract_kit(sdk_plugin):
    info = vlkd_core.get_plugin_manager().plugins["sdk-probe"]
    assert info.status == "ok" and info.distribution == "vlkd-sdk-probe"
    assert info.registered == {"losses": ["pre-head-cosine"], "optimizers": ["sign-momentum"],
                               "schedulers": ["step-decay"], "backbones": ["probe"],
                               "export_formats": ["probe-npz"], "hooks": ["on_step_end", "on_train_end", "on_train_start"]}
    testing.check_optimizer("sign-momentum", {"beta": 0.8})     # resumes exactly, per_parameter honest
    testing.check_scheduler("step-decay", {"drops": 2})
    testing.check_loss("pre-head-cosine")                       # called through LossInputs, labels too


@pytest.mark.slow
def test_a_real_run_trains_with_the_plugins_optimizer_schedule_loss_and_ema(tmp_path, sdk_plugin):
    flags = [*TOWERS, "--data-option", "size=32", "--data-option", "length=512", "--image-option", "output_dim=48",
             "--image-head", "linear", "--loss", "pre-head-cosine", "--teacher", "text", "--max-steps", "12",
             "--log-every", "5", "--lr", "1e-3", "--optimizer", "sign-momentum", "--optimizer-option", "beta=0.8",
             "--scheduler", "step-decay", "--scheduler-option", "drops=2", "--scheduler-option", "gamma=0.5",
             "--output-dir", str(tmp_path), "--name", "run"]
    result = run_cli(["train", *flags], env=sdk_plugin)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    folder = run / "checkpoints" / "step-0000012"
    # the optimizer's state and options are in the checkpoint; the schedule ran to its end
    training = torch.load(folder / "training.pt", weights_only=True)
    groups = training["optimizer"]["param_groups"]
    assert {g["beta"] for g in groups} == {0.8} and {g["lr"] for g in groups} == {1e-3 * 0.5 ** 2}
    assert training["optimizer"]["state"] and all("momentum" in s for s in training["optimizer"]["state"].values())
    assert training["scheduler"]["last_epoch"] == 12
    # the loss got its loss-inputs fields: every row, its labels, the 48-wide pre-head features
    weights = load_file(folder / "weights.safetensors")
    assert weights["losses.pre-head-cosine.seen"].tolist() == [32 * 12, 32 * 12, 48 * 12]
    # the EMA callback saw every optimizer step (not only the logging ones) and differs from the raw weights
    assert json.loads((run / "ema.json").read_text())["steps"] == list(range(1, 13))
    ema = load_file(run / "ema.safetensors")
    raw = {k.removeprefix("model."): v for k, v in weights.items() if k.startswith("model.")}
    assert ema.keys() == raw.keys()
    assert any(not torch.equal(ema[k], raw[k]) for k in ema)
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert logged == [5, 10, 12]


def test_a_real_run_is_exported_in_the_plugins_own_format(tmp_path, sdk_plugin):
    """No edit under vlkd_core: the format comes through the entry point, decides what fits by
    asking the tower (exports_as), and `vlkd export --format probe-npz` writes it."""
    import numpy as np
    from export_runs import images, train_run
    from typer.testing import CliRunner
    from vlkd_cli.app import app
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["components", "list", "export_formats", "--json"]).stdout)
    assert {"name": "probe-npz", "plugin": "sdk-probe", "distribution": "vlkd-sdk-probe"}.items() <= \
        next(row for row in listed if row["name"] == "probe-npz").items()
    run = train_run(tmp_path / "runs", "probe", image="probe:tiny", image_options={"output_dim": 64},
                    image_head=None)
    out = tmp_path / "npz"
    result = runner.invoke(app, ["export", str(run), "--format", "probe-npz", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "vlkd_export.json").read_text())["format"] == "probe-npz"
    written = np.load(out / "image.npz")
    model = vlkd_core.load(run)
    tower = model.image_tower
    assert np.array_equal(written["weight"], tower.linear.weight.detach().numpy())
    pixels = torch.stack([model.preprocess(p) for p in images(3)])
    features = pixels.flatten(1) @ torch.from_numpy(written["weight"]).T + torch.from_numpy(written["bias"])
    assert torch.allclose(features, model.encode_image(pixels, normalize=False), atol=1e-5)
    # a run whose image tower does not offer the format: refused, naming the formats that fit
    toy = train_run(tmp_path / "runs", "toy")
    refused = runner.invoke(app, ["export", str(toy), "--format", "probe-npz", "--out", str(tmp_path / "no")])
    assert refused.exit_code == 2 and "is not a probe tower" in refused.stderr
    assert refused.stderr.strip().endswith("formats that fit: safetensors, onnx")
