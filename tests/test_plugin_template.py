"""`vlkd plugins new` renders an installable package whose own tests pass (end to end, with pip)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from vlkd_cli.app import app
from vlkd_core._host.kinds import SINGULAR

KINDS = list(SINGULAR.values())  # one generated plugin per kind


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

    # installed into a folder of this test's own, not the environment: other tests running at the
    # same time (pytest-xdist) never see these plugins
    site = tmp_path / "site"
    _pip("install", "--no-deps", "--no-build-isolation", "--target", str(site), *map(str, dirs))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p))
    env.pop("PYTEST_ADDOPTS", None)
    out = subprocess.run([sys.executable, "-m", "vlkd_cli", "plugins", "list", "--json"],
                         capture_output=True, text=True, check=True, env=env)
    rows = {row["plugin"]: row for row in json.loads(out.stdout)}
    for kind in KINDS:
        row = rows[f"demo-{kind}"]
        assert row["status"] == "ok", row
        assert row["distribution"] == f"vlkd-demo-{kind}"
    pytest_cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                  *[str(d / "tests") for d in dirs]]
    collected = subprocess.run([*pytest_cmd, "--collect-only", "-q"], capture_output=True,
                               text=True, cwd=tmp_path, env=env)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-2000:]
    expected = sum("::" in line for line in collected.stdout.splitlines())
    assert expected >= len(KINDS)  # every generated package ships tests
    report = tmp_path / "report.xml"
    tests = subprocess.run([*pytest_cmd, "-q", f"--junitxml={report}"], capture_output=True,
                           text=True, cwd=tmp_path, env=env)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {key: int(suite.get(key)) for key in ("tests", "failures", "errors", "skipped")}
    # every collected test ran and passed
    assert counts == {"tests": expected, "failures": 0, "errors": 0, "skipped": 0}, counts
