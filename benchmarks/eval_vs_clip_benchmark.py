"""vlkd's evaluators against CLIP_benchmark on the same OpenCLIP model and the same data.

    pip install clip-benchmark
    python benchmarks/eval_vs_clip_benchmark.py                  # full run (numbers in benchmarks/README.md)
    python benchmarks/eval_vs_clip_benchmark.py --size tiny --fashion-samples 300 --retrieval-images 100 --train-steps 0

One process builds a small OpenCLIP CLIP (random, then a few training steps; no download is
possible) and saves it as a ``local-dir:`` folder; CLIP_benchmark loads it with its own open_clip
loader, vlkd as ``openclip:local-dir:DIR`` (what ``vlkd eval --image/--text`` does). Both score:

- zero-shot classification on the Fashion-MNIST test set (Debian's ``dataset-fashion-mnist``;
  a synthetic set in the same files otherwise), the same class names and prompt templates;
- image<->text retrieval on a written set of shape pictures with three captions each (COCO
  captions format, read by CLIP_benchmark's ``mscoco_captions`` and vlkd's ``coco-captions``).

Both run in fp32 (CLIP_benchmark ``amp=False``), with the same batch size and DataLoader workers,
warm (one untimed run each first), then alternately ``--repeats`` times; the best time of each is
reported. ``--cli`` also runs the real ``vlkd eval`` command once and checks its eval.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import eval_bench_data as data  # noqa: E402
import eval_bench_model as bench_model  # noqa: E402
import eval_bench_tools as tools  # noqa: E402

TOLERANCE = 1e-4
os.environ.setdefault("TQDM_DISABLE", "1")  # CLIP_benchmark's progress bars: quiet and cheaper


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, help="folder for the model and data (default: a temporary one)")
    p.add_argument("--size", choices=sorted(bench_model.SIZES), default="small")
    p.add_argument("--train-steps", type=int, default=300, help="brief CLIP training before the comparison")
    p.add_argument("--fashion-samples", type=int, help="first n Fashion-MNIST test images (default: all)")
    p.add_argument("--synthetic", action="store_true", help="use the synthetic Fashion-MNIST stand-in")
    p.add_argument("--retrieval-images", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of both tools")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--reuse", action="store_true", help="keep a model already saved in --work/model")
    p.add_argument("--cli", action="store_true", help="also run `vlkd eval` as a command and check eval.json")
    p.add_argument("--json", type=Path, help="write the results here")
    return p.parse_args(argv)


def prompts() -> tuple[list[str], list[str]]:
    """vlkd's shipped Fashion-MNIST names and templates, templates written with ``{c}`` (the
    placeholder CLIP_benchmark's ``str.format(c=...)`` fills; vlkd accepts it too)."""
    from vlkd_core.evaluation.prompts import load_classnames, load_templates
    return load_classnames("fashion-mnist"), [t.replace("{}", "{c}") for t in load_templates("fashion-mnist")]


def _training_data(work: Path, fashion_root: Path, classnames, templates):
    """Training pairs disjoint from the scored data: the Fashion-MNIST training files (or a
    synthetic set with another seed) and captioned shapes drawn with another seed."""
    from PIL import Image
    from vlkd_core.datasets.fashion_mnist import read_idx
    train_root = fashion_root
    if not (fashion_root / "train-images-idx3-ubyte.gz").is_file():
        train_root = data.synthetic_fashion_mnist(work / "fashion-train", 2048, seed=7)
        images, labels = read_idx(train_root / "t10k-images-idx3-ubyte.gz"), read_idx(train_root / "t10k-labels-idx1-ubyte.gz")
    else:
        images, labels = read_idx(train_root / "train-images-idx3-ubyte.gz"), read_idx(train_root / "train-labels-idx1-ubyte.gz")
    path, folder = data.write_captions_set(work / "train-captions", 1000, seed=2)
    record = json.loads(path.read_text())
    files = {im["id"]: im["file_name"] for im in record["images"]}
    scenes = [(Image.open(folder / files[ann["image_id"]]).convert("RGB"), ann["caption"])
              for ann in record["annotations"]]
    return images, labels, classnames, templates, scenes


def prepare(args: argparse.Namespace, work: Path) -> tuple[tools.Setup, str]:
    """Writes the data and the model; returns the setup both tools get and a data description."""
    classnames, templates = prompts()
    fashion_root, described = data.fashion_mnist_root(work, args.fashion_samples or 2000, args.synthetic)
    captions_json, captions_images = data.write_captions_set(work / "retrieval", args.retrieval_images)
    model_dir = work / "model"
    if not (args.reuse and (model_dir / "open_clip_model.safetensors").is_file()):
        train = _training_data(work, fashion_root, classnames, templates) if args.train_steps else None
        bench_model.make_model(model_dir, args.size, args.train_steps, train)
    setup = tools.Setup(model_dir, fashion_root, data.raw_copy(fashion_root, work), captions_json,
                        captions_images, classnames, templates, args.batch_size, args.workers,
                        args.fashion_samples, vlkd_workers=args.workers)
    return setup, described


def compare(setup: tools.Setup, repeats: int) -> dict:
    """Warm-up run of each tool, then ``repeats`` alternating timed runs; metrics of the last."""
    cb_model = tools.load_clip_benchmark_model(setup)
    vlkd_model = tools.load_vlkd_model(setup)
    tools.run_clip_benchmark(setup, *cb_model)
    tools.run_vlkd(setup, vlkd_model)
    times: dict[str, list] = {"clip_benchmark_seconds": [], "vlkd_seconds": [],
                              "clip_benchmark_cpu_seconds": [], "vlkd_cpu_seconds": []}
    for _ in range(repeats):
        cb_metrics, clock = tools.run_clip_benchmark(setup, *cb_model)
        times["clip_benchmark_seconds"].append(clock.wall)
        times["clip_benchmark_cpu_seconds"].append(clock.cpu)
        vlkd_metrics, clock = tools.run_vlkd(setup, vlkd_model)
        times["vlkd_seconds"].append(clock.wall)
        times["vlkd_cpu_seconds"].append(clock.cpu)
    rows = [{"metric": k, "clip_benchmark": cb_metrics[k], "vlkd": vlkd_metrics[k],
             "diff": abs(cb_metrics[k] - vlkd_metrics[k])} for k in cb_metrics]
    return {"rows": rows, **times, "ratio": min(times["clip_benchmark_seconds"]) / min(times["vlkd_seconds"]),
            "cpu_ratio": min(times["clip_benchmark_cpu_seconds"]) / min(times["vlkd_cpu_seconds"])}


def run_cli(setup: tools.Setup, work: Path) -> dict:
    """The real ``vlkd eval`` command on the same model and specs; returns its metrics."""
    spec = f"openclip:local-dir:{setup.model_dir}"
    out = work / "cli-eval.json"
    command = [sys.executable, "-m", "vlkd_cli", "eval", "--image", spec, "--text", spec, "--output", str(out)]
    for evaluator in tools.vlkd_eval_specs(setup):
        command += ["--eval", evaluator]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())["metrics"]


def show(result: dict, described: str) -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"CLIP_benchmark vs vlkd eval — {described}")
    for column in ("metric", "clip-benchmark", "vlkd", "|diff|"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in result["rows"]:
        bad = row["diff"] > TOLERANCE
        table.add_row(row["metric"], f"{row['clip_benchmark']:.4f}", f"{row['vlkd']:.4f}",
                      f"[red]{row['diff']:.1e}[/]" if bad else f"{row['diff']:.1e}")
    cb, vk = min(result["clip_benchmark_seconds"]), min(result["vlkd_seconds"])
    table.add_section()
    table.add_row("wall s (best)", f"{cb:.2f}", f"{vk:.2f}", f"{result['ratio']:.2f}x speed")
    cb, vk = min(result["clip_benchmark_cpu_seconds"]), min(result["vlkd_cpu_seconds"])
    table.add_row("CPU s incl. workers (best)", f"{cb:.2f}", f"{vk:.2f}", f"{result['cpu_ratio']:.2f}x less")
    Console().print(table)


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eval-vs-clipb-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        setup, described = prepare(args, work)
        result = compare(setup, args.repeats)
        result["data"], result["model"] = described, bench_model.SIZES[args.size]
        if args.cli:
            cli = run_cli(setup, work)
            result["cli_max_diff"] = max(abs(cli[r["metric"]] - r["vlkd"]) for r in result["rows"])
    show(result, described)
    if args.cli:
        print(f"`vlkd eval` command: largest |diff| to the in-process vlkd metrics {result['cli_max_diff']:.1e}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    worst = max(r["diff"] for r in result["rows"])
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
