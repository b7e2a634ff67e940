"""Convert a CSV/TSV of image paths and captions into webdataset shards.

    report = csv_to_webdataset("train.csv", "shards/", maxcount=10_000)
    vlkd.build_dataset("webdataset", path=report.pattern)

The CSV is read and validated exactly as the ``csv`` dataset reads it (a malformed row stops the
conversion before anything is written, naming file and line). Each image is checked to decode;
a missing or unreadable one is skipped and reported (file and CSV line), or with ``strict=True``
stops the conversion. JPEG/PNG/WebP files are stored byte for byte; other formats are re-encoded
as PNG. Shards are named ``<prefix>-000000.tar``, ... and samples keyed by their running number,
with members ``<key>.<jpg|jpeg|png|webp>``, ``<key>.txt`` and, with ``label_key``, ``<key>.cls``.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError, UsageError
from .._runfiles.storage import write_errors
from .csv import CsvDataset, CsvRow
from .robust import decode_image, describe_error

KEEP_EXTS = {"jpg": "jpg", "jpeg": "jpeg", "png": "png", "webp": "webp"}


@dataclass
class ConvertReport:
    """What a conversion wrote: shard files, the brace pattern to read them, samples written,
    and the skipped rows as ``(where, reason)`` pairs."""

    shards: list[str] = field(default_factory=list)
    pattern: str = ""
    written: int = 0
    total: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


def shard_pattern(out_dir: Path, prefix: str, count: int) -> str:
    """The brace pattern naming shards 0..count-1 (a plain file name for a single shard)."""
    if count <= 1:
        return str(out_dir / f"{prefix}-000000.tar")
    return str(out_dir / f"{prefix}-{{000000..{count - 1:06d}}}.tar")


def encode_image(path: str) -> tuple[str, bytes]:
    """``(extension, bytes)`` to store for an image file; raises (OSError, PIL errors) when the
    file is missing or does not decode completely."""
    data = Path(path).read_bytes()
    image = decode_image(data)  # decodes fully: truncated files fail here
    ext = KEEP_EXTS.get(Path(path).suffix.lower().lstrip("."))
    if ext is None:  # e.g. bmp/tiff/gif: the reader accepts jpg|jpeg|png|webp only
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        ext, data = "png", buffer.getvalue()
    return ext, data


def write_rows(rows: list[CsvRow], writer, report: ConvertReport, strict: bool,
               progress: Callable[[int, int], None] | None) -> None:
    """Write each row with a usable image as one sample; record (or, strict, raise on) the rest."""
    for done, row in enumerate(rows, 1):
        try:
            ext, data = encode_image(row.image)
        except Exception as exc:  # noqa: BLE001 -- any failure means "unusable image"
            where, reason = f"{row.file}, line {row.line}", describe_error(exc)
            if strict:
                raise DataError(f"{row.image} ({where}): unreadable image ({reason})") from exc
            report.skipped.append((where, f"{row.image}: {reason}"))
        else:
            sample = {"__key__": f"{report.written:09d}", ext: data, "txt": row.text.encode("utf-8")}
            if row.label is not None:
                sample["cls"] = str(row.label).encode("ascii")
            writer.write(sample)
            report.written += 1
        if progress is not None:
            progress(done, len(rows))


def check_prefix(prefix: str) -> None:
    """A shard name prefix is a plain file name: shards never land outside the output folder."""
    name = Path(prefix).name
    if not prefix or name != prefix or prefix in (".", "..") or "\\" in prefix or prefix.startswith("~"):
        raise UsageError(f"--prefix {prefix!r} must be a plain file name prefix (no '/', '..' or "
                         "absolute path): shards are written inside OUT_DIR")


def prepare_out_dir(out_dir: Path, prefix: str, overwrite: bool) -> None:
    from .._runfiles.folders import check_write_into
    check_write_into(out_dir, "OUT_DIR")  # never into a run, checkpoint, feature store or export
    with write_errors(f"OUT_DIR '{out_dir}'", out_dir.parent):
        out_dir.mkdir(parents=True, exist_ok=True)
    old = sorted(p for p in out_dir.glob(f"{prefix}-*.tar") if p.is_file() or p.is_symlink())
    if old and not overwrite:
        raise UsageError(f"{out_dir} already holds {len(old)} {prefix}-*.tar shard(s); choose "
                         f"another OUT_DIR or pass --overwrite to replace them")
    for path in old:  # stale shards would otherwise be read along with the new ones
        path.unlink()


def csv_to_webdataset(csv_path: str, out_dir: str | Path, maxcount: int = 10_000,
                      image_key: str = "filepath", caption_key: str = "title",
                      image_root: str | None = None, separator: str | None = None,
                      label_key: str | None = None, prefix: str = "shard",
                      maxsize: float = 3e9, strict: bool = False, overwrite: bool = False,
                      progress: Callable[[int, int], None] | None = None) -> ConvertReport:
    """Write the rows of ``csv_path`` (one file or several, comma-separated) into shards of at
    most ``maxcount`` samples (and about ``maxsize`` bytes) in ``out_dir``.
    ``progress(done, total)`` is called after every row."""
    from webdataset import ShardWriter
    if maxcount < 1:
        raise UsageError(f"--maxcount must be at least 1, not {maxcount}")
    check_prefix(prefix)
    rows = CsvDataset(csv_path, image_key=image_key, caption_key=caption_key, separator=separator,
                      image_root=image_root, label_key=label_key).rows
    # absolute: webdataset's writer would run 'pipe:...' (or fetch 'scheme:...') instead of a file
    out = Path(out_dir).expanduser().absolute()
    prepare_out_dir(out, prefix, overwrite)
    report = ConvertReport(total=len(rows))
    try:
        with write_errors(f"shards in OUT_DIR '{out}'", out), \
                ShardWriter(str(out / f"{prefix}-%06d.tar"), maxcount=maxcount, maxsize=maxsize,
                            verbose=0, post=report.shards.append) as writer:
            write_rows(rows, writer, report, strict, progress)
    except BaseException:  # strict stop or Ctrl-C: leave no partial shards behind
        for shard in report.shards:
            Path(shard).unlink(missing_ok=True)
        raise
    if report.written == 0:
        for shard in report.shards:  # an empty shard is no use to anyone
            Path(shard).unlink(missing_ok=True)
        first = report.skipped[0][1] if report.skipped else "no rows"
        raise DataError(f"{csv_path}: no usable rows, nothing written (first problem: {first})")
    report.pattern = shard_pattern(out, prefix, len(report.shards))
    return report
