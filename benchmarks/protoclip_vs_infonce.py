"""ProtoCLIP against InfoNCE on the built-in shapes data, same budget, measured in one run.

    python benchmarks/protoclip_vs_infonce.py [--rows clip lit] [--seeds 0 1] [--epochs 8]

Both losses train the same towers on the same episodes (``--episode-size``: a fresh random subset
per epoch, the same subsets for both) for the same number of optimizer steps, with the same
optimizer, schedule and seed; the only difference is ``--loss``. Rows:

- ``clip``: CLIP from scratch, both toy towers (``toy:small``, 32 px) train (``--teacher none``);
- ``lit``: the default job's towers, a resnet18 image tower from scratch with a linear head and
  the packaged all-MiniLM-L6-v2 locked as the text tower (``--teacher text``), 64 px.

Every run is scored by the shapes data's own evaluators (what `vlkd train` runs by default):
zero-shot shape and colour accuracy on single-shape test images and image<->text retrieval
(R@1 / mean recall over the test captions). Wall time is each `vlkd train` process's, from start
to exit (imports, per-episode clustering for ProtoCLIP, training, evaluation).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = {
    "clip": ["--image", "toy:small", "--text", "toy:small", "--image-option", "image_size=32",
             "--image-head", "none", "--teacher", "none", "--data-option", "size=32"],
    "lit": ["--image", "torchvision:resnet18", "--teacher", "text", "--image-head", "linear",
            "--data-option", "size=64"],
}
METRICS = ["zeroshot-shape/top1", "zeroshot-colour/top1", "retrieval/image_to_text_R@1",
           "retrieval/text_to_image_R@1", "retrieval/mean_recall"]


def protoclip_options(k: int) -> list[str]:
    """ProtoCLIP at the shapes scale: K prototypes per modality (the paper's 20000 are for
    episodes of 200k samples), a 64-d projection, the paper's target temperature and PBT."""
    options = {"prototypes": k, "projection_dim": 64, "projection_hidden_dim": 512, "target_temperature": 0.01,
               "pbt": "true", "figure_rows": 0}
    return [arg for key, value in options.items() for arg in ("--loss-option", f"protoclip.{key}={value}")]


def run(out: Path, name: str, row: str, loss: str, args) -> dict:
    flags = [*ROWS[row], "--loss", loss, "--episode-size", str(args.episode_size), "--epochs", str(args.epochs),
             "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--warmup-steps", "20",
             "--data-option", f"length={args.train_size}", "--seed", str(args.seed), "--no-progress",
             "--log-every", "10", "--output-dir", str(out), "--name", name]
    if loss == "protoclip":
        flags += protoclip_options(args.prototypes)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vlkd_cli", "train", *flags], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    summary = json.loads((out / name / "summary.json").read_text())
    return {"seconds": seconds, "steps": summary["steps"], **{m: summary["metrics"].get(m) for m in METRICS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=sorted(ROWS), default=["clip", "lit"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--train-size", type=int, default=4000)
    parser.add_argument("--episode-size", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--prototypes", type=int, default=64)
    args = parser.parse_args()
    print("| row | loss | seed | steps | zero-shot shape | zero-shot colour | image→text R@1 | text→image R@1 "
          "| mean recall | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for row in args.rows:
            for seed in args.seeds:
                args.seed = seed
                for loss in ("infonce", "protoclip"):
                    r = run(Path(tmp), f"{row}-{loss}-{seed}", row, loss, args)
                    cells = " | ".join(f"{r[m]:.3f}" if r[m] is not None else "–" for m in METRICS)
                    print(f"| {row} | {loss} | {seed} | {r['steps']} | {cells} | {r['seconds']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
