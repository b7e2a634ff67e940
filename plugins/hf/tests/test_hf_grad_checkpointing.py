"""--grad-checkpointing on HF towers: transformers' own switch, same outputs and gradients."""
import vlkd_core as vlkd
from vlkd_core.testing import check_grad_checkpointing


def test_text_tower(tiny_bert):
    check_grad_checkpointing(lambda: vlkd.build_backbone(f"hf:{tiny_bert}", modality="text", pooler="mean"),
                             name="hf text")


def test_sentence_transformers_tower(tiny_st):
    check_grad_checkpointing(lambda: vlkd.build_backbone(f"hf:{tiny_st}", modality="text"), name="hf st")


def test_image_tower(tiny_vit):
    check_grad_checkpointing(lambda: vlkd.build_backbone(f"hf:{tiny_vit}", modality="image"), name="hf vit")
