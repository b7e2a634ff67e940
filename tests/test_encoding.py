"""vlkd_core._model.encoding is the one encode path: `vlkd.load`, the evaluators, an episode, the
feature store and the training step each go through it (a spy on ``encoding.forward`` sees the
tower), and for the same images they give the same features."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from export_runs import TEXTS, images, train_run
from safetensors import safe_open
from safetensors.torch import save_file

import vlkd_core as vlkd
from vlkd_core._model import encoding
from vlkd_core.evaluation.features import encode_dataset
from vlkd_core.features import ExtractConfig, extract
from vlkd_core.training.config import TowerConfig
from vlkd_core.training.episodes import episode_for
from vlkd_core.training.restore import load_run
from vlkd_core.training.runtime import Runtime
from vlkd_core.training.trainer import Trainer

pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

DATA = {"size": 32, "length": 32}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    # a linear head on each tower, so the head is part of what must agree
    return train_run(tmp_path_factory.mktemp("runs"), "toy", image_head="linear", text_head="linear",
                     data_options=DATA)


@pytest.fixture
def forwards(monkeypatch):
    """The towers ``encoding.forward`` ran, in order (the real function still runs)."""
    seen = []
    real = encoding.forward

    def spy(tower, head, inputs, device=None):
        seen.append(tower)
        return real(tower, head, inputs, device)
    monkeypatch.setattr(encoding, "forward", spy)
    return seen


def _ran(seen: list, tower) -> bool:
    return any(t is tower for t in seen)


@pytest.fixture(scope="module")
def dataset():
    return vlkd.build_dataset("shapes", split="train", **DATA)


def _episode_trainer(run, tmp_path):
    """A Trainer of the run's config holding the run's weights (a fresh run folder)."""
    restored = load_run(run)
    cfg = restored.config
    cfg.output_dir, cfg.name = str(tmp_path), "episode"
    trainer = Trainer(cfg, Runtime())
    trainer.bundle.load_state_dict(restored.bundle.state_dict())
    trainer.sampler.set_epoch(0)
    return trainer


def test_load_evaluation_episode_and_store_agree_on_the_same_images(run, dataset, tmp_path, forwards):
    model = vlkd.load(run)
    pictures = [dataset[i]["image"] for i in range(len(dataset))]
    loaded = model.encode_image(pictures, batch_size=16, normalize=False)
    assert _ran(forwards, model.image_tower)

    forwards.clear()
    evaluated = encode_dataset(model.model, dataset, batch_size=16, show_progress=False, workers=0)
    assert _ran(forwards, model.image_tower)
    assert torch.equal(evaluated.image_features, F.normalize(loaded, dim=-1))  # same batches: same bits

    forwards.clear()
    trainer = _episode_trainer(run, tmp_path)
    episode = episode_for(trainer)
    rows = episode.indices
    assert sorted(rows.tolist()) == list(range(len(dataset)))
    assert torch.allclose(episode.features("image"), loaded[rows], atol=1e-6)  # other batches
    assert _ran(forwards, trainer.bundle.tower("image")) and _ran(forwards, trainer.bundle.tower("text"))
    tower_only = episode.features("image", head=False)

    forwards.clear()
    weights = tmp_path / "image-tower.safetensors"
    save_file({k: v.contiguous() for k, v in model.image_tower.state_dict().items()}, str(weights))
    extract(ExtractConfig(data="shapes", data_options=DATA, batch_size=16, out=str(tmp_path / "store"),
                          tower=TowerConfig("image", "toy:tiny", str(weights), {"image_size": 32}), progress=False))
    assert any(type(t) is type(model.image_tower) for t in forwards)
    with safe_open(str(tmp_path / "store" / "features-000000.safetensors"), framework="pt") as f:
        stored = torch.stack([f.get_tensor(str(i)) for i in rows.tolist()])  # the key rule: the index
    assert torch.allclose(stored, tower_only, atol=1e-6)
    with torch.no_grad():  # the store holds tower outputs: the run's head makes them its features
        assert torch.allclose(model.image_head(stored), loaded[rows], atol=1e-5)


def test_texts_agree_between_load_evaluation_and_the_training_step(run, forwards):
    model = vlkd.load(run)
    loaded = model.encode_text(TEXTS)
    assert _ran(forwards, model.text_tower)
    assert torch.equal(model.model.encode_texts(TEXTS), loaded.cpu())
    forwards.clear()
    bundle = load_run(run).bundle.eval()
    from vlkd_core.training.data import collate
    batch = collate([{"index": i, "key": str(i), "image": torch.zeros(3, 32, 32), "text": t, "label": -1}
                     for i, t in enumerate(TEXTS)])
    with torch.no_grad():
        step = bundle.step_parts(batch, torch.device("cpu")).get("text_features")
    assert _ran(forwards, bundle.tower("text"))
    assert torch.allclose(F.normalize(step, dim=-1), loaded, atol=1e-6)


def test_inputs_of_every_kind_give_the_same_features(run):
    model = vlkd.load(run)
    tower, head = model.image_tower, model.image_head
    pictures = images(5)
    transform = encoding.image_transform(tower)
    stacked = torch.stack([transform(p) for p in pictures])
    from_pil = encoding.encode_images(tower, head, pictures)
    assert torch.equal(encoding.encode_images(tower, head, stacked), from_pil)
    assert torch.equal(encoding.encode_images(tower, head, list(stacked)), from_pil)
    assert torch.allclose(encoding.encode_images(tower, head, pictures, batch_size=2), from_pil, atol=1e-6)
    one = encoding.encode_images(tower, head, pictures[0])
    assert torch.equal(one, encoding.encode_images(tower, head, pictures[:1]))
    assert torch.allclose(one, from_pil[:1], atol=1e-6)  # a batch of one: other kernels, last bits
    assert torch.equal(encoding.encode_texts(model.text_tower, model.text_head, TEXTS[0]),
                       encoding.encode_texts(model.text_tower, model.text_head, TEXTS[:1]))
    assert encoding.encode_images(tower, head, []).shape == (0, 0)


def test_eval_mode_and_no_autograd_each_module_keeps_its_own_mode(run):
    bundle = load_run(run).bundle
    bundle.train()
    tower = bundle.tower("image")
    tower.net[1].eval()  # one part in eval mode inside a training tower (a frozen norm layer)
    before = {name: m.training for name, m in bundle.named_modules()}
    seen = []
    hook = tower.register_forward_hook(lambda module, args, out: seen.append((module.training, torch.is_grad_enabled())))
    out = encoding.features(tower, bundle.head("image"), torch.zeros(2, 3, 32, 32))
    hook.remove()
    assert seen == [(False, False)]
    assert {name: m.training for name, m in bundle.named_modules()} == before  # train(True) would flip net.1
    assert not out.is_inference() and not out.requires_grad
    weight = torch.zeros(out.shape[1], 2, requires_grad=True)
    (out @ weight).sum().backward()  # an ordinary tensor: a probe may train on it
    assert weight.grad is not None
