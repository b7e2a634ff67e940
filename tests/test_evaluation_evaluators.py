"""Every builtin evaluator through the contract kit on the toy model and the shapes set, plus
checks that the evaluators compute what their metric functions say."""
import numpy as np
import pytest
import torch

import vlkd_core
from vlkd_core import testing
from vlkd_core.errors import UsageError
from vlkd_core.evaluation import metrics as M

SHAPES = {"size": 16, "length": 40}


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return testing.toy_dual_encoder()


@pytest.fixture(scope="module")
def data():
    return vlkd_core.build_dataset("shapes", split="test", **SHAPES)


def test_all_builtin_evaluators_are_registered():
    vlkd_core.reset_plugin_manager()
    names = {c.name for c in vlkd_core.list_components("evaluators")}
    assert {"zeroshot", "retrieval", "linear-probe", "knn", "clustering", "sts", "word-similarity"} <= names


def test_toy_dual_encoder_is_deterministic_per_seed():
    a, b, c = testing.toy_dual_encoder(seed=0), testing.toy_dual_encoder(seed=0), testing.toy_dual_encoder(seed=1)
    assert torch.equal(a.encode_texts(["a red circle"]), b.encode_texts(["a red circle"]))
    assert not torch.equal(a.encode_texts(["a red circle"]), c.encode_texts(["a red circle"]))


def test_zeroshot_contract_and_value(model, data):
    ev = vlkd_core.build_evaluator("zeroshot")
    metrics = testing.check_evaluator(ev, model, dataset=data)
    assert set(metrics) == {"zeroshot/top1", "zeroshot/top5", "zeroshot/mean_per_class_recall"}
    # recompute from the model directly
    prompts = [t.format(c) for c in data.classnames for t in data.templates]
    w = M.zeroshot_weights(model.encode_texts(prompts).view(len(data.classnames), len(data.templates), -1))
    items = [data[i] for i in range(len(data))]
    scores = model.encode_images([it["image"] for it in items]) @ w.T
    labels = torch.tensor([it["label"] for it in items])
    assert metrics["zeroshot/top1"] == pytest.approx((scores.argmax(1) == labels).double().mean().item())
    assert len(ev.artifacts["per_class"]) == len(data.classnames)
    assert ev.artifacts["predictions"] == scores.argmax(1).tolist()


def test_zeroshot_from_options_and_prefix(model):
    ev = vlkd_core.build_evaluator("zeroshot", dataset="shapes", dataset_options=SHAPES,
                                   max_samples=12, prefix="zs-shapes")
    metrics = ev.evaluate(model)
    assert set(metrics) == {"zs-shapes/top1", "zs-shapes/top5", "zs-shapes/mean_per_class_recall"}
    assert len(ev.artifacts["labels"]) == 12


def test_evaluator_without_dataset_is_a_usage_error(model):
    with pytest.raises(UsageError, match="dataset"):
        vlkd_core.build_evaluator("zeroshot").evaluate(model)
    with pytest.raises(UsageError, match="no option"):
        vlkd_core.build_evaluator("zeroshot", datset="shapes")


def test_retrieval_contract_and_value(model, data):
    ev = vlkd_core.build_evaluator("retrieval", examples=3)
    metrics = testing.check_evaluator(ev, model, dataset=data)
    items = [data[i] for i in range(len(data))]
    img = model.encode_images([it["image"] for it in items])
    txt = model.encode_texts([it["text"] for it in items])
    sim = img @ txt.T
    assert metrics["retrieval/image_to_text_R@1"] == pytest.approx((sim.argmax(1) == torch.arange(40)).double().mean().item())
    assert metrics["retrieval/text_to_image_R@5"] == pytest.approx(
        np.mean([j in sim[:, j].topk(5).indices.tolist() for j in range(40)]))
    assert len(ev.artifacts["examples"]) == 3 and len(ev.artifacts["examples"][0]["retrieved"]) == 10


def test_retrieval_several_captions_per_image(model, data):
    class TwoCaptions(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            it = data[i]
            return {"image": it["image"], "captions": [it["text"], f"a {it['shape']}"]}

    ev = vlkd_core.build_evaluator("retrieval")
    metrics = testing.check_evaluator(ev, model, dataset=TwoCaptions())
    assert ev.artifacts["text_to_image"] == [i for i in range(10) for _ in range(2)]
    ds = TwoCaptions()
    img = model.encode_images([ds[i]["image"] for i in range(10)])
    txt = model.encode_texts(ev.artifacts["texts"])
    sim = img @ txt.T  # a hit at R@1: one of the image's two captions scores highest (ties count:
    own = sim.view(10, 10, 2)[torch.arange(10), torch.arange(10)].max(1).values  # "a circle" repeats)
    assert metrics["retrieval/image_to_text_R@1"] == pytest.approx((own >= sim.max(1).values).double().mean().item())


def test_linear_probe_contract_and_few_shot(model, data):
    ev = vlkd_core.build_evaluator("linear-probe", Cs=[0.1, 10.0], max_iter=200)
    metrics = testing.check_evaluator(ev, model, dataset=data)
    assert {"linear_probe/top1", "linear_probe/best_C", "linear_probe/val_top1"} <= set(metrics)
    assert metrics["linear_probe/best_C"] in (0.1, 10.0)
    few = vlkd_core.build_evaluator("linear-probe", Cs=[1.0], shots=2, seeds=[0, 1], max_iter=200)
    train = vlkd_core.build_dataset("shapes", split="train", **SHAPES)
    testing.check_evaluator(few, model, dataset=data, train_dataset=train)
    assert few.artifacts["probs"].shape == (2, len(data), len(data.classnames))
    assert [r["seed"] for r in few.artifacts["runs"]] == [0, 1]


def test_knn_contract_and_value(model, data):
    train = vlkd_core.build_dataset("shapes", split="train", **SHAPES)
    ev = vlkd_core.build_evaluator("knn", k=5, temperature=0.1)
    metrics = testing.check_evaluator(ev, model, dataset=data, train_dataset=train)
    tr = [train[i] for i in range(len(train))]
    te = [data[i] for i in range(len(data))]
    scores = M.knn_scores(model.encode_images([t["image"] for t in tr]), [t["label"] for t in tr],
                          model.encode_images([t["image"] for t in te]), len(data.classnames), 5, 0.1)
    labels = torch.tensor([t["label"] for t in te])
    assert metrics["knn/top1"] == pytest.approx((scores.argmax(1) == labels).double().mean().item())


def test_knn_and_probe_from_options_use_train_and_test_splits(model):
    ev = vlkd_core.build_evaluator("knn", dataset="shapes", dataset_options=SHAPES, k=3,
                                   max_samples=10, max_train_samples=15)
    ev.evaluate(model)
    assert len(ev.artifacts["labels"]) == 10


def test_clustering_contract(model, data):
    ev = vlkd_core.build_evaluator("clustering")
    metrics = testing.check_evaluator(ev, model, dataset=data)
    assert set(metrics) == {"clustering/nmi", "clustering/ami", "clustering/ari"}
    assert metrics["clustering/nmi"] == pytest.approx(M.clustering_agreement(ev.artifacts["labels"], ev.artifacts["assignments"])["nmi"])


def test_sts_contract_and_value(model, tmp_path):
    rows = [("a red circle", "a red circle", 5.0), ("a red circle", "a blue square", 1.0),
            ("a small green cross", "a green cross", 4.2), ("a photo", "a large purple diamond", 0.3),
            ("a yellow triangle", "a triangle", 3.5)]
    path = tmp_path / "sts.tsv"
    path.write_text("sentence1\tsentence2\tscore\n" + "".join(f"{a}\t{b}\t{s}\n" for a, b, s in rows))
    ev = vlkd_core.build_evaluator("sts", path=str(path))
    metrics = testing.check_evaluator(ev, model)
    cos = [(model.encode_texts([a]) @ model.encode_texts([b]).T).item() for a, b, _ in rows]
    assert metrics["sts/spearman"] == pytest.approx(M.spearman(cos, [s for *_, s in rows]), abs=1e-6)
    with pytest.raises(UsageError, match="path"):
        vlkd_core.build_evaluator("sts").evaluate(model)


def test_word_similarity_with_gensim_sets(model):
    pytest.importorskip("gensim")
    ev = vlkd_core.build_evaluator("word-similarity")
    metrics = testing.check_evaluator(ev, model)
    assert set(metrics) == {"word_similarity/wordsim353", "word_similarity/simlex999", "word_similarity/mean"}
    assert len(ev.artifacts["simlex999"]) == 999 and len(ev.artifacts["wordsim353"]) == 353
    one = vlkd_core.build_evaluator("word-similarity", sets="simlex999")  # a single name, as from the CLI
    assert set(one.evaluate(model)) == {"word_similarity/simlex999", "word_similarity/mean"}
    with pytest.raises(UsageError, match="unknown set"):
        vlkd_core.build_evaluator("word-similarity", sets=["men3000"])


def test_eval_spec_values_are_json_and_lists_keep_their_commas():
    from vlkd_core.training.evals import parse_eval_spec
    name, options = parse_eval_spec('knn:k=[1,5],dataset=shapes,dataset.size=16,dataset.note="a,b",prefix=x')
    assert name == "knn"
    assert options == {"k": [1, 5], "dataset": "shapes", "dataset_options": {"size": 16, "note": "a,b"},
                       "prefix": "x"}
    with pytest.raises(UsageError, match="'size' must look like key=value"):
        parse_eval_spec("knn:size")
