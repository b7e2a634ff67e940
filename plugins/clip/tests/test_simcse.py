"""SimCSE: values against the paper's formula written out independently; duplicate captions are
not negatives; the engine hands it two train-mode passes of the text tower (LossNeeds.second_view)
and refuses a locked text tower."""
from __future__ import annotations

import math

import pytest
import torch

import vlkd_core
from vlkd_core.errors import UsageError
from vlkd_core.testing import check_loss

torch.set_num_threads(1)


def reference(h, h2, tau, labels=None):
    """−log of the positive's share of the softmax, row by row, in float64; with labels, the
    mean over a row's positives of −log p (the soft-target cross-entropy)."""
    h = [r / r.norm() for r in h.double()]
    h2 = [r / r.norm() for r in h2.double()]
    total = 0.0
    for i, a in enumerate(h):
        scores = [float(a @ b) / tau for b in h2]
        log_norm = math.log(sum(math.exp(s) for s in scores))
        positives = [j for j in range(len(h2)) if (j == i if labels is None else labels[j] == labels[i])]
        total += sum(log_norm - scores[j] for j in positives) / len(positives)
    return total / len(h)


def test_values_match_the_formula():
    gen = torch.Generator().manual_seed(0)
    h, h2 = torch.randn(6, 8, generator=gen), torch.randn(6, 8, generator=gen)
    for tau in (0.05, 0.5):
        loss = vlkd_core.build_loss("simcse", temperature=tau)
        assert loss(h, h2).item() == pytest.approx(reference(h, h2, tau), rel=1e-5)


def test_identical_captions_are_not_negatives():
    gen = torch.Generator().manual_seed(1)
    h, h2 = torch.randn(4, 8, generator=gen), torch.randn(4, 8, generator=gen)
    labels = torch.tensor([7, 3, 7, 9])  # rows 0 and 2 are the same caption
    loss = vlkd_core.build_loss("simcse")
    assert loss(h, h2, labels=labels).item() == pytest.approx(reference(h, h2, 0.05, labels.tolist()), rel=1e-5)
    assert loss(h, h2, labels=labels).item() != pytest.approx(loss(h, h2).item(), rel=1e-3)


def test_contract_kit():
    check_loss("simcse")


def _bundle(tmp_path, dropout: float, **overrides):
    from vlkd_core.training import TrainConfig
    from vlkd_core.training.compose import compose
    values = dict(image="toy:tiny", text="toy:tiny", image_options={"image_size": 32}, image_head=None,
                  text_options={"dropout": dropout}, loss="simcse", teacher="none", eval=[],
                  output_dir=str(tmp_path), name="run")
    cfg = TrainConfig(**{**values, **overrides})
    return compose(cfg).train()


def _batch(texts):
    from vlkd_core.training.data import Batch
    return Batch(torch.zeros(len(texts), 3, 32, 32), texts, [str(i) for i in range(len(texts))],
                 torch.full((len(texts),), -1), 0)


def test_the_engine_passes_two_dropout_passes_of_the_text_tower(tmp_path):
    texts = ["a red circle", "a blue square", "a green star", "a red square", "a blue star"]
    torch.manual_seed(0)
    bundle = _bundle(tmp_path, dropout=0.0)
    _, logs = bundle(_batch(texts))
    with torch.no_grad():  # without dropout both passes are the same features
        feats = bundle.model.encode_text(bundle.model.text_tower.preprocess(texts))
    assert logs["loss/simcse"] == pytest.approx(reference(feats, feats, 0.05), rel=1e-5)
    torch.manual_seed(0)
    noisy = _bundle(tmp_path, dropout=0.5)
    _, noisy_logs = noisy(_batch(texts))
    assert noisy_logs["loss/simcse"] > logs["loss/simcse"] + 1e-3  # the passes now differ


def test_a_locked_text_tower_is_refused(tmp_path):
    with pytest.raises(UsageError, match="text tower is locked"):
        _bundle(tmp_path, dropout=0.1, lock_text=True, image_head="linear")


@pytest.mark.slow
def test_a_run_with_simcse_trains_and_evaluates(tmp_path):
    from vlkd_core.training import TrainConfig, train
    cfg = TrainConfig(image="toy:tiny", text="toy:tiny", image_options={"image_size": 32}, image_head=None,
                      text_options={"dropout": 0.1}, loss="infonce,simcse:0.1", teacher="none",
                      batch_size=16, max_steps=6, warmup_steps=1, progress=False,
                      data_options={"size": 32, "length": 96}, output_dir=str(tmp_path), name="run")
    summary = train(cfg)
    assert summary["steps"] == 6 and math.isfinite(summary["final_loss"])
    assert any(k.startswith("retrieval/") for k in summary["metrics"])
    logged = [line for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if "loss/simcse" in line]
    assert logged  # the regulariser's own value is logged next to InfoNCE's
