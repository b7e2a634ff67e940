"""--grad-checkpointing on timm towers: timm's own switch, same outputs and gradients."""
import vlkd_core as vlkd
from vlkd_core.testing import check_grad_checkpointing


def test_grad_checkpointing_changes_nothing_but_recomputation():
    check_grad_checkpointing(lambda: vlkd.build_backbone("timm:test_vit", image_size=32), name="timm test_vit")
