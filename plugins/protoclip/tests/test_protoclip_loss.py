"""ProtoCLIP against an independent computation of its formula; prototype construction at an
episode's start (real faiss and scikit-learn k-means); state kept across a checkpoint."""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vlkd_core as vlkd
from vlkd_core.errors import UsageError
from vlkd_core.testing import check_loss

sys.path.insert(0, str(Path(__file__).parent))
import protoclip_reference as ref  # noqa: E402

D, K, N = 12, 4, 64
SMALL = dict(prototypes=K, projection_dim=16, projection_hidden_dim=64, figure_rows=0, kmeans_redo=10)


class FixedEpisode:
    """The engine's Episode interface over given features (what start_episode reads)."""

    def __init__(self, epoch: int, image: torch.Tensor, text: torch.Tensor, indices=None):
        self.epoch, self.rank, self.world, self.figures_dir = epoch, 0, 1, None
        self.indices = torch.arange(100, 100 + len(image)) if indices is None else indices
        self._features = {"student": image, "teacher": text, "image": image, "text": text}

    def __len__(self) -> int:
        return len(self.indices)

    def features(self, side: str, head: bool = True) -> torch.Tensor:
        return self._features[side]


def blobs(seed: int, n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    """Image and text features around K well-separated centres (text: other centres, other order)."""
    g = torch.Generator().manual_seed(seed)
    which = torch.arange(n) % K
    centres_i, centres_t = 4 * torch.randn(K, D, generator=g), 4 * torch.randn(K, D, generator=g)
    image = centres_i[which] + 0.1 * torch.randn(n, D, generator=g)
    text = centres_t[(which + 1) % K] + 0.1 * torch.randn(n, D, generator=g)
    return image, text


def make(**options) -> torch.nn.Module:
    torch.manual_seed(0)
    return vlkd.build_loss("protoclip", widths={"student_dim": D, "teacher_dim": D}, **{**SMALL, **options})


def test_contract_kit():
    check_loss("protoclip", dim=D, options=SMALL)


def test_documented_by_components_show():
    info = vlkd.get_component("losses", "protoclip").resolve()
    assert "PBT" in info.formula and "InfoNCE" in info.formula and "Chen et al." in info.paper
    assert info.needs.episodes and info.needs.sample_ids and info.needs.symmetric


@pytest.mark.parametrize("temperature, pbt", [(0.05, True), (0.0, True), (0.05, False)])
def test_value_matches_the_formula(temperature, pbt):
    loss = make(target_temperature=temperature, pbt=pbt, proto_weight=0.7, clip_weight=1.3)
    image, text = blobs(1)
    loss.start_episode(FixedEpisode(0, image, text))
    batch = torch.tensor([3, 17, 40, 41, 62, 5])
    x, y = image[batch] + 0.3, text[batch] - 0.2
    out = loss(x, y, indices=batch + 100)
    with torch.no_grad():
        z_x = F.normalize(loss.image_projection(x), dim=1).double().numpy()
        z_y = F.normalize(loss.text_projection(y), dim=1).double().numpy()
    s, sp = float(loss.infonce.logit_scale.detach().exp()), float(loss.proto_logit_scale.detach().exp())
    b = {k: v.double().numpy() for k, v in loss.state_dict().items() if not k.startswith(("infonce", "image_p", "text_p"))}
    a_x, a_y = b["image_labels"][batch.numpy()].astype(int), b["text_labels"][batch.numpy()].astype(int)
    p_xy = ref.proto(z_x, b["image_targets"], b["text_centroids"], a_y, sp, temperature)
    p_yx = ref.proto(z_y, b["text_targets"], b["image_centroids"], a_x, sp, temperature)
    expected = 1.3 * ref.infonce(x.double().numpy(), y.double().numpy(), s) + 0.7 * (p_xy + p_yx) / 2
    assert float(out["loss"].detach()) == pytest.approx(expected, rel=1e-5)
    assert float(out["proto"]) == pytest.approx((p_xy + p_yx) / 2, rel=1e-5)


def test_episode_start_clusters_each_modality_and_back_translates():
    loss = make()
    image, text = blobs(2)
    loss.start_episode(FixedEpisode(3, image, text))
    assert int(loss.episode) == 3 and torch.equal(loss.sample_index, torch.arange(100, 100 + N))
    which = torch.arange(N) % K
    with torch.no_grad():
        z_x = F.normalize(loss.image_projection.eval()(image), dim=1)
        z_y = F.normalize(loss.text_projection.eval()(text), dim=1)
    for labels in (loss.image_labels, loss.text_labels):  # the blobs, whatever the cluster ids
        assert len(set(zip(labels.tolist(), which.tolist()))) == K
    # assignments are the nearest centroids of the projected features
    assert torch.equal(torch.cdist(z_x, loss.image_centroids).argmin(1), loss.image_labels)
    # PBT: the image side is scored against image features averaged over the text clusters
    expected = ref.back_translate(z_x.double().numpy(), loss.text_labels.numpy(), K)
    assert np.allclose(loss.image_targets.double().numpy(), expected, atol=1e-6)
    logs = loss(image[:8], text[:8], indices=torch.arange(100, 108))
    assert logs["image_clusters_used"] == K and logs["image_size_min"] == logs["image_size_max"] == N // K
    assert 0.5 < logs["image_silhouette"] <= 1 and logs["image_kmeans_error"] >= 0


def test_sklearn_fallback_finds_the_same_partition():
    image, text = blobs(4)
    a, b = make(kmeans_backend="faiss"), make(kmeans_backend="sklearn")
    for loss in (a, b):
        loss.start_episode(FixedEpisode(0, image, text))
    pairs = set(zip(a.image_labels.tolist(), b.image_labels.tolist()))
    assert len(pairs) == K  # a relabelling of one partition


def test_checkpointed_episode_is_kept_and_a_new_episode_rebuilds():
    loss = make()
    image, text = blobs(5)
    loss.start_episode(FixedEpisode(1, image, text))
    fresh = make()
    fresh.load_state_dict(copy.deepcopy(loss.state_dict()))  # the [N] buffers take the checkpoint's length
    before = copy.deepcopy(fresh.state_dict())
    other_image, other_text = blobs(6)
    fresh.start_episode(FixedEpisode(1, other_image, other_text))  # resumed mid-episode 1
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in before.items())
    x, y, idx = image[:8], text[:8], torch.arange(100, 108)
    assert torch.equal(loss.eval()(x, y, indices=idx)["loss"], fresh.eval()(x, y, indices=idx)["loss"])
    fresh.start_episode(FixedEpisode(2, other_image, other_text))
    assert int(fresh.episode) == 2 and not torch.equal(fresh.image_centroids, before["image_centroids"])


def test_warmup_episodes_train_infonce_only():
    loss = make(warmup_episodes=1)
    image, text = blobs(7)
    loss.start_episode(FixedEpisode(0, image, text))
    assert loss.sample_index.numel() == 0
    x, y = image[:8], text[:8]
    out = loss(x, y, indices=torch.arange(100, 108))
    assert torch.equal(out["loss"], loss.infonce(x, y)["loss"])
    loss.start_episode(FixedEpisode(1, image, text))
    assert loss.sample_index.numel() == N and "proto" in loss(x, y, indices=torch.arange(100, 108))


def test_external_teacher_is_clustered_and_translated(tmp_path):
    image, text = blobs(8)
    table = np.zeros((100 + N, 3), dtype=np.float32)
    table[100:] = np.eye(3)[np.arange(N) % 3] * 5
    np.save(tmp_path / "teacher.npy", table)
    loss = make(external_teacher=str(tmp_path / "teacher.npy"), prototypes=3)
    loss.start_episode(FixedEpisode(0, image, text))
    assert len(set(zip(loss.external_labels.tolist(), (torch.arange(N) % 3).tolist()))) == 3
    out = loss(image[:6], text[:6], indices=torch.arange(100, 106))
    assert "proto_external" in out and out["external_clusters_used"] == 3


def test_external_teacher_from_a_tower_clusters_its_own_features():
    image, text = blobs(11)
    raw = torch.eye(3)[torch.arange(N) % 3] * 5  # the text tower's output, before its head
    episode = FixedEpisode(0, image, text)
    episode.features = lambda side, head=True: raw if (side, head) == ("text", False) else episode._features[side]
    loss = make(external_teacher="text", prototypes=3)
    loss.start_episode(episode)
    assert len(set(zip(loss.external_labels.tolist(), (torch.arange(N) % 3).tolist()))) == 3


@pytest.mark.parametrize("options, message", [
    ({"prototypes": N + 1}, "option prototypes=65 is more than the 64 samples"),
    ({"external_teacher": "text", "pbt": False}, "option external_teacher needs pbt=true"),
    ({"target_temperature": -1.0}, "option target_temperature must be >= 0"),
    ({"kmeans_backend": "gpu"}, "option kmeans_backend must be one of"),
    ({"external_teacher": "missing.npy"}, "option external_teacher must be none, image, text or an existing .npy"),
])
def test_bad_options_name_the_option(options, message):
    image, text = blobs(9)
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        make(**options).start_episode(FixedEpisode(0, image, text))


def test_rows_outside_the_episode_are_refused():
    loss = make()
    image, text = blobs(10)
    loss.start_episode(FixedEpisode(0, image, text))
    with pytest.raises(UsageError, match="outside the current episode"):
        loss(image[:4], text[:4], indices=torch.tensor([100, 101, 5, 102]))


def test_unset_prototypes_follow_the_episode_and_survive_a_checkpoint(caplog):
    """Without the option, K is one per 10 samples of the episode (the paper's 20000 for 200k),
    said once; a fresh loss loading the checkpoint takes its K."""
    options = {k: v for k, v in SMALL.items() if k != "prototypes"}
    loss = make(prototypes=None, **options)
    assert loss.image_centroids.shape == (0, 16)
    image, text = blobs(5, n=80)
    with caplog.at_level("INFO", logger="vlkd"):
        loss.start_episode(FixedEpisode(0, image, text))
        loss.start_episode(FixedEpisode(1, image, text))
    assert [r.getMessage() for r in caplog.records] == [
        "loss 'protoclip': prototypes=8, one per 10 samples of the 80-sample episode (the paper: 20000 for "
        "200k); set it with --loss-option protoclip.prototypes=K"]
    assert all(getattr(loss, name).shape == (8, 16) for name in ("image_centroids", "text_targets"))
    assert int(loss.image_labels.max()) < 8
    fresh = make(prototypes=None, **options)
    fresh.load_state_dict(copy.deepcopy(loss.state_dict()))
    x, y, idx = image[:8], text[:8], torch.arange(100, 108)
    assert torch.equal(loss.eval()(x, y, indices=idx)["loss"], fresh.eval()(x, y, indices=idx)["loss"])
    assert vlkd.build_loss("protoclip", widths={"student_dim": D, "teacher_dim": D}).prepare_prototypes(
        10 ** 6) == 20000  # capped at the paper's own K
