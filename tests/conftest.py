"""Shared fixtures: throwaway plugin distributions installed through real entry points."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

import vlkd_core

torch.set_num_threads(1)  # the suite shares 2 cores; small models gain nothing from more


def make_distribution(root: Path, dist: str, module: str, entry_name: str, code: str) -> Path:
    """Write ``module`` and a ``<dist>.dist-info`` with an ``entry_points.txt`` under ``root``:
    exactly what pip leaves behind, so importlib.metadata discovers it when root is on sys.path."""
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(textwrap.dedent(code))
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[vlkd]\n{entry_name} = {module}\n")
    return root


@pytest.fixture
def plugin_env(tmp_path, monkeypatch):
    """Put a fresh site dir on sys.path; yields a function adding distributions to it. The
    plugin manager is rebuilt after the test so other tests see the normal environment."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def add(dist: str, module: str, entry_name: str, code: str) -> Path:
        return make_distribution(site, dist, module, entry_name, code)

    add.site = site
    yield add
    vlkd_core.reset_plugin_manager()
