"""As tests/conftest.py: one intra-op thread. The suite shares 2 cores, and forked training runs
(test_protoclip_train.py) must not inherit a live OpenMP thread team, which hangs a child."""
import torch

torch.set_num_threads(1)
