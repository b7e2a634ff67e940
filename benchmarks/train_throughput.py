"""Training throughput of `vlkd train` against OpenCLIP's own trainer, in one run.

    pip install pandas            # open_clip_train.main needs it
    python benchmarks/train_throughput.py [--samples 512] [--batch-size 32] [--steps 12]

Both train the same open_clip model (ViT-S-32 at 64 px, from scratch) on the same CSV of
generated shapes with the same batch size, one process, fp32, on this machine. Row two locks
the text tower (open_clip --lock-text / vlkd --lock-text), where vlkd's frozen-tower feature
cache computes each caption's features once. Each tool's own samples/s is printed, and their
ratio. Steps after the first few are averaged (warm-up excluded).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


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


def run_openclip(csv: Path, logs: Path, batch: int, epochs: int, lock_text: bool) -> float:
    cmd = [sys.executable, "-m", "open_clip_train.main", "--train-data", str(csv), "--dataset-type", "csv",
           "--csv-img-key", "filepath", "--csv-caption-key", "title", "--csv-separator", ",",
           "--model", "ViT-S-32", "--force-image-size", "64", "--batch-size", str(batch),
           "--epochs", str(epochs), "--workers", "0", "--precision", "fp32", "--lr", "1e-3",
           "--warmup", "2", "--logs", str(logs), "--log-every-n-steps", "1", "--save-frequency", "0",
           "--report-to", "", "--seed", "0"] + (["--lock-text", "--lock-text-freeze-layer-norm"] if lock_text else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    text = out.stdout + out.stderr
    if out.returncode != 0:
        raise SystemExit(f"open_clip_train failed:\n{text[-3000:]}")
    rates = [float(x) for x in re.findall(r"([0-9.]+)/s/gpu", text)]
    warm = rates[3:] or rates
    return sum(warm) / len(warm)


def run_vlkd(csv: Path, out_dir: Path, batch: int, epochs: int, lock_text: bool) -> float:
    name = "locked" if lock_text else "plain"
    cmd = [sys.executable, "-m", "vlkd_cli", "train", "--image", "openclip:ViT-S-32", "--text", "openclip:ViT-S-32",
           "--image-option", "image_size=64", "--image-head", "none", "--data", "csv", "--data-option",
           f"path={csv}", "--batch-size", str(batch), "--epochs", str(epochs), "--workers", "0",
           "--precision", "fp32", "--lr", "1e-3", "--warmup-steps", "2", "--loss", "infonce",
           "--eval", "none", "--no-progress", "--log-every", "1", "--output-dir", str(out_dir), "--name", name,
           "--teacher", "none"] + (["--lock-text"] if lock_text else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"vlkd train failed:\n{(out.stdout + out.stderr)[-3000:]}")
    lines = [json.loads(l) for l in (out_dir / name / "metrics.jsonl").read_text().splitlines()]
    rates = [l["samples_per_s"] for l in lines if l["type"] == "train"]
    warm = rates[3:] or rates
    return sum(warm) / len(warm)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "img").mkdir()
        csv = write_csv(root / "img", args.samples)
        table = Table(title=f"ViT-S-32 @ 64 px, batch {args.batch_size}, {args.samples} samples x {args.epochs} epochs, CPU")
        for col in ("setting", "open_clip_train samples/s", "vlkd samples/s", "vlkd / open_clip"):
            table.add_column(col)
        for lock in (False, True):
            oc = run_openclip(csv, root / f"oc-{lock}", args.batch_size, args.epochs, lock)
            vk = run_vlkd(csv, root / "vlkd", args.batch_size, args.epochs, lock)
            row = ("locked text tower" if lock else "both towers train", f"{oc:.1f}", f"{vk:.1f}", f"{vk / oc:.2f}")
            console.print(" | ".join(row))  # each row as soon as it is measured
            table.add_row(*row)
        console.print(table)


if __name__ == "__main__":
    main()
