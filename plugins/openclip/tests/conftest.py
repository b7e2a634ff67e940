"""A tiny OpenCLIP config registered with open_clip.add_model_config (no downloads)."""
import json

import pytest
import torch

torch.set_num_threads(1)

TINY = "vlkd-tiny-clip"
TINY_CFG = {"embed_dim": 16,
            "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
            "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    import open_clip
    path = tmp_path_factory.mktemp("openclip") / f"{TINY}.json"
    path.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(str(path))
    return TINY


@pytest.fixture(scope="session")
def tiny_cfg() -> dict:
    return json.loads(json.dumps(TINY_CFG))
