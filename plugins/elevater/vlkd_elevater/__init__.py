"""vlkd plugin `elevater`: the ELEVATER image-classification benchmark (cheap hooks only)."""
from vlkd_core import hookimpl


@hookimpl
def vlkd_register_evaluators(register):
    register("elevater", "vlkd_elevater.evaluator:ElevaterEvaluator",
             description="ELEVATER IC benchmark: zero-shot, linear probe or fine-tune (few-shot or full), writes the leaderboard submission")


@hookimpl
def vlkd_register_datasets(register):
    register("elevater", "vlkd_elevater.reader:ElevaterSplit",
             description="one ELEVATER / vision-datasets classification set (zips + index files + labelmap)")
