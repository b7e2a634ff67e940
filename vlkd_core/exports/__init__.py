"""``vlkd.export(RUN, FORMAT, OUT)`` / ``vlkd export RUN --format FORMAT --out DIR``: a trained
model written in a format another library loads directly.

Formats are registered components (:mod:`.registry`, hook ``vlkd_register_export_formats``;
``vlkd components list export_formats`` lists them): the core's ``safetensors`` (config +
weights, what ``vlkd.load`` reads) and ``onnx`` (each tower with its head) fit every run; the
plugins add their families' formats (``open_clip`` from the openclip plugin,
``sentence-transformers`` and ``hf`` from the hf plugin). A format that does not fit the run's
towers is a one-line error naming those that do.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError
from .registry import ExportFormat, Format, export_part, fitting, formats, get_format, instance, register_format
from .staging import check_target, staged, write_info

__all__ = ["export", "ExportFormat", "Format", "export_part", "fitting", "formats", "get_format",
           "register_format"]


def export(source: Any, format: str, out: str | Path, overwrite: bool = False) -> Path:
    """Export ``source`` (a run directory, checkpoint, safetensors export or a
    :class:`~vlkd_core._model.loaded_model.LoadedModel`) as ``format`` into the folder ``out``."""
    from .._model.loaded_model import LoadedModel
    from .._model.loader import load  # torch: imported only when exporting
    comp = get_format(format)
    out = Path(out)
    check_target(out, overwrite)
    model = source if isinstance(source, LoadedModel) else load(source)
    fmt = instance(comp)
    reason = fmt.fits(model)
    if reason:
        fit = fitting(model)
        raise UsageError(f"--format {comp.name} does not fit this run: {reason}; formats that fit: "
                         f"{', '.join(fit) or 'none'}")
    with staged(out) as folder:
        info = fmt.write(model, folder)
        write_info(folder, comp.name, {"image": model.config.image, "text": model.config.text,
                                       "source": str(model.source), **info})
    return out
