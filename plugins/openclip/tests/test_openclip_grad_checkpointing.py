"""--grad-checkpointing on OpenCLIP towers: open_clip's own switch, same outputs and gradients."""
import pytest

import vlkd_core as vlkd
from vlkd_core.testing import check_grad_checkpointing


@pytest.mark.parametrize("modality", ["image", "text"])
def test_grad_checkpointing_changes_nothing_but_recomputation(tiny_clip, modality):
    check_grad_checkpointing(lambda: vlkd.build_backbone(f"openclip:{tiny_clip}", modality=modality),
                             name=f"openclip {modality}")
