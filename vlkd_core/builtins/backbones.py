"""Builtin ``toy`` backbone family (tiny towers for tests and tutorials)."""
from vlkd_core.hookspecs import hookimpl


@hookimpl
def vlkd_register_backbones(register):
    register("toy", "vlkd_core._model.toy:build_toy_backbone", models=["tiny", "small"],
             example={"model": "tiny"},
             description="tiny CNN image / hashed bag-of-words text towers (no downloads)")
