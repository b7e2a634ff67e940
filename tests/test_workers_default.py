"""One workers policy (vlkd_core._runtime.workers.default_workers), decided when a loader starts: the
`workers` default is None in TrainConfig, `vlkd train --help` and a run's config.json, and the
training loader, the episode loader and the evaluators all resolve None through the policy."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

import vlkd_core as vlkd
from vlkd_core import testing
from vlkd_core._runtime import workers
from vlkd_core.training import TrainConfig
from vlkd_core.training.data import build_loader


@pytest.fixture
def cores(monkeypatch):
    """Pretend this process may run on ``n`` cores."""
    def use(n: int) -> None:
        monkeypatch.setattr(workers, "cores", lambda: n)
    return use


@pytest.mark.parametrize("n, expected", [(1, 0), (2, 0), (3, 0), (4, 1), (8, 2), (16, 4), (128, 4)])
def test_one_worker_per_four_cores_at_most_four(cores, n, expected):
    cores(n)
    assert workers.default_workers(10_000, batch_size=64) == expected
    assert workers.default_workers(None, batch_size=64) == expected  # a stream of unknown length


def test_no_workers_for_two_batches_or_fewer(cores):
    cores(64)
    assert workers.default_workers(128, batch_size=64) == 0
    assert workers.default_workers(129, batch_size=64) == 4


def test_the_default_is_none_in_the_config_the_help_and_the_run_folder(tmp_path):
    assert TrainConfig().workers is None and TrainConfig().to_dict()["workers"] is None
    from vlkd_cli.app import app
    text = " ".join(CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "400"}).output.split())
    assert "--workers" in text and "(default: decided at run time, one per 4 cores up to 4" in text
    from export_runs import train_run
    run = train_run(tmp_path, "toy")
    assert json.loads((run / "config.json").read_text())["workers"] is None


def test_training_loaders_resolve_none_through_the_policy(cores):
    cores(8)
    data = vlkd.build_dataset("shapes", split="train", size=16, length=64)
    transform = vlkd.build_backbone("toy:tiny", modality="image", image_size=16).preprocess
    big, _, sampler = build_loader(data, transform, 8, 0, 0, 1, None, None, train_transforms=False)
    assert big.num_workers == workers.default_workers(len(sampler), 8) == 2
    small, _, _ = build_loader(data, transform, 32, 0, 0, 1, None, None, train_transforms=False)
    assert small.num_workers == 0  # an epoch of two batches
    told, _, _ = build_loader(data, transform, 8, 0, 0, 1, None, 1, train_transforms=False)
    assert told.num_workers == 1


def test_episodes_and_evaluators_use_the_policy(cores, monkeypatch):
    from vlkd_core.evaluation import features
    from vlkd_core.training.episodes import EpisodeEncoder
    data = vlkd.build_dataset("shapes", split="test", size=16, length=64)
    model = testing.toy_dual_encoder()
    cores(8)
    episodes = EpisodeEncoder(SimpleNamespace(student=None, teacher=None), data, model.image_tower.preprocess,
                              0, 8, None, 0, 1, torch.device("cpu"))
    assert episodes._loader(list(range(64)), 0).num_workers == 2
    assert episodes._loader(list(range(16)), 0).num_workers == 0
    started = []
    real = torch.utils.data.DataLoader.__init__

    def record(self, *args, **kwargs):  # the real loader still runs
        started.append(kwargs.get("num_workers", 0))
        real(self, *args, **kwargs)
    monkeypatch.setattr(torch.utils.data.DataLoader, "__init__", record)
    cores(4)  # one worker: cheap to start here
    features.encode_dataset(model, data, batch_size=8, show_progress=False)
    features.encode_dataset(model, data, batch_size=32, show_progress=False)
    assert started == [1, 0]
