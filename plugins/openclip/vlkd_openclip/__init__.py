"""vlkd plugin `openclip`: the backbone family ``openclip:<name>`` (cheap hooks only)."""
from vlkd_core import hookimpl


@hookimpl
def vlkd_register_backbones(register):
    # No `example`: every built-in open_clip config is large; the plugin's tests register a
    # tiny config with open_clip.add_model_config instead.
    register("openclip", "vlkd_openclip.backbone:build_openclip_backbone",
             models="vlkd_openclip.models:list_models",
             # open_clip's own schemas: the model (config + weights) from the hub or a folder
             model_patterns=["hf-hub:*", "local-dir:*"],
             description="OpenCLIP image tower (visual) or text tower (encode_text)")


@hookimpl
def vlkd_register_export_formats(register):
    register("open_clip", "vlkd_openclip.export:OpenClipFormat",
             description="a folder open_clip loads as local-dir:DIR (OpenCLIP towers)")
