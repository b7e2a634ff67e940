"""Tiny Hugging Face models written to a folder, offline, for tests (this plugin's and anyone's
that needs a local BERT, ViT or sentence-transformers folder): seeded, so every call writes the
same weights."""
from __future__ import annotations

from pathlib import Path

import torch

WORDS = ("a small red circle large blue square above green triangle photo of the cat dog "
         "sits on mat kitten is sitting rug stock market crashed").split()


def tiny_bert(root: Path, extra: tuple[str, ...] = ()) -> Path:
    """A 2-layer, 32-wide BERT with a word-level vocabulary of WORDS (+ ``extra``)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast
    root.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + WORDS + list(extra)
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(root / "vocab.txt")).save_pretrained(root)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=37, max_position_embeddings=64)
    BertModel(config).save_pretrained(root)
    return root


def tiny_vit(root: Path, size: int = 32, patch: int = 8) -> Path:
    """A 2-layer, 32-wide ViT for ``size`` px images, with its image processor."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel
    torch.manual_seed(0)
    config = ViTConfig(image_size=size, patch_size=patch, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=37)
    ViTModel(config).save_pretrained(root)
    ViTImageProcessor(size={"height": size, "width": size}).save_pretrained(root)
    return root


def tiny_sentence_transformer(root: Path, bert: Path) -> Path:
    """A sentence-transformers folder (modules.json): ``bert`` + mean pooling + Normalize."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules
    word = modules.Transformer(str(bert), max_seq_length=16)
    st = SentenceTransformer(modules=[word, modules.Pooling(32, pooling_mode="mean"), modules.Normalize()],
                             device="cpu")
    st.save(str(root))
    return root
