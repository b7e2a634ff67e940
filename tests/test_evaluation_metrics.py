"""Each metric against an independent computation on hand-made embeddings with known answers."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vlkd_core.evaluation import metrics as M


def _orthonormal(n, d, seed=0):
    q, _ = torch.linalg.qr(torch.randn(d, n, generator=torch.Generator().manual_seed(seed)))
    return q.T.contiguous()  # [n, d], orthonormal rows


def test_zeroshot_weights_normalise_each_template_then_mean_then_renormalise():
    feats = torch.randn(3, 4, 8, generator=torch.Generator().manual_seed(1)) * torch.tensor([1., 5., .1, 2.])[None, :, None]
    expected = []
    for c in range(3):
        acc = sum(feats[c, t] / feats[c, t].norm() for t in range(4)) / 4
        expected.append(acc / acc.norm())
    assert torch.allclose(M.zeroshot_weights(feats), torch.stack(expected), atol=1e-6)


def test_zeroshot_on_separable_clusters_is_perfect_and_degrades_when_labels_shift():
    centers = _orthonormal(4, 16)
    gen = torch.Generator().manual_seed(2)
    labels = torch.arange(4).repeat_interleave(5)
    images = F.normalize(centers[labels] + 0.05 * torch.randn(20, 16, generator=gen), dim=-1)
    prompts = centers[:, None, :] + 0.05 * torch.randn(4, 3, 16, generator=gen)  # 3 templates
    scores = images @ M.zeroshot_weights(prompts).T
    assert M.topk_accuracy(scores, labels, (1,))[1] == 1.0
    shifted = (labels + 1) % 4
    assert M.topk_accuracy(scores, shifted, (1,))[1] == 0.0
    assert M.mean_per_class_recall(scores.argmax(1), labels, 4) == 1.0


def test_topk_accuracy_matches_a_loop():
    gen = torch.Generator().manual_seed(3)
    scores, labels = torch.randn(50, 7, generator=gen), torch.randint(0, 7, (50,), generator=gen)
    for k in (1, 3, 5):
        manual = np.mean([labels[i].item() in scores[i].argsort(descending=True)[:k].tolist() for i in range(50)])
        assert M.topk_accuracy(scores, labels, (k,))[k] == pytest.approx(manual)
    assert M.topk_accuracy(scores, labels, (10,))[10] == 1.0  # k clipped to the class count


def test_mean_per_class_recall_matches_sklearn_balanced_accuracy():
    from sklearn.metrics import balanced_accuracy_score
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 200)
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, 5, 200))
    assert M.mean_per_class_recall(p, y, 5) == pytest.approx(balanced_accuracy_score(y, p))
    # unbalanced toy with a known answer: class 0 recall 1/2, class 1 recall 1 -> 0.75
    assert M.mean_per_class_recall([0, 1, 1, 1], [0, 0, 1, 1], 2) == pytest.approx(0.75)


def test_retrieval_on_a_permutation_with_several_captions():
    n, d = 12, 32
    base = _orthonormal(n, d)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(4))
    images = base[perm]                                      # image i is base vector perm[i]
    # two captions per image, slightly noisy copies, stored in shuffled order
    owner = torch.arange(n).repeat(2)
    gen = torch.Generator().manual_seed(5)
    texts = images[owner] + 0.01 * torch.randn(2 * n, d, generator=gen)
    shuffle = torch.randperm(2 * n, generator=gen)
    r = M.retrieval_recall(images, texts[shuffle], owner[shuffle], chunk_size=5)
    assert all(v == 1.0 for v in r.values())
    # now make caption owners wrong for the first half: exactly those images/captions fail at R@1
    wrong = owner.clone()
    wrong[:n // 2] = (wrong[:n // 2] + 1) % n
    r = M.retrieval_recall(images, texts, wrong, ks=(1,), chunk_size=4)
    # independent computation
    sim = F.normalize(images, dim=-1) @ F.normalize(texts, dim=-1).T
    t2i = np.mean([sim[:, j].argmax().item() == wrong[j].item() for j in range(2 * n)])
    i2t = np.mean([wrong[sim[i].argmax()].item() == i for i in range(n)])
    assert r["text_to_image_R@1"] == pytest.approx(t2i)
    assert r["image_to_text_R@1"] == pytest.approx(i2t)


def test_retrieval_recall_at_k_against_brute_force_random():
    gen = torch.Generator().manual_seed(6)
    img, txt = torch.randn(30, 8, generator=gen), torch.randn(75, 8, generator=gen)
    owner = torch.randint(0, 30, (75,), generator=gen)
    owner[:30] = torch.arange(30)
    r = M.retrieval_recall(img, txt, owner, ks=(1, 5, 10), chunk_size=7)
    assert M.retrieval_recall(img, txt, owner, max_chunk_elements=100) == r  # 1-row blocks, same answer
    sim = F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T
    for k in (1, 5, 10):
        i2t = np.mean([bool(set(sim[i].topk(k).indices.tolist()) & set(torch.nonzero(owner == i).flatten().tolist())) for i in range(30)])
        t2i = np.mean([owner[j].item() in sim[:, j].topk(k).indices.tolist() for j in range(75)])
        assert r[f"image_to_text_R@{k}"] == pytest.approx(i2t)
        assert r[f"text_to_image_R@{k}"] == pytest.approx(t2i)


def test_knn_weighted_votes_match_a_direct_computation():
    gen = torch.Generator().manual_seed(7)
    train, test = torch.randn(40, 6, generator=gen), torch.randn(9, 6, generator=gen)
    y = torch.randint(0, 3, (40,), generator=gen)
    k, T = 5, 0.1
    got = M.knn_scores(train, y, test, 3, k=k, temperature=T, chunk_size=4)
    tn, sn = F.normalize(train, dim=-1), F.normalize(test, dim=-1)
    for i in range(9):
        sims = [(float(sn[i] @ tn[j]), int(y[j])) for j in range(40)]
        sims.sort(reverse=True)
        votes = np.zeros(3)
        for s, c in sims[:k]:
            votes[c] += np.exp(s / T)
        assert np.allclose(got[i].numpy(), votes, rtol=1e-4)


def test_knn_on_clusters_is_perfect():
    centers = _orthonormal(3, 8)
    gen = torch.Generator().manual_seed(8)
    ytr, yte = torch.arange(3).repeat(10), torch.arange(3).repeat(4)
    tr = centers[ytr] + 0.05 * torch.randn(30, 8, generator=gen)
    te = centers[yte] + 0.05 * torch.randn(12, 8, generator=gen)
    scores = M.knn_scores(tr, ytr, te, 3, k=5)
    assert (scores.argmax(1) == yte).all()


def test_clustering_perfect_and_shuffled():
    y = np.repeat(np.arange(4), 25)
    assert M.clustering_agreement(y, (y + 2) % 4) == {"nmi": 1.0, "ami": 1.0, "ari": 1.0}  # relabelled = perfect
    shuffled = np.random.default_rng(0).permutation(y)
    s = M.clustering_agreement(y, shuffled)
    assert s["nmi"] < 0.1 and abs(s["ami"]) < 0.05 and abs(s["ari"]) < 0.05
    centers = _orthonormal(4, 16)
    feats = centers[torch.from_numpy(y)] + 0.05 * torch.randn(100, 16, generator=torch.Generator().manual_seed(9))
    assert M.cluster_scores(feats, y)["nmi"] == pytest.approx(1.0)


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr
    rng = np.random.default_rng(1)
    for _ in range(5):
        a = rng.integers(0, 6, 40).astype(float)  # many ties
        b = a + rng.normal(0, 2, 40)
        assert M.spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert M.spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)


def test_11_point_map_matches_vision_evaluation_and_a_hand_example():
    from vision_evaluation.evaluators import MeanAveragePrecisionNPointsEvaluator
    # one class, ranking: + - + -  -> precision at recall 0.5 is 1, at recall 1 is 2/3
    assert M.average_precision_11pt([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)
    # top-ranked negative: VOC devkit gives 0.5 at every level; sklearn/ELEVATER count the empty
    # prediction set as precision 1 at recall 0
    assert M.average_precision_11pt([0.9, 0.8], [0, 1], sentinel=False) == pytest.approx(0.5)
    assert M.average_precision_11pt([0.9, 0.8], [0, 1]) == pytest.approx((1 + 10 * 0.5) / 11)
    rng = np.random.default_rng(2)
    for trial in range(20):
        targets = (rng.random((60, 6)) < 0.3).astype(int)
        targets[0] = 1
        scores = targets * 0.5 + rng.random((60, 6))
        if trial % 2:  # many ties, as rounded softmax outputs produce
            scores = np.round(scores, 1) * (rng.random((60, 6)) < 0.5)
        ref = MeanAveragePrecisionNPointsEvaluator(11)
        ref.add_predictions(scores, targets)
        assert M.mean_average_precision_11pt(scores, targets) == pytest.approx(ref.get_report()["mAP_11_points"])


def test_few_shot_indices_take_k_per_class_and_depend_on_seed():
    y = np.repeat(np.arange(3), [10, 2, 7])
    idx = M.few_shot_indices(y, 4, seed=0)
    assert np.bincount(y[idx]).tolist() == [4, 2, 4]
    assert not np.array_equal(idx, M.few_shot_indices(y, 4, seed=1))


def _probe_data(seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), 30)
    x = rng.normal(size=(90, 10)) + 3.0 * np.eye(3, 10)[y]
    yt = np.repeat(np.arange(3), 10)
    xt = rng.normal(size=(30, 10)) + 3.0 * np.eye(3, 10)[yt]
    return x, y, xt, yt


def test_linear_probe_picks_C_by_validation_accuracy_on_the_carved_split():
    from sklearn.linear_model import LogisticRegression
    x, y, xt, yt = _probe_data()
    Cs = (1e-4, 1e-2, 1.0, 100.0)
    res = M.linear_probe(x, y, xt, 3, Cs=Cs, val_fraction=0.3, seed=0)
    assert set(res.train_idx).isdisjoint(res.val_idx) and len(res.train_idx) + len(res.val_idx) == 90
    for C in Cs:  # independent refit on the reported split
        m = LogisticRegression(C=C, max_iter=1000, random_state=0).fit(x[res.train_idx], y[res.train_idx])
        assert res.val_scores[C] == pytest.approx((m.predict(x[res.val_idx]) == y[res.val_idx]).mean())
    assert res.val_scores[res.best_C] == max(res.val_scores.values())
    final = LogisticRegression(C=res.best_C, max_iter=1000, random_state=0).fit(x, y)
    assert np.allclose(res.test_probs, final.predict_proba(xt), atol=1e-6)
    assert (res.test_predictions == yt).mean() > 0.8


def test_linear_probe_choice_cannot_depend_on_the_test_set():
    x, y, xt, _ = _probe_data(1)
    a = M.linear_probe(x, y, xt, 3, Cs=(1e-3, 0.1, 10.0))
    # a completely different test set (even adversarial noise) leaves C and validation scores unchanged
    b = M.linear_probe(x, y, np.random.default_rng(5).normal(size=(7, 10)) * 100, 3, Cs=(1e-3, 0.1, 10.0))
    assert a.best_C == b.best_C and a.val_scores == b.val_scores
