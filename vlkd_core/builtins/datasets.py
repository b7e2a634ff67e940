"""Builtin datasets."""
from vlkd_core.hookspecs import hookimpl


@hookimpl
def vlkd_register_datasets(register):
    register("shapes", "vlkd_core.datasets.shapes:ShapesDataset",
             description="procedurally generated captioned shapes (no download; the default data)")
