"""Tests for the {{ cookiecutter.kind }} '{{ cookiecutter.component_name }}': vlkd's contract kit plus
a check that the installed entry point registers it."""
import vlkd_core
from vlkd_core import testing


def test_registered_through_entry_point():
    vlkd_core.reset_plugin_manager()
    info = vlkd_core.get_plugin_manager().plugins["{{ cookiecutter.plugin_name }}"]
    assert info.status == "ok", info.error
    names = [c.name for c in vlkd_core.list_components("{{ cookiecutter.kind }}")]
    assert "{{ cookiecutter.component_name }}" in names

{% if cookiecutter.kind == 'loss' %}
def test_contract():
    testing.check_loss(lambda: vlkd_core.build_loss("{{ cookiecutter.component_name }}"))


def test_value_matches_formula():
    import torch
    s, t = torch.randn(4, 8), torch.randn(4, 8)
    expected = torch.stack([1 - (a @ b) / (a.norm() * b.norm()) for a, b in zip(s, t)]).mean()
    assert torch.allclose(vlkd_core.build_loss("{{ cookiecutter.component_name }}")(s, t), expected, atol=1e-6)
{% elif cookiecutter.kind == 'backbone' %}
def test_contract_both_modalities():
    for modality in ("image", "text"):
        tower = vlkd_core.build_backbone("{{ cookiecutter.component_name }}:tiny", modality=modality)
        testing.check_backbone(tower)


def test_loads_local_weights(tmp_path):
    import torch
    tower = vlkd_core.build_backbone("{{ cookiecutter.component_name }}:tiny")
    torch.save(tower.state_dict(), tmp_path / "w.pt")
    again = vlkd_core.build_backbone("{{ cookiecutter.component_name }}:tiny", pretrained=str(tmp_path / "w.pt"))
    for a, b in zip(tower.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
{% elif cookiecutter.kind == 'head' %}
def test_contract():
    testing.check_head(lambda: vlkd_core.build_head("{{ cookiecutter.component_name }}", in_dim=16, out_dim=8), 16, 8)
{% elif cookiecutter.kind == 'dataset' %}
def test_contract():
    testing.check_dataset(vlkd_core.build_dataset("{{ cookiecutter.component_name }}"))
{% elif cookiecutter.kind == 'evaluator' %}
def test_contract():
    model = testing.toy_dual_encoder()
    data = vlkd_core.build_dataset("shapes", split="test", size=16)
    metrics = testing.check_evaluator(vlkd_core.build_evaluator("{{ cookiecutter.component_name }}"), model, dataset=data)
    assert -1.0 <= metrics["pair_cosine"] <= 1.0
{% elif cookiecutter.kind == 'recipe' %}
def test_contract():
    testing.check_recipe("{{ cookiecutter.component_name }}")


def test_named_recipe_sets_its_values():
    from vlkd_core.training import TrainConfig
    cfg = TrainConfig.create({"recipe": "{{ cookiecutter.component_name }}", "image": "toy:tiny", "text": "toy:tiny"})
    assert cfg.image_options == {"image_size": 32} and cfg.batch_size == 32
{% elif cookiecutter.kind == 'optimizer' %}
def test_contract():
    # the engine's groups kept, resume from a saved state exact, and per_parameter honest
    testing.check_optimizer("{{ cookiecutter.component_name }}", {"betas": [0.8, 0.9]})


def test_one_step_matches_the_formula():
    import torch
    from vlkd_core.training.optim import build_optimizer
    param = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    param.grad = torch.tensor([0.5, 0.5, -1.0])
    optimizer = build_optimizer("{{ cookiecutter.component_name }}", {}, [{"params": [param], "lr": 0.1, "weight_decay": 0.5}])
    optimizer.step()
    # p * (1 - lr * wd) - lr * sign(0.9 * 0 + 0.1 * g)
    assert torch.allclose(param.detach(), torch.tensor([1.0, -2.0, 3.0]) * 0.95 - 0.1 * torch.tensor([1.0, 1.0, -1.0]))
{% elif cookiecutter.kind == 'scheduler' %}
def test_contract():
    testing.check_scheduler("{{ cookiecutter.component_name }}", {"scale": 0.5})


def test_rates_follow_the_formula():
    import torch
    from vlkd_core.training.optim import build_scheduler
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler("{{ cookiecutter.component_name }}", {}, optimizer, warmup_steps=4, total_steps=16)
    rates = []
    for _ in range(16):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[:4] == [0.25, 0.5, 0.75, 1.0] and abs(rates[15] - (4 / 16) ** 0.5) < 1e-12
{% elif cookiecutter.kind == 'export-format' %}
def test_a_trained_run_is_exported(tmp_path):
    import numpy as np
    import torch
    from vlkd_core.training import TrainConfig, train
    train(TrainConfig(image="toy:tiny", text="toy:tiny", image_options={"image_size": 32}, teacher="none",
                      loss="infonce", data="shapes", data_options={"size": 32, "length": 16}, batch_size=8,
                      epochs=1, max_steps=1, warmup_steps=0, progress=False, eval=[],
                      output_dir=str(tmp_path), name="run"))
    out = vlkd_core.export(tmp_path / "run", "{{ cookiecutter.component_name }}", tmp_path / "out")
    weights = np.load(out / "weights.npz")
    state = vlkd_core.load(tmp_path / "run").model.state_dict()
    assert set(weights.files) == {k for k, v in state.items() if v.is_floating_point()}
    for key in weights.files:
        assert torch.equal(torch.from_numpy(weights[key]), state[key].float())
{% endif %}
