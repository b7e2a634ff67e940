"""ELEVATER's protocol on real data: Fashion-MNIST exported to the ELEVATER layout, scored
zero-shot, by a few-shot linear probe and by few-shot fine-tuning, for a trained run and for the
same architecture at random initialisation (the baseline, measured in the same run).

    sudo apt install dataset-fashion-mnist
    vlkd train --data fashion-mnist --image-option image_size=32 --episode-size 12000 --epochs 2 --name fmnist
    python benchmarks/elevater_fashion_mnist.py runs/fmnist --shots 5 --test-images 2000
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

import vlkd_core
from vlkd_core.training.compose import compose
from vlkd_core.training.restore import load_run
from vlkd_elevater.layout import export_dataset, write_labelmap


def export(root: Path, pool: int, test_images: int) -> None:
    folder = root / "fashion-mnist"
    train = vlkd_core.build_dataset("fashion-mnist", split="train")
    test = vlkd_core.build_dataset("fashion-mnist", split="test")
    write_labelmap(folder, train.classnames)
    export_dataset(train, folder, "train.txt", "train.zip", limit=pool)
    export_dataset(test, folder, "test.txt", "test.zip", limit=test_images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a finished `vlkd train` run directory")
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pool", type=int, default=2000, help="training images the shots are drawn from")
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 1e-3])
    args = parser.parse_args()
    torch.manual_seed(0)
    restored = load_run(args.run)
    models = {"trained": restored.model,
              "random init": compose(restored.config).eval().model}
    shots = dict(num_shots=args.shots, seeds=args.seeds)
    modes = {"zero-shot": dict(mode="zeroshot"),
             f"linear probe {args.shots}-shot": dict(mode="linear-probe", **shots),
             f"fine-tune {args.shots}-shot": dict(mode="finetune", epochs=args.epochs, lrs=args.lrs,
                                                  batch_size=32, **shots)}
    table = Table(title=f"ELEVATER protocol, Fashion-MNIST ({args.test_images} test images, seeds {args.seeds})")
    for col in ("mode", *models, "trained - random", "s (trained)"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    with tempfile.TemporaryDirectory() as tmp:
        export(Path(tmp), args.pool, args.test_images)
        for mode, options in modes.items():
            scores, seconds = {}, 0.0
            for label, model in models.items():
                ev = vlkd_core.build_evaluator("elevater", root=tmp, datasets=["fashion-mnist"], **options)
                start = time.perf_counter()
                scores[label] = ev.evaluate(model)["elevater/fashion-mnist/accuracy"]
                if label == "trained":
                    seconds = time.perf_counter() - start
                    print(mode, ev.artifacts["scores"]["fashion-mnist"]["selection"])
            table.add_row(mode, *(f"{100 * s:.1f}" for s in scores.values()),
                          f"{100 * (scores['trained'] - scores['random init']):+.1f}", f"{seconds:.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
