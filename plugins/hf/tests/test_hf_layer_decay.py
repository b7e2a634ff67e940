"""--layer-decay depth of hf towers (BERT text, sentence-transformers, ViT image): embeddings 0,
layer i -> i + 1, pooler / final norm / projection the top; factor decay^(L - depth)."""

import vlkd_core as vlkd
from vlkd_core.testing import layer_depths


def depths(tower, decay=0.5):
    return layer_depths(tower, decay, name="hf:test")


def test_bert_text_tower(tiny_bert):  # 2 layers: embeddings 0, layers 1-2, pooler 3
    got = depths(vlkd.build_backbone(f"hf:{tiny_bert}", "text", pooler="mean"))
    assert got["model.embeddings.word_embeddings.weight"] == got["model.embeddings.LayerNorm.bias"] == 0
    assert got["model.encoder.layer.0.attention.self.query.weight"] == 1
    assert got["model.encoder.layer.1.output.dense.bias"] == 2
    assert got["model.pooler.dense.weight"] == 3


def test_sentence_transformers_tower(tiny_st):
    got = depths(vlkd.build_backbone(f"hf:{tiny_st}", "text"))
    # st.0.auto_model.* or st.0.model.*, by sentence-transformers version
    by_suffix = {name.split(".", 3)[3]: d for name, d in got.items()}
    assert by_suffix["embeddings.position_embeddings.weight"] == 0
    assert by_suffix["encoder.layer.1.intermediate.dense.weight"] == 2


def test_vit_image_tower(tiny_vit):
    got = depths(vlkd.build_backbone(f"hf:{tiny_vit}", "image"))
    assert got["model.embeddings.cls_token"] == got["model.embeddings.patch_embeddings.projection.weight"] == 0
    assert got["model.encoder.layer.0.layernorm_before.weight"] == 1
    assert got["model.layernorm.weight"] == 3
