"""Writing labelled images in the ELEVATER / vision-datasets layout: ``labels.txt``, one zip per
split and index files with lines ``<zip>@<member> <label>[,<label>...]``. Lets any vlkd dataset
(or a list of PIL images) be scored by the ``elevater`` evaluator with the toolkit's protocol."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any, Iterable, Sequence


def _png(image: Any) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def write_split(folder: str | Path, index: str, zip_name: str,
                samples: Iterable[tuple[Any, Sequence[int]]]) -> int:
    """Appends ``(PIL image, label ids)`` samples to ``folder/zip_name`` and writes the index
    file ``folder/index``; returns the number of images written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    with zipfile.ZipFile(folder / zip_name, "a") as zf:
        for i, (image, labels) in enumerate(samples):
            member = f"{Path(index).stem}/{i}.png"
            zf.writestr(member, _png(image))
            lines.append(f"{zip_name}@{member} {','.join(str(int(l)) for l in labels)}")
    (folder / index).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def write_labelmap(folder: str | Path, labelmap: Sequence[str]) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text("\n".join(labelmap) + "\n", encoding="utf-8")


def export_dataset(dataset: Any, folder: str | Path, index: str, zip_name: str,
                   limit: int | None = None) -> int:
    """Writes a vlkd dataset's samples (``{"image", "label"}`` or ``"targets"``) as one split."""
    n = len(dataset) if limit is None else min(limit, len(dataset))

    def samples():
        for i in range(n):
            item = dataset[i]
            labels = item.get("targets", [item["label"]])
            yield item["image"], labels if isinstance(labels, (list, tuple)) else [labels]
    return write_split(folder, index, zip_name, samples())
