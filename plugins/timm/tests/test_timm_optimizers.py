"""timm's LAMB and Lion as vlkd optimizers: the contract kit (engine's groups kept, exact resume,
Lion honest about per_parameter) and LAMB refused under --optimizer-in-backward, since it clips
the global gradient norm."""
import pytest

from vlkd_core import UsageError, testing
from vlkd_core.training import TrainConfig
from vlkd_core.training.optim import check_optimization


@pytest.mark.parametrize("name, options", [("lion", {"betas": [0.95, 0.98]}), ("lamb", {"max_grad_norm": 2.0})])
def test_contract(name, options):
    testing.check_optimizer(name, options)


def test_lamb_is_refused_under_optimizer_in_backward_and_lion_is_not():
    check_optimization(TrainConfig(optimizer="lion", optimizer_in_backward=True, grad_clip=0.0))
    with pytest.raises(UsageError, match="optimizer 'lamb' does not declare per_parameter"):
        check_optimization(TrainConfig(optimizer="lamb", optimizer_in_backward=True, grad_clip=0.0))
