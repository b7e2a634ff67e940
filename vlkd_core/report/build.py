"""Assemble report.html and its PNGs for a run directory."""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import torch

from ..errors import UsageError
from .._runfiles.runfiles import first_link, read_bytes, read_json, write_atomic
from . import plots


def _records(run_dir: Path) -> list[dict]:
    """metrics.jsonl's records; a damaged line (a killed run's torn last line, stray bytes) is
    left out rather than ending the report."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    records = []
    for line in read_bytes(path).decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _eval_dataset(cfg):
    from .. import api
    errors = []
    for split in ("test", "val", "train"):
        try:
            return api.build_dataset(cfg.data, split=split, **cfg.data_options), split
        except (ValueError, UsageError, FileNotFoundError) as exc:
            errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            continue
    # the same reason for every split (e.g. a refused pipe: URL) is the reason, not "no split"
    reason = f": {errors[0]}" if len(set(errors)) == 1 else ""
    raise UsageError(f"report: dataset '{cfg.data}' has no usable test, val or train split{reason}")


def _zero_shot_per_class(model, dataset, limit: int) -> list[dict]:
    """The zeroshot evaluator's own per-class table (its ``per_class`` artifact)."""
    from .. import api
    evaluator = api.build_evaluator("zeroshot", max_samples=limit, progress=False)
    evaluator.evaluate(model, dataset=dataset)
    return evaluator.artifacts["per_class"]


def _curve_figures(run_dir: Path, out: Path) -> list[tuple[str, Path]]:
    records = _records(run_dir)
    train = [r for r in records if r.get("type") == "train"]
    evals = [r for r in records if r.get("type") == "eval"]
    figures: list[tuple[str, Path]] = []
    if train:
        figures.append(("Loss and learning rate", plots.curves(train, out / "curves.png")))
    if evals:
        figures.append(("Metrics over training", plots.metrics_over_training(evals, out / "metrics.png")))
    return figures


def _run_figures(run_dir: Path, out: Path) -> list[tuple[str, Path]]:
    """PNGs that components wrote into RUN/figures during training (e.g. a loss's cluster
    samples), copied next to the report's own; only files with a PNG signature (data, not code)."""
    figures = []
    for path in sorted((run_dir / "figures").glob("*.png")):
        data = b"" if path.is_symlink() else path.read_bytes()  # only the run's own files
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            continue
        (out / f"run-{path.name}").write_bytes(data)
        figures.append((path.stem.replace("-", " ").replace("_", " ").capitalize(), out / f"run-{path.name}"))
    return figures


def _model_figures(restored, out: Path, samples: int, queries: int, top_k: int) -> list[tuple[str, Path]]:
    """Retrieval examples, zero-shot per class and an embedding map on the run's eval data."""
    model = restored.model.eval()
    dataset, split = _eval_dataset(restored.config)
    n = min(samples, len(dataset))
    items = [it for it in (dataset[i] for i in range(n)) if it is not None]
    images, texts = [it["image"] for it in items], [it["text"] for it in items]
    with torch.no_grad():
        img, txt = model.encode_images(images), model.encode_texts(texts)
    q = min(queries, len(texts))
    ranked = (txt[:q] @ img.T).topk(min(top_k, len(images)), dim=1).indices.numpy()
    correct = ranked == np.arange(q)[:, None]
    figures = [(f"Retrieval examples ({split} split)",
                plots.retrieval_grid(texts[:q], images, ranked, correct, out / "retrieval.png"))]
    labels = [it.get("label") for it in items]
    classnames = getattr(dataset, "classnames", None)
    if classnames and all(label is not None for label in labels):
        if getattr(dataset, "templates", None):
            table = _zero_shot_per_class(model, dataset, n)
            figures.append(("Zero-shot accuracy per class",
                            plots.per_class_bars([r["class"] for r in table], [r["recall"] for r in table],
                                                 f"zero-shot per-class recall ({split})", out / "per_class.png")))
        from sklearn.manifold import TSNE
        perplexity = max(2.0, min(30.0, (len(images) - 1) / 3))
        points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=0).fit_transform(img.numpy())
        figures.append(("Embedding map", plots.embedding_map(points, labels, classnames, out / "embeddings.png", "t-SNE")))
    return figures


def _page(run_dir: Path, config: dict, figures: list[tuple[str, Path]]) -> str:
    try:
        summary = read_json(run_dir / "summary.json")
    except UsageError:  # missing or damaged: the report goes without it
        summary = {}
    if not isinstance(summary.get("metrics"), dict):
        summary["metrics"] = {}
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td></tr>"
                   for k, v in sorted(summary["metrics"].items()) if isinstance(v, (int, float)))
    facts = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(summary[k]))}</td></tr>"
                    for k in ("steps", "epochs", "train_seconds", "samples_per_s", "final_loss") if k in summary)
    body = "".join(f"<h2>{html.escape(title)}</h2><img src='report/{path.name}' style='max-width:100%'>"
                   for title, path in figures)
    cfg = html.escape(json.dumps(config, indent=2))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>vlkd report: {html.escape(run_dir.name)}</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}td{padding:2px 12px}"
            "table{border-collapse:collapse}tr:nth-child(even){background:#f3f3f3}</style></head><body>"
            f"<h1>vlkd run {html.escape(run_dir.name)}</h1><h2>Results</h2><table>{rows}{facts}</table>"
            f"{body}<h2>Configuration</h2><pre>{cfg}</pre></body></html>")


def build_report(run_dir: str | Path, samples: int = 300, queries: int = 5, top_k: int = 6) -> Path:
    """Write RUN/report/*.png and RUN/report.html; returns the HTML path."""
    from ..training.restore import load_run
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"report: '{run_dir}' is not a run directory")
    link = first_link(run_dir)
    if link is not None:  # the report is written into the run: never through a link out of it
        raise UsageError(f"report: run folder '{run_dir}' holds '{link.relative_to(run_dir)}', a symbolic link "
                         "or special file; a run folder is data and holds plain files and folders only")
    out = run_dir / "report"
    out.mkdir(exist_ok=True)
    restored = load_run(run_dir)
    figures = (_curve_figures(run_dir, out) + _run_figures(run_dir, out)
               + _model_figures(restored, out, samples, queries, top_k))
    path = run_dir / "report.html"
    write_atomic(path, _page(run_dir, restored.config.to_dict(), figures), durable=False)
    return path
