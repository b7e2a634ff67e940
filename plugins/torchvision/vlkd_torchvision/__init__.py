"""vlkd plugin `torchvision`: the backbone family ``torchvision:<name>`` (cheap hooks only)."""
from vlkd_core import hookimpl


@hookimpl
def vlkd_register_backbones(register):
    # Strings keep `vlkd plugins list` fast: torchvision is imported only when used.
    register("torchvision", "vlkd_torchvision.backbone:build_torchvision_backbone",
             models="vlkd_torchvision.models:list_models",
             example={"model": "resnet18", "image_size": 32},
             description="torchvision classification models as image towers (pooled features)")
