"""Image-text pairs listed in CSV/TSV files (the OpenCLIP / ITRA layout).

    vlkd.build_dataset("csv", path="train.csv", image_key="filepath", caption_key="title")

One header row names the columns; every further row gives an image path and its caption (and
optionally an integer class label). Relative image paths are resolved against ``image_root`` when
given, else against the folder holding the CSV file.

Every row is checked when the dataset is built, so a malformed file fails before training
starts, with a :class:`~vlkd_core.errors.DataError` naming the file and the 1-based line number a
text editor shows (a quoted caption spanning several lines is reported at its first line). Blank
lines are ignored. Image files are *not* opened up front: a missing or unreadable image is
handled when it is read (see :mod:`vlkd_core.datasets.robust`).
Samples: ``{"image": PIL RGB, "text": caption, "key": resolved image path[, "label": int]}``.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import DataError, UsageError
from .robust import BadImageLog, open_image

TAB_SUFFIXES = (".tsv", ".tab")


@dataclass(frozen=True)
class CsvRow:
    """One validated row: where it came from, the resolved image path, caption and label."""

    file: str
    line: int
    image: str
    text: str
    label: int | None


def split_paths(path: str | Path | list[str | Path]) -> list[Path]:
    """``"a.csv,b.csv"`` or a list -> paths (``~`` expanded)."""
    parts = path if isinstance(path, (list, tuple)) else str(path).split(",")
    paths = [Path(str(p).strip()).expanduser() for p in parts if str(p).strip()]
    if not paths:
        raise UsageError("csv: option 'path' is empty (give a CSV/TSV file, or several separated by commas)")
    return paths


SPLIT_MARK = "{split}"


def substitute_split(path: str | list[str], split: str | None, dataset: str) -> str | list[str]:
    """Fill a ``{split}`` placeholder in the ``path`` option (``data/{split}.csv``) so the engine,
    evaluators and reports can ask for ``split="train"|"val"|"test"``. A path without the
    placeholder *is* the data: it serves ``split="train"`` (what training asks for) or no split,
    and any other split is refused rather than silently answered with the training files."""
    parts = list(path) if isinstance(path, (list, tuple)) else [str(path)]
    if any(SPLIT_MARK in str(p) for p in parts):
        filled = [str(p).replace(SPLIT_MARK, split or "train") for p in parts]
        return filled if isinstance(path, (list, tuple)) else filled[0]
    if split not in (None, "train"):
        raise UsageError(f"{dataset}: split '{split}' requested but option path has no {SPLIT_MARK} "
                         f"placeholder (e.g. path='data/{SPLIT_MARK}.csv'); point path at that split's files")
    return path


def default_separator(path: Path) -> str:
    """Tab for ``.tsv``/``.tab`` files, comma otherwise."""
    return "\t" if path.suffix.lower() in TAB_SUFFIXES else ","


def normalize_separator(separator: str | None) -> str | None:
    """Accept the spellings a shell makes easy: ``\\t``, ``tab``, ``comma``."""
    if separator is None:
        return None
    named = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    separator = named.get(separator.lower(), separator)
    if len(separator) != 1:
        raise UsageError(f"csv: option 'separator' must be one character (or 'tab'), not {separator!r}")
    return separator


def read_rows(path: Path, image_key: str = "filepath", caption_key: str = "title",
              separator: str | None = None, image_root: str | Path | None = None,
              label_key: str | None = None) -> list[CsvRow]:
    """Parse and validate one CSV/TSV file; raises DataError naming the file and line at fault."""
    if not path.is_file():
        raise UsageError(f"csv: file not found: {path}")
    sep = normalize_separator(separator) or default_separator(path)
    root = Path(image_root).expanduser() if image_root is not None else path.parent
    rows: list[CsvRow] = []
    # utf-8-sig: a byte-order mark (Excel's CSV export) must not become part of the first column
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=sep)
        header: list[str] | None = None
        columns: tuple[int, int, int | None] = (0, 0, None)
        previous_end = 0
        while True:
            line = previous_end + 1  # the first line of the record about to be read
            try:
                fields = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                raise DataError(f"{path}, line {line}: cannot parse ({exc})") from None
            previous_end = reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # blank line
            if header is None:
                header = [name.strip() for name in fields]
                columns = _column_indices(path, header, image_key, caption_key, label_key, sep)
                continue
            rows.append(_parse_row(path, line, fields, header, columns, root, image_key,
                                   caption_key, label_key))
    if header is None:
        raise DataError(f"{path}: empty file (expected a header row naming the columns "
                        f"'{image_key}' and '{caption_key}')")
    return rows


def _column_indices(path: Path, header: list[str], image_key: str, caption_key: str,
                    label_key: str | None, sep: str) -> tuple[int, int, int | None]:
    wanted = [("image_key", image_key), ("caption_key", caption_key)]
    if label_key:
        wanted.append(("label_key", label_key))
    for option, name in wanted:
        if name not in header:
            hint = ""
            if len(header) == 1 and sep not in ("\t",) and "\t" in header[0]:
                hint = " (the file looks tab-separated: set separator='\\t' or name it .tsv)"
            elif len(header) == 1 and sep == "\t" and "," in header[0]:
                hint = " (the file looks comma-separated: set separator=',')"
            raise DataError(f"{path}, line 1: no column '{name}' (option {option}); the header has "
                            f"columns {', '.join(repr(h) for h in header)}{hint}")
    return (header.index(image_key), header.index(caption_key),
            header.index(label_key) if label_key else None)


def _parse_row(path: Path, line: int, fields: list[str], header: list[str],
               columns: tuple[int, int, int | None], root: Path, image_key: str,
               caption_key: str, label_key: str | None) -> CsvRow:
    where = f"{path}, line {line}"
    if len(fields) != len(header):
        problem = "missing columns" if len(fields) < len(header) else "too many fields"
        raise DataError(f"{where}: {problem}: expected {len(header)} fields ({', '.join(header)}) "
                        f"but found {len(fields)} (an unquoted separator inside a caption?)")
    image_col, caption_col, label_col = columns
    image, text = fields[image_col].strip(), fields[caption_col].strip()
    if not image:
        raise DataError(f"{where}: empty image path in column '{image_key}'")
    if not text:
        raise DataError(f"{where}: empty caption in column '{caption_key}'")
    label = None
    if label_col is not None:
        raw = fields[label_col].strip()
        try:
            label = int(raw)
        except ValueError:
            raise DataError(f"{where}: label {raw!r} in column '{label_key}' is not an integer") from None
    return CsvRow(str(path), line, str(root / Path(image).expanduser()), text, label)


class CsvDataset(torch.utils.data.Dataset):
    """Image-text pairs from CSV/TSV files.

    Options: ``path`` (one file, or several separated by commas), ``image_key`` / ``caption_key``
    (column names, OpenCLIP's defaults ``filepath`` / ``title``), ``separator`` (default: tab for
    ``.tsv``, comma otherwise; ``tab`` or ``\\t`` accepted), ``image_root`` (base folder of relative
    image paths; default: each CSV's folder), ``label_key`` (optional integer label column),
    ``length`` (use the first n rows), ``strict`` (raise on an unreadable image instead of
    skipping it), ``split`` (fills a ``{split}`` placeholder in ``path``; without one only
    ``train`` is accepted, as the files given are the training data)."""

    def __init__(self, path: str | list[str], image_key: str = "filepath", caption_key: str = "title",
                 separator: str | None = None, image_root: str | None = None,
                 label_key: str | None = None, length: int | None = None, strict: bool = False,
                 split: str | None = None):
        self.split = split
        self.paths = split_paths(substitute_split(path, split, "csv"))
        self.rows: list[CsvRow] = []
        for file in self.paths:
            self.rows.extend(read_rows(file, image_key, caption_key, separator, image_root, label_key))
        if not self.rows:
            raise DataError(f"csv: no samples in {', '.join(map(str, self.paths))} (only a header row)")
        if length is not None:
            self.rows = self.rows[:length]
        self.strict = strict
        self.bad_images = BadImageLog()

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict | None:
        """The sample, or ``None`` when its image is unreadable (recorded in ``bad_images``)."""
        if not 0 <= index < len(self.rows):
            raise IndexError(index)
        row = self.rows[index]
        image = open_image(row.image, f"{row.image} ({row.file}, line {row.line})",
                           strict=self.strict, log=self.bad_images)
        if image is None:
            return None
        sample = {"image": image, "text": row.text, "key": row.image}
        if row.label is not None:
            sample["label"] = row.label
        return sample
