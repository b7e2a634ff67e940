"""``vlkd.export(RUN, FORMAT, OUT)`` / ``vlkd export RUN --format FORMAT --out DIR``: a trained
model written in a format another library loads directly.

Formats (:mod:`.registry`; ``vlkd export --help`` lists them): ``safetensors`` (config + weights,
what ``vlkd.load`` reads; every run), ``onnx`` (each tower with its head), ``open_clip`` (both
towers OpenCLIP), ``sentence-transformers`` and ``hf`` (Hugging Face towers). A format that does
not fit the run's towers is a one-line error naming those that do.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError
from . import builtin  # noqa: F401 -- registers the built-in formats
from .registry import FORMATS, Format, fitting, get_format, register_format
from .staging import check_target, staged, write_info

__all__ = ["export", "FORMATS", "Format", "fitting", "get_format", "register_format"]


def export(source: Any, format: str, out: str | Path, overwrite: bool = False) -> Path:
    """Export ``source`` (a run directory, checkpoint, safetensors export or a
    :class:`~vlkd_core.loaded_model.LoadedModel`) as ``format`` into the folder ``out``."""
    from ..loaded_model import LoadedModel
    from ..loader import load  # torch: imported only when exporting
    fmt = get_format(format)
    out = Path(out)
    check_target(out, overwrite)
    model = source if isinstance(source, LoadedModel) else load(source)
    reason = fmt.fits(model)
    if reason:
        fit = fitting(model)
        raise UsageError(f"--format {fmt.name} does not fit this run: {reason}; formats that fit: "
                         f"{', '.join(fit) or 'none'}")
    with staged(out) as folder:
        info = fmt.write(model, folder)
        write_info(folder, fmt.name, {"image": model.config.image, "text": model.config.text,
                                      "source": str(model.source), **info})
    return out
