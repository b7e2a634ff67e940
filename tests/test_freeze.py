"""vlkd_core._model.freeze: locking, pattern unlock, eval-mode of locked parts, summaries."""
import io

import pytest
import torch
from rich.console import Console
from torch import nn

from vlkd_core.errors import UsageError
from vlkd_core._model.freeze import (apply_freeze, freeze_summary, keep_frozen_in_eval, parse_patterns,
                              print_freeze_summary, select_parameters)


def make_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5),
                         nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 2))


def trainable(module: nn.Module) -> set[str]:
    return {n for n, p in module.named_parameters() if p.requires_grad}


def test_parse_patterns_splits_include_and_exclude():
    parsed = parse_patterns(" layer4* , !*bn*,, fc ")
    assert parsed.include == ("layer4*", "fc")
    assert parsed.exclude == ("*bn*",)
    assert parsed.matches("layer4.0.conv1.weight")
    assert not parsed.matches("layer4.0.bn1.weight")
    assert parsed.matches("fc.bias")          # substring item
    assert not parsed.matches("layer3.0.conv1.weight")
    only_exclude = parse_patterns("!bn")
    assert only_exclude.matches("conv.weight") and not only_exclude.matches("bn.weight")
    with pytest.raises(UsageError):
        parse_patterns("!")


def test_lock_then_unlock_by_glob_with_exclusion():
    net = make_net()
    apply_freeze(net, lock=True, unlock="3.*,!3.1.*")
    assert trainable(net) == {"3.0.weight", "3.0.bias"}
    assert select_parameters(net, "*.bias,!3.*") == ["0.bias", "1.bias", "5.bias"]


def test_freeze_patterns_after_unlock_and_typo_is_an_error():
    net = make_net()
    apply_freeze(net, freeze="*bias")
    assert trainable(net) == {n for n, _ in net.named_parameters() if not n.endswith("bias")}
    with pytest.raises(UsageError, match="matches no parameter"):
        apply_freeze(make_net(), lock=True, unlock="layer9*")


def test_locked_parts_stay_in_eval_mode_after_train():
    net = make_net()
    apply_freeze(net, lock=True, unlock="5.*")  # only the final linear trains
    net.train()
    keep_frozen_in_eval(net)
    assert not net[1].training and not net[3].training and not net[0].training
    assert net[5].training
    # Dropout has no parameters: it is not "frozen", so it follows the trainable parent.
    assert net[2].training
    # running statistics of the locked BatchNorm do not move during a training forward
    before = net[1].running_mean.clone()
    net(torch.randn(2, 3, 6, 6)).sum().backward()
    assert torch.equal(before, net[1].running_mean)
    assert net[5].weight.grad is not None and net[0].weight.grad is None


def test_fully_locked_module_is_in_eval_and_unflagged_module_untouched():
    net = make_net()
    apply_freeze(net, lock=True)
    assert not net.training
    net.train()
    keep_frozen_in_eval(net)
    assert not any(m.training for m in net.modules())
    plain = make_net().train()
    keep_frozen_in_eval(plain)  # never frozen: nothing changes
    assert all(m.training for m in plain.modules())


def test_summary_counts_and_rich_table():
    net = make_net()
    apply_freeze(net, lock=True, unlock="5.*")
    counts = {n: p.numel() for n, p in net.named_parameters()}
    expected_trainable = counts["5.weight"] + counts["5.bias"]
    summary = freeze_summary(net)
    assert summary.trainable == expected_trainable
    assert summary.frozen == sum(counts.values()) - expected_trainable
    assert (summary.trainable_tensors, summary.frozen_tensors) == (2, len(counts) - 2)
    buf = io.StringIO()
    total = print_freeze_summary({"image": net, "text": nn.Linear(3, 2)},
                                 console=Console(file=buf, width=120))
    text = buf.getvalue()
    assert "image" in text and "text" in text and f"{expected_trainable:,}" in text
    assert total.trainable == expected_trainable + 8


def test_shared_parameters_counted_once():
    lin = nn.Linear(3, 3)
    tied = nn.Sequential(lin, lin)
    assert freeze_summary(tied).total == 12
