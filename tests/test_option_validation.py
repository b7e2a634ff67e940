"""Every option -- flags, config-file values, --*-option values, eval specs -- is checked against
its declared type and range before any work: one line naming the option, exit code 2."""
from __future__ import annotations

import json

import pytest

from train_helpers import TINY, invoke_cli


def _config(tmp_path, **values):
    path = tmp_path / "cfg.toml"
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    return ["--config", str(path)]


CASES = [
    ("loss option", lambda t: ["--loss-option", "infonce.init_temperature=abc"], "init_temperature"),
    ("config lr", lambda t: _config(t, lr="abc"), "lr must be a number, not 'abc'"),
    ("config epochs", lambda t: _config(t, epochs="one"), "epochs must be an integer, not 'one'"),
    ("config save_every string", lambda t: _config(t, save_every="3"), "save_every must be an integer or none, not '3'"),
    ("workers", lambda t: ["--workers", "-1"], "--workers must be >= 0, not -1"),
    ("lr", lambda t: ["--lr", "-1"], "--lr must be > 0, not -1.0"),
    ("lr not a number", lambda t: ["--lr", "abc"], "Invalid value for '--lr'"),
    ("nproc", lambda t: ["--nproc-per-node", "0"], "--nproc-per-node must be >= 1, not 0"),
    ("max steps", lambda t: ["--max-steps", "-5"], "--max-steps must be >= 1, not -5"),
    ("config range", lambda t: _config(t, keep_checkpoints=0), "keep_checkpoints must be >= 1, not 0"),
    ("eval spec", lambda t: ["--eval", "zeroshot:max_samples=abc"], "option max_samples must be an integer or none, not 'abc'"),
    ("data option", lambda t: ["--data-option", "size=abc"], "option size must be an integer, not 'abc'"),
    ("eval dataset option", lambda t: ["--eval", "retrieval:dataset=shapes,dataset.size=abc"],
     "dataset 'shapes': option size must be an integer, not 'abc'"),
    ("image option", lambda t: ["--image-option", "image_size=big"], "option image_size must be"),
    ("layer decay zero", lambda t: ["--layer-decay", "0"], "--layer-decay must be > 0, not 0.0"),
    ("layer decay above one", lambda t: ["--layer-decay", "1.5"], "--layer-decay must be <= 1, not 1.5"),
    ("config layer decay", lambda t: _config(t, layer_decay="x"), "layer_decay must be a number or none, not 'x'"),
    ("eval wise-ft", lambda t: ["--eval-wise-ft", "1.5"], "--eval-wise-ft must be <= 1, not 1.5"),
]


@pytest.mark.parametrize("case, args, message", CASES, ids=[c[0] for c in CASES])
def test_bad_value_is_one_line_naming_the_option(tmp_path, case, args, message):
    runs = tmp_path / "runs"
    result = invoke_cli(["train", *TINY, "--loss", "infonce", "--teacher", "none", *args(tmp_path),
                      "--output-dir", str(runs)])
    assert result.returncode == 2, (case, result.stdout[-500:], result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert message in lines[0], lines[0]
    assert not list(runs.glob("*/checkpoints")), "a run was started"


def test_config_types_coerce_only_where_harmless():
    from vlkd_core.errors import UsageError
    from vlkd_core.training import TrainConfig
    cfg = TrainConfig.from_dict({"lr": 1, "grad_clip": 0, "max_steps": 3.0}, source="cfg.toml")
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.max_steps == 3
    for bad in ({"epochs": True}, {"max_steps": 2.5}, {"lr": float("nan")}, {"unlock": "image:*"},
                {"image_options": [1]}):
        with pytest.raises(UsageError, match=f"cfg.toml: {next(iter(bad))} must be"):
            TrainConfig.from_dict(bad, source="cfg.toml")
