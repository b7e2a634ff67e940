"""Builtin export formats: the tower-agnostic ones, which fit every run. A family's own formats
(open_clip, sentence-transformers, hf) come from that family's plugin."""
from vlkd_core.hookspecs import hookimpl


@hookimpl
def vlkd_register_export_formats(register):
    register("safetensors", "vlkd_core.exports.safetensors_format:SafetensorsFormat",
             description="config + weights that vlkd.load reads (every run)")
    register("onnx", "vlkd_core.exports.onnx_format:OnnxFormat",
             description="image.onnx and text.onnx: each tower with its head (every run)")
