"""A backbone family's message about its weights names the flag the user typed them with:
`--image-pretrained` / `--text-pretrained` on train, eval and features extract, and
`--teacher-pretrained` for a --teacher-model given as towers (before, every family said
`--pretrained`, a flag no command has). One line, exit code 2, for every family here."""
from __future__ import annotations

import pytest
from train_helpers import invoke_cli, run_cli

import vlkd_core
from vlkd_core.errors import UsageError
from vlkd_core.sdk import pretrained_flag

MINILM = "hf:sentence-transformers/all-MiniLM-L6-v2"  # the packaged copy, offline
# (family spec, side, a weights value the family refuses)
REFUSED = [("toy:tiny", "image", "missing.pt"), ("timm:tf_efficientnet_lite0", "image", "missing.pt"),
           ("timm:tf_efficientnet_lite0", "image", "not-a-tag"), ("torchvision:resnet18", "image", "missing.pt"),
           (MINILM, "text", "missing.pt"), ("openclip:RN50", "text", "not-a-tag")]


def test_outside_a_build_the_flag_is_the_generic_name():
    assert pretrained_flag() == "--pretrained"


@pytest.mark.parametrize("spec, side, weights", REFUSED, ids=[f"{s}-{w}" for s, _, w in REFUSED])
def test_build_backbone_names_the_side_flag(spec, side, weights, tmp_path):
    with pytest.raises(UsageError) as info:
        vlkd_core.build_backbone(spec, side, str(tmp_path / weights) if weights.endswith(".pt") else weights)
    message = str(info.value)
    assert message.startswith(f"--{side}-pretrained") and "\n" not in message, message
    assert pretrained_flag() == "--pretrained"  # the build's flag does not outlive it


@pytest.mark.slow
@pytest.mark.parametrize("spec, side, weights", REFUSED[1:], ids=[f"{s}-{w}" for s, _, w in REFUSED[1:]])
def test_vlkd_eval_says_the_flag_in_one_line(spec, side, weights, tmp_path):
    image = ["--image", spec, "--image-pretrained", weights] if side == "image" else ["--image", "toy:tiny"]
    text = ["--text", spec, "--text-pretrained", weights] if side == "text" else []
    # open_clip logs before it raises: a process of its own shows that (pytest captures logging)
    cli = run_cli if spec.startswith("openclip:") else invoke_cli
    result = cli(["eval", *image, *text, "--eval", "retrieval:dataset=shapes,dataset.length=8"], cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: --{side}-pretrained"), result.stderr


@pytest.mark.slow
def test_a_teacher_models_towers_say_teacher_pretrained(tmp_path):
    result = invoke_cli(["train", "--teacher-model", f"timm:tf_efficientnet_lite0+{MINILM}",
                         "--teacher-pretrained", "missing.pt+missing.pt", "--data-option", "length=8",
                         "--max-steps", "1", "--no-progress", "--output-dir", str(tmp_path)], cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: --teacher-pretrained: weights file"), result.stderr
