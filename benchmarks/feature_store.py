"""Teacher feature store: extraction throughput with 1 and 2 processes, and `vlkd train` from the
store against the live locked teacher.

    python benchmarks/feature_store.py --pairs 20000 --steps 60 --rounds 2

Generates ``--pairs`` captioned 16 px images as webdataset shards in a temporary folder, then, in
one run and interleaved round by round (other jobs share the CPU, so both variants see the same
load): `vlkd features extract` of the packaged all-MiniLM-L6-v2 over the captions with
``--nproc-per-node 1`` and ``2``; and `vlkd train` (the default job's resnet18 student, MiniLM
teacher) for ``--steps`` steps, once with the live teacher (run-local memory cache) and once with
``--teacher-features``. Each command runs as its own process; its peak RSS comes from
``wait4`` (for 2 processes: the largest worker). Prints a table and writes ``--json``.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEACHER = "hf:sentence-transformers/all-MiniLM-L6-v2"
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]
SHAPES = ["circle", "square", "triangle", "star", "cross", "hexagon"]
PLACES = ["left of", "right of", "above", "below", "next to"]


def write_pairs(folder: Path, pairs: int, shards: int) -> str:
    """``pairs`` 16 px PNGs with captions such as "a small red circle left of a large blue
    star, 1234" (mostly distinct captions, as in web data), in ``shards`` tars."""
    import webdataset as wds
    from PIL import Image, ImageDraw
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    per = -(-pairs // shards)
    for s in range(shards):
        with wds.TarWriter(str(folder / f"shard-{s:06d}.tar")) as writer:
            for i in range(s * per, min(pairs, (s + 1) * per)):
                a, b = rng.sample(COLOURS, 2)
                image = Image.new("RGB", (16, 16), "white")
                ImageDraw.Draw(image).rectangle([rng.randrange(8), rng.randrange(8), 15, 15], fill=a)
                buf = io.BytesIO()
                image.save(buf, format="PNG")
                caption = (f"a {rng.choice(['small', 'large'])} {a} {rng.choice(SHAPES)} {rng.choice(PLACES)} "
                           f"a {rng.choice(['small', 'large'])} {b} {rng.choice(SHAPES)}, {i}")
                writer.write({"__key__": f"{i:08d}", "png": buf.getvalue(), "txt": caption})
    return str(folder / f"shard-{{000000..{shards - 1:06d}}}.tar")


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB of the process or its largest child, stdout)."""
    env = dict(os.environ, COLUMNS="200")
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{text[-3000:]}")
    return wall, usage.ru_maxrss / 1024, text


def vlkd(*args: str) -> list[str]:
    return [sys.executable, "-m", "vlkd_cli", *args]


def extract(pattern: str, out: Path, nproc: int, batch_size: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    wall, rss, text = timed(vlkd("features", "extract", "--data", "webdataset", "--data-option", f"path={pattern}",
                              "--text", TEACHER, "--out", str(out), "--batch-size", str(batch_size),
                              "--no-progress", "--nproc-per-node", str(nproc)))
    samples = json.loads((out / "manifest.json").read_text())["samples"]
    seconds = float(re.search(r"in ([0-9.]+) s", text).group(1))  # encoding, after start-up
    return {"processes": nproc, "wall_s": round(wall, 1), "encode_s": seconds,
            "samples_per_s": round(samples / seconds, 1), "peak_rss_mib": round(rss)}


def train(pattern: str, runs: Path, name: str, steps: int, batch_size: int, store: Path | None) -> dict:
    shutil.rmtree(runs / name, ignore_errors=True)
    extra = ["--teacher-features", str(store)] if store else []
    wall, rss, _ = timed(vlkd("train", "--data", "webdataset", "--data-option", f"path={pattern}",
                              "--max-steps", str(steps), "--batch-size", str(batch_size), "--eval", "none",
                              # the default job's tuning on this data (its recipe applies to shapes only)
                              "--image-option", "image_size=48", "--lr", "2e-3", "--warmup-steps", "20",
                              "--no-progress", "--output-dir", str(runs), "--name", name, *extra))
    summary = json.loads((runs / name / "summary.json").read_text())
    return {"variant": "store" if store else "live", "wall_s": round(wall, 1),
            "train_s": summary["train_seconds"], "samples_per_s": summary["samples_per_s"],
            "peak_rss_mib": round(rss)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=20000)
    ap.add_argument("--shards", type=int, default=20)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--extract-batch-size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", default="feature_store_results.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vlkd-feature-store-") as tmp:
        root = Path(tmp)
        pattern = write_pairs(root / "data", args.pairs, args.shards)
        results: dict[str, list] = {"extract": [], "train": []}
        for _ in range(args.rounds):  # interleaved: both variants under the same background load
            for nproc in (1, 2):
                results["extract"].append(extract(pattern, root / f"store-{nproc}", nproc, args.extract_batch_size))
                print(results["extract"][-1], flush=True)
            for store in (None, root / "store-1"):
                name = "store" if store else "live"
                results["train"].append(train(pattern, root / "runs", name, args.steps, args.batch_size, store))
                print(results["train"][-1], flush=True)
        results["args"] = vars(args)
    Path(args.json).write_text(json.dumps(results, indent=2))
    report(results)


def _mean(rows: list[dict], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def report(results: dict) -> None:
    ex = {n: [r for r in results["extract"] if r["processes"] == n] for n in (1, 2)}
    tr = {v: [r for r in results["train"] if r["variant"] == v] for v in ("live", "store")}
    print("\n| extraction | samples/s | encode s | wall s | peak RSS MiB |\n|---|---|---|---|---|")
    for n, rows in ex.items():
        print(f"| {n} process{'es' if n > 1 else ''} | {_mean(rows, 'samples_per_s'):.0f} | "
              f"{_mean(rows, 'encode_s'):.1f} | {_mean(rows, 'wall_s'):.1f} | {max(r['peak_rss_mib'] for r in rows)} |")
    print("\n| train | train s | samples/s | wall s | peak RSS MiB |\n|---|---|---|---|---|")
    for v, rows in tr.items():
        print(f"| {v} | {_mean(rows, 'train_s'):.1f} | {_mean(rows, 'samples_per_s'):.1f} | "
              f"{_mean(rows, 'wall_s'):.1f} | {max(r['peak_rss_mib'] for r in rows)} |")
    print(f"\nextraction 2 vs 1 process: {_mean(ex[2], 'samples_per_s') / _mean(ex[1], 'samples_per_s'):.2f}x; "
          f"training, store vs live: {_mean(tr['live'], 'train_s') / _mean(tr['store'], 'train_s'):.2f}x "
          f"(train s), {_mean(tr['live'], 'wall_s') / _mean(tr['store'], 'wall_s'):.2f}x (wall)")


if __name__ == "__main__":
    main()
