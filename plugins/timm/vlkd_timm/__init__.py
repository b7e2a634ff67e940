"""vlkd plugin `timm`: the backbone family ``timm:<name>`` (cheap hooks only)."""
from vlkd_core import hookimpl


@hookimpl
def vlkd_register_backbones(register):
    register("timm", "vlkd_timm.backbone:build_timm_backbone",
             models="vlkd_timm.models:list_models",
             example={"model": "test_resnet", "image_size": 32},
             description="timm models as image towers (num_classes=0 pooled features)")
