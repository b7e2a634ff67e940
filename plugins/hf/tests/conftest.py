"""Tiny Hugging Face models written to temporary directories (no downloads)."""
from pathlib import Path

import pytest
import torch

from vlkd_hf.testing import tiny_bert as _tiny_bert
from vlkd_hf.testing import tiny_sentence_transformer, tiny_vit as _tiny_vit

torch.set_num_threads(1)


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
    return tiny_sentence_transformer(tmp_path_factory.mktemp("hf") / "tiny-st", tiny_bert)
