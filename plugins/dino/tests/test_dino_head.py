"""The `dino` head: architecture, fixed-norm prototypes, state_dict round trip, contract kit."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import vlkd_core
from vlkd_core.errors import UsageError
from vlkd_core.testing import check_head

torch.set_num_threads(1)


def test_registered_example_passes_the_contract_kit():
    example = dict(vlkd_core.get_component("heads", "dino").metadata["example"])
    check_head(lambda: vlkd_core.build_head("dino", **example), example["in_dim"], example["out_dim"])


def test_output_is_cosine_to_unit_prototypes():
    head = vlkd_core.build_head("dino", in_dim=8, out_dim=12, hidden_dim=16, bottleneck_dim=4)
    x = torch.randn(5, 8)
    v = head.last_layer.parametrizations.weight.original1.detach()
    # independent: MLP by hand, L2 norm, dot with row-normalised prototype directions
    h = x
    linears = [m for m in head.mlp if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(8, 16), (16, 16), (16, 4)]
    for i, lin in enumerate(linears):
        h = h @ lin.weight.T + lin.bias
        if i < len(linears) - 1:
            h = F.gelu(h)
    expected = (h / h.norm(dim=1, keepdim=True)) @ (v / v.norm(dim=1, keepdim=True)).T
    assert torch.allclose(head(x), expected, atol=1e-5)
    assert head(x).abs().max() <= 1 + 1e-5


def test_norm_last_layer_freezes_the_magnitude_at_one():
    head = vlkd_core.build_head("dino", in_dim=8, out_dim=12, hidden_dim=16, bottleneck_dim=4)
    g = head.last_layer.parametrizations.weight.original0
    assert torch.equal(g, torch.ones(12, 1)) and not g.requires_grad
    head(torch.randn(3, 8)).sum().backward()
    assert g.grad is None and head.last_layer.parametrizations.weight.original1.grad is not None
    free = vlkd_core.build_head("dino", in_dim=8, out_dim=12, hidden_dim=16, bottleneck_dim=4,
                                norm_last_layer=False)
    assert free.last_layer.parametrizations.weight.original0.requires_grad


def test_one_layer_head():
    head = vlkd_core.build_head("dino", in_dim=8, out_dim=6, bottleneck_dim=4, layers=1)
    assert len(head.mlp) == 1 and head(torch.randn(2, 8)).shape == (2, 6)
    with pytest.raises(UsageError):
        vlkd_core.build_head("dino", in_dim=8, out_dim=6, layers=0)


def test_state_dict_round_trip_keeps_weight_norm():
    a = vlkd_core.build_head("dino", in_dim=8, out_dim=12, hidden_dim=16, bottleneck_dim=4)
    torch.manual_seed(1)
    b = vlkd_core.build_head("dino", in_dim=8, out_dim=12, hidden_dim=16, bottleneck_dim=4)
    x = torch.randn(3, 8)
    assert not torch.allclose(a(x), b(x))
    b.load_state_dict(a.state_dict())
    assert torch.allclose(a(x), b(x)) and "last_layer.parametrizations.weight.original0" in a.state_dict()
    assert not b.last_layer.parametrizations.weight.original0.requires_grad
