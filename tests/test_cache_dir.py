"""`--cache-dir` reaches every tower whose family takes one, on every command that builds towers:
`vlkd eval --image SPEC`, `vlkd eval RUN` (instead of the run's own, for a run evaluated on
another machine) and a `--teacher-model` given as towers, which handed it to families that take
none (`toy:tiny --cache-dir D` was an unknown-option error). The family here is a plugin that
writes down the cache_dir it was built with."""
from __future__ import annotations

import sys

import pytest
from export_runs import train_run
from train_helpers import invoke_cli

from vlkd_core import get_plugin_manager, reset_plugin_manager
from vlkd_core.hookspecs import hookimpl
from vlkd_core.training import TrainConfig
from vlkd_core.training.teacher_model import build_teacher_model

pytestmark = pytest.mark.slow  # trains a run

BUILT_WITH: list = []  # the cache_dir of each tower the family built
EVAL = ["--eval", "retrieval:dataset=shapes,dataset.size=32,dataset.length=8"]


def build_cache_recorder(model: str, modality: str = "image", pretrained: str | None = None,
                         cache_dir: str | None = None, image_size: int = 32):
    from vlkd_core._model.toy import build_toy_backbone
    BUILT_WITH.append(cache_dir)
    return build_toy_backbone("tiny", modality, pretrained, image_size=image_size)


@hookimpl
def vlkd_register_backbones(register):
    register("cache-recorder", build_cache_recorder, models=["tiny"], description="toy:tiny, noting its cache_dir")


@pytest.fixture(scope="module", autouse=True)
def recorder_family():
    get_plugin_manager().register_module(sys.modules[__name__], "cache-recorder", distribution="vlkd-cache-test")
    yield
    reset_plugin_manager()


def test_eval_of_named_towers_passes_cache_dir_to_the_family_that_takes_it(tmp_path):
    BUILT_WITH.clear()
    result = invoke_cli(["eval", "--image", "cache-recorder:tiny", "--text", "toy:tiny",  # toy takes none
                         "--cache-dir", str(tmp_path / "cache"), *EVAL, "--output", str(tmp_path / "eval.json")])
    assert result.returncode == 0, result.stderr
    assert BUILT_WITH == [str(tmp_path / "cache")]


def test_eval_of_a_run_uses_the_given_cache_dir_instead_of_the_runs(tmp_path):
    run = train_run(tmp_path, "r", image="cache-recorder:tiny", cache_dir=str(tmp_path / "trained-with"))
    BUILT_WITH.clear()
    assert invoke_cli(["eval", str(run), *EVAL]).returncode == 0
    assert invoke_cli(["eval", str(run), *EVAL, "--cache-dir", str(tmp_path / "here")]).returncode == 0
    assert BUILT_WITH == [str(tmp_path / "trained-with"), str(tmp_path / "here")]


def test_a_teacher_model_of_towers_gets_cache_dir_only_where_a_family_takes_it(tmp_path):
    BUILT_WITH.clear()
    teacher = build_teacher_model(TrainConfig(teacher_model="cache-recorder:tiny+toy:tiny",
                                              cache_dir=str(tmp_path / "cache")))
    assert teacher is not None and BUILT_WITH == [str(tmp_path / "cache")]
