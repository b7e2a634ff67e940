"""ProtoCLIP under torch.distributed (2 gloo CPU processes, a real Trainer each): every rank
receives the same episode features, in episode order, equal to one process's encoding of that
episode, and ends every episode start with bit-identical prototypes and assignments."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from vlkd_core.sdk import run_local_processes
from vlkd_core.training.episodes import episode_for
from vlkd_core.training.runtime import Runtime
from vlkd_core.training.trainer import Trainer

sys.path.insert(0, str(Path(__file__).parent))  # spawned ranks import the worker by name
import protoclip_dist_worker as worker  # noqa: E402
from protoclip_job import config  # noqa: E402


pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

@pytest.mark.distributed
def test_two_ranks_share_prototypes_and_assignments(tmp_path):
    ranks = run_local_processes(worker.run, 2, str(tmp_path))
    assert [len(r) for r in ranks] == [2, 2]  # one record per episode (epoch) on each rank
    for a, b in zip(*ranks):
        for key, value in a.items():
            assert (torch.equal(value, b[key]) if torch.is_tensor(value) else value == b[key]), key
        assert torch.equal(a["sample_index"], a["indices"]) and len(a["indices"]) == 128
        assert int((torch.bincount(a["image_labels"], minlength=6) > 0).sum()) > 1  # a real clustering
    assert not torch.equal(ranks[0][0]["image_labels"], ranks[0][1]["image_labels"])  # per episode
    # the gathered features are the episode in order: one process encodes the same rows
    single = Trainer(config(tmp_path, "single", epochs=2, episode_size=128), Runtime())
    single.sampler.set_epoch(0)
    episode = episode_for(single)
    assert torch.equal(episode.indices, ranks[0][0]["indices"])
    assert torch.allclose(episode.features("image"), ranks[0][0]["image"], atol=1e-5)
    assert torch.allclose(episode.features("text"), ranks[1][0]["text"], atol=1e-5)
