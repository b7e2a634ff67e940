"""The reference a trainer cannot beat: the same towers' forward + backward + AdamW step on
pre-made tensors in a plain loop (no data loading, no engine), and the machine's fp32 matmul
rate, so a throughput row can say how far it is from the model and from the hardware.

    python benchmarks/bare_model.py --image openclip:ViT-B-32 --text openclip:ViT-B-32 \
        --image-shape 32,3,224,224 --text-shape 32,12 [--lock-text] [--image-head linear] [--clip 1.0]
    python benchmarks/bare_model.py --matmul

Prints one JSON line. The towers are vlkd's own (``vlkd_core.build_backbone``), so the model is
exactly what `vlkd train` trains; the loss is symmetric InfoNCE with a learnable temperature,
written here; the optimizer is fused AdamW over every trainable parameter. A locked text tower's
features are computed once before timing (its steady-state cost with a feature cache: nothing).
FLOPs per step are counted by ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and
convolutions, forward and backward).
"""
from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F
from torch import nn


def matmul_gflops(n: int = 2048, seconds: float = 3.0) -> float:
    """Best fp32 ``torch.matmul`` rate on this machine over ``seconds`` of products, GFLOP/s
    (2n^3 per product): the best single product, since other work on the machine only slows it."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best, until = math.inf, time.perf_counter() + seconds
    while time.perf_counter() < until:
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def _captions(n: int) -> list[str]:
    from vlkd_core.datasets.shapes import ShapesDataset
    data = ShapesDataset(length=n, size=8)
    return [data[i]["text"] for i in range(n)]


def _tokens(tower: nn.Module, shape: list[int]):
    """Real captions' tokens, cut or padded to ``shape`` ([B, L]) as they reached vlkd's tower."""
    tokens = tower.preprocess(_captions(shape[0]), train=False)
    if isinstance(tokens, dict):
        return {k: _fit(v, shape[1]) for k, v in tokens.items()}
    return _fit(tokens, shape[1])


def _fit(t: torch.Tensor, length: int) -> torch.Tensor:
    if t.shape[1] >= length:
        return t[:, :length].contiguous()
    return F.pad(t, (0, length - t.shape[1]))


class Bare(nn.Module):
    def __init__(self, image: nn.Module, text: nn.Module, head: nn.Module | None):
        super().__init__()
        self.image, self.text, self.head = image, text, head
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def loss(self, images: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        x = self.image(images)
        x = self.head(x) if self.head is not None else x
        x, y = F.normalize(x, dim=-1), F.normalize(text_features, dim=-1)
        logits = self.log_scale.exp() * x @ y.T
        target = torch.arange(len(x))
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def build(args) -> tuple[Bare, torch.Tensor, object]:
    import vlkd_core as vlkd
    torch.manual_seed(0)
    options = {"image_size": args.image_shape[-1]}
    image = vlkd.build_backbone(args.image, modality="image", **options)
    text = vlkd.build_backbone(args.text, modality="text", pretrained=args.text_pretrained)
    head = vlkd.build_head(args.image_head, in_dim=image.output_dim, out_dim=text.output_dim) \
        if args.image_head else None
    if args.channels_last:
        image.to(memory_format=torch.channels_last)
    model = Bare(image, text, head).train()
    images = torch.randn(*args.image_shape)
    if args.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    tokens = _tokens(text, args.text_shape)
    if args.lock_text:
        text.requires_grad_(False).eval()
    return model, images, tokens


def text_features(model: Bare, tokens, locked: bool) -> torch.Tensor:
    if locked:
        with torch.inference_mode():
            return model.text(tokens).clone()
    return model.text(tokens)


def run(args) -> dict:
    model, images, tokens = build(args)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05, fused=True)
    # a locked tower's features made once (vlkd's feature cache in steady state), unless asked to
    # encode them every step as a trainer without a cache does
    frozen = text_features(model, tokens, True) if args.lock_text and not args.text_every_step else None

    def step() -> None:
        features = frozen if frozen is not None else text_features(model, tokens, args.lock_text)
        model.loss(images, features).backward()
        if args.clip:
            torch.nn.utils.clip_grad_norm_(params, args.clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = (time.perf_counter() - start) / args.steps
    batch = args.image_shape[0]
    return {"samples_per_s": batch / seconds, "gflop_per_step": counter.get_total_flops() / 1e9,
            "gflops": counter.get_total_flops() / seconds / 1e9, "image_shape": args.image_shape,
            "text_shape": args.text_shape, "steps": args.steps}


def _shape(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--matmul", action="store_true", help="only the fp32 matmul rate")
    parser.add_argument("--image", default="openclip:ViT-S-32")
    parser.add_argument("--text", default="openclip:ViT-S-32")
    parser.add_argument("--text-pretrained")
    parser.add_argument("--image-head")
    parser.add_argument("--image-shape", type=_shape, default=[32, 3, 64, 64])
    parser.add_argument("--text-shape", type=_shape, default=[32, 12])
    parser.add_argument("--lock-text", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--text-every-step", action="store_true", help="a locked text tower encodes every step")
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    out = {"matmul_gflops": matmul_gflops()} if args.matmul else run(args)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
