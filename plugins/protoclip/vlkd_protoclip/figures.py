"""A PNG of cluster samples (ProtoCLIP's "show_samples"): one row per large cluster, its first
members' images with their captions, for the image and the text clustering of an episode.
Drawn with PIL (milliseconds), written where `vlkd report` picks figures up."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable

import torch
from PIL import Image, ImageDraw

CELL, CAPTION = 96, 40


def _largest(labels: torch.Tensor, rows: int) -> list[int]:
    sizes = torch.bincount(labels)
    order = sorted(range(len(sizes)), key=lambda c: (-int(sizes[c]), c))
    return [c for c in order[:rows] if sizes[c] > 0]


def _cell(item: dict | None) -> Image.Image:
    cell = Image.new("RGB", (CELL, CELL + CAPTION), "white")
    if item is None:
        return cell
    image = item["image"].convert("RGB")
    ratio = CELL / max(image.size)  # small images scaled up too, pixels kept sharp
    image = image.resize((max(1, round(image.width * ratio)), max(1, round(image.height * ratio))),
                         Image.NEAREST if ratio > 1 else Image.BILINEAR)
    cell.paste(image, ((CELL - image.width) // 2, 0))
    text = "\n".join(textwrap.wrap(str(item["text"]), 18)[:3])
    ImageDraw.Draw(cell).multiline_text((2, CELL + 1), text, fill="black", spacing=1)
    return cell


def _block(title: str, labels: torch.Tensor, sample: Callable[[int], dict | None],
           rows: int, per_row: int) -> Image.Image:
    clusters = _largest(labels, rows)
    label_w = 90
    block = Image.new("RGB", (label_w + per_row * CELL, 16 + len(clusters) * (CELL + CAPTION)), "white")
    draw = ImageDraw.Draw(block)
    draw.text((2, 2), title, fill="black")
    for r, c in enumerate(clusters):
        members = torch.nonzero(labels == c).flatten().tolist()
        y = 16 + r * (CELL + CAPTION)
        draw.text((2, y + 4), f"cluster {c}\n{len(members)} samples", fill="black")
        for j, position in enumerate(members[:per_row]):
            block.paste(_cell(sample(position)), (label_w + j * CELL, y))
    return block


def cluster_samples(path: Path, epoch: int, groups: dict[str, torch.Tensor],
                    sample: Callable[[int], dict | None], rows: int, per_row: int) -> Path:
    """Write ``path``: for each clustering in ``groups`` (name -> [N] labels over the episode's
    positions) its ``rows`` largest clusters, ``per_row`` members each."""
    blocks = [_block(f"episode {epoch}: {name} clusters (largest {rows})", labels, sample, rows, per_row)
              for name, labels in groups.items()]
    figure = Image.new("RGB", (max(b.width for b in blocks), sum(b.height for b in blocks)), "white")
    y = 0
    for block in blocks:
        figure.paste(block, (0, y))
        y += block.height
    tmp = path.with_suffix(".tmp.png")
    figure.save(tmp)
    tmp.replace(path)  # a report never reads a half-written figure
    return path
