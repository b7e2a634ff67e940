"""`vlkd plugins new` renders an installable package whose own tests pass (end to end, with pip)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from vlkd_cli.app import app

KINDS = ["loss", "backbone", "head", "dataset", "evaluator"]


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
                   check=True, capture_output=True, text=True)


@pytest.mark.slow
def test_new_plugins_install_show_up_and_pass_their_tests(tmp_path):
    runner = CliRunner()
    dirs = []
    for kind in KINDS:
        name = f"demo-{kind}"
        result = runner.invoke(app, ["plugins", "new", name, "--kind", kind, "-o", str(tmp_path)])
        assert result.exit_code == 0, result.output
        dirs.append(tmp_path / f"vlkd-{name}")
        assert (dirs[-1] / "pyproject.toml").exists()
    again = runner.invoke(app, ["plugins", "new", "demo-loss", "-o", str(tmp_path)])
    assert again.exit_code == 2 and "already exists" in again.output

    installs = [arg for d in dirs for arg in ("-e", str(d))]
    _pip("install", "--no-deps", "--no-build-isolation", *installs)
    try:
        out = subprocess.run([sys.executable, "-m", "vlkd_cli", "plugins", "list", "--json"],
                             capture_output=True, text=True, check=True)
        rows = {row["plugin"]: row for row in json.loads(out.stdout)}
        for kind in KINDS:
            row = rows[f"demo-{kind}"]
            assert row["status"] == "ok", row
            assert row["distribution"] == f"vlkd-demo-{kind}"
        env = dict(os.environ)
        env.pop("PYTEST_ADDOPTS", None)
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                *[str(d / "tests") for d in dirs]],
                               capture_output=True, text=True, cwd=tmp_path, env=env)
        assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
        assert "12 passed" in tests.stdout  # every generated test ran (3+3+2+2+2)
    finally:
        _pip("uninstall", "-y", *[f"vlkd-demo-{kind}" for kind in KINDS])
