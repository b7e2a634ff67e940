"""Bad-image handling shared by the file-backed datasets (csv, imagefolder, webdataset).

An unreadable or missing image never crashes or hangs a run. By default it is *skipped*:

- the dataset records it in its :class:`BadImageLog` (``dataset.bad_images``) and emits one
  :class:`DataWarning` naming the file (Python's default warning filter shows each distinct
  message once, so a file that stays bad across epochs is reported once per process);
- a map-style dataset's ``__getitem__`` returns ``None`` and an iterable dataset yields ``None``;
- the collate function drops the ``None`` items: :func:`collate_skip_none` returns the batch of
  good items plus how many were skipped.

With ``strict=True`` the first bad image raises :class:`~vlkd_core.errors.DataError` naming it.

DataLoader worker processes: each worker holds its own copy of the dataset, so a worker's
``bad_images`` log never reaches the main process (and a fresh worker starts with an empty one).
The dependable count is therefore the one that travels with the data: the number of ``None``
items each batch dropped, which :func:`collate_skip_none` returns and the training engine sums
(``Batch.skipped``). ``dataset.bad_images`` is exact only for ``num_workers=0`` or when the dataset
is read in the main process (for example by ``vlkd data to-webdataset``).
"""
from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError


class DataWarning(UserWarning):
    """A data problem that was skipped (bad image, empty shard); the message names the file."""


def describe_error(exc: BaseException) -> str:
    """A short reason for a failed image read: "file not found" or "<Type>: <message>"."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class BadImageLog:
    """The bad images one process has seen: ``(name, reason)`` pairs, in the order met.

    ``len(log)`` / ``log.count`` is how many; ``log.names`` which files."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def record(self, name: str, reason: str) -> None:
        """Remember a skipped image and warn once, naming the file."""
        self.items.append((name, reason))
        warnings.warn(f"skipping unreadable image {name} ({reason})", DataWarning, stacklevel=3)

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.items]

    def clear(self) -> None:
        self.items.clear()

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"BadImageLog(count={self.count})"


def decode_image(source: str | Path | bytes):
    """Decode an image file (a path) or image bytes into a fully loaded RGB PIL image; raises
    whatever PIL or the file system raises (see :func:`open_image` for the forgiving form)."""
    from PIL import Image

    from .._model.images import to_rgb
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
    with stream, Image.open(stream) as image:
        image.load()  # decode now: a truncated file fails here, not later in a transform
        return to_rgb(image)


def open_image(source: str | Path | bytes, name: str | None = None, *, strict: bool = False,
               log: BadImageLog | None = None):
    """:func:`decode_image`, but a missing, truncated or undecodable image returns ``None``
    after being recorded in ``log`` (or warned about when no log is given); with ``strict`` it
    raises :class:`DataError` naming it instead. ``name`` is what messages call the image
    (default: the path)."""
    label = name if name is not None else str(source)
    try:
        return decode_image(source)
    # PIL raises many types for bad data (OSError, SyntaxError, ValueError, struct.error,
    # DecompressionBombError, ...): any of them means "this image is unusable".
    except Exception as exc:  # noqa: BLE001
        reason = describe_error(exc)
        if strict:
            raise DataError(f"{label}: unreadable image ({reason})") from exc
        if log is not None:
            log.record(label, reason)
        else:
            warnings.warn(f"skipping unreadable image {label} ({reason})", DataWarning, stacklevel=2)
        return None


def collate_skip_none(items: Sequence[Any], collate_fn: Callable[[list[Any]], Any] | None = None
                      ) -> tuple[Any, int]:
    """Drop the ``None`` items (skipped bad samples) of a batch.

    Returns ``(batch, skipped)``: ``batch`` is the list of good items, or ``collate_fn`` applied
    to it when given (not called on an empty list: ``batch`` is then ``[]``); ``skipped`` is how
    many items were dropped. Use as ``DataLoader(..., collate_fn=collate_skip_none)`` and sum
    ``skipped`` over batches: that count is correct with any number of worker processes."""
    good = [item for item in items if item is not None]
    skipped = len(items) - len(good)
    if collate_fn is not None and good:
        return collate_fn(good), skipped
    return good, skipped
