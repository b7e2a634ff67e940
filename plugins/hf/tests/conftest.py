"""Tiny Hugging Face models written to temporary directories (no downloads)."""
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

WORDS = ("a small red circle large blue square above green triangle photo of the cat dog "
         "sits on mat kitten is sitting rug stock market crashed").split()


def _tiny_bert(root: Path, extra: tuple[str, ...] = ()) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizerFast
    root.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + WORDS + list(extra)
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(root / "vocab.txt")).save_pretrained(root)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=37, max_position_embeddings=64)
    BertModel(config).save_pretrained(root)
    return root


def _tiny_vit(root: Path) -> Path:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel
    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=37)
    ViTModel(config).save_pretrained(root)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(root)
    return root


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return _tiny_bert(tmp_path_factory.mktemp("hf") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_bert_words(tmp_path_factory) -> Path:
    """The tiny BERT with the words of PromptBERT's template in its vocabulary (no [UNK])."""
    return _tiny_bert(tmp_path_factory.mktemp("hf") / "tiny-bert-words", ("this", "sentence", "means", ":", '"'))


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory) -> Path:
    return _tiny_vit(tmp_path_factory.mktemp("hf") / "tiny-vit")


@pytest.fixture(scope="session")
def tiny_st(tmp_path_factory, tiny_bert) -> Path:
    """A sentence-transformers folder (modules.json): tiny BERT + mean pooling + Normalize."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models
    root = tmp_path_factory.mktemp("hf") / "tiny-st"
    word = models.Transformer(str(tiny_bert), max_seq_length=16)
    st = SentenceTransformer(modules=[word, models.Pooling(32, pooling_mode="mean"), models.Normalize()],
                             device="cpu")
    st.save(str(root))
    return root
