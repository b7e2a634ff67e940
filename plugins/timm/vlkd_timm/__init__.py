"""vlkd plugin `timm`: the backbone family ``timm:<name>`` and timm's LAMB and Lion optimizers
(cheap hooks only: nothing is imported until a component is built)."""
from vlkd_core import hookimpl


@hookimpl
def vlkd_register_backbones(register):
    register("timm", "vlkd_timm.backbone:build_timm_backbone",
             models="vlkd_timm.models:list_models",
             example={"model": "test_resnet", "image_size": 32},
             description="timm models as image towers (num_classes=0 pooled features)")


@hookimpl
def vlkd_register_optimizers(register):
    # timm's own implementations: timm is this plugin's dependency already, so no package to add.
    # The classes are the factories as they are (lr and weight_decay come from the engine's groups).
    register("lamb", "timm.optim:Lamb", paper="arXiv:1904.00962",
             description="LAMB: Adam with a per-tensor trust ratio, for large batches (clips the global "
                         "gradient norm at max_grad_norm, so not --optimizer-in-backward)")
    register("lion", "timm.optim:Lion", per_parameter=True, paper="arXiv:2302.06675",
             description="Lion: the sign of interpolated momentum; wants ~3-10x lower --lr and higher "
                         "--weight-decay than AdamW")
