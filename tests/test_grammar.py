"""The small grammars (vlkd_core._host.grammar): each parse has a format inverse, names keep their
underscores, and every malformed text is a one-line UsageError naming the flag."""
import pytest

from vlkd_core.errors import UsageError
from vlkd_core._host import grammar as g


@pytest.mark.parametrize("spec", ["openclip:RN50", "hf:org/model_x", "openclip:hf-hub:org/repo",
                                  "my_family:my_model"])
def test_backbone_spec_round_trip(spec):
    assert str(g.parse_backbone_spec(spec)) == spec
    assert g.parse_backbone_spec(str(g.parse_backbone_spec(spec))) == g.parse_backbone_spec(spec)


@pytest.mark.parametrize("text", ["infonce", "infonce,simreg:0.5", "my_loss:2,other-loss:0.25"])
def test_weighted_names_round_trip(text):
    items = g.parse_weighted_names(text)
    assert g.parse_weighted_names(g.format_weighted_names(items)) == items
    assert [n for n, _ in items] == [p.split(":")[0] for p in text.split(",")]  # names as written


@pytest.mark.parametrize("options", [{"image_size": 64, "name": "x"}, {"k": [1, 5], "flag": True},
                                     {"text": "a,b", "num": "12"}, {"nested": {"a": 1}, "none": None}])
def test_options_round_trip(options):
    assert g.parse_options(g.format_options(options), "--x") == options


def test_loss_options_keep_underscored_loss_names():
    parsed = g.parse_loss_options(["my_loss.queue-size=3", "my_loss.temperature=0.1", "seed.queue_size=8"])
    assert parsed == {"my_loss": {"queue_size": 3, "temperature": 0.1}, "seed": {"queue_size": 8}}
    assert g.parse_loss_options(g.format_loss_options(parsed)) == parsed


@pytest.mark.parametrize("spec", ["knn", "knn:k=[1,5],prefix=x", 'zeroshot:dataset=shapes,dataset.size=16,dataset.note="a,b"',
                                  "linear-probe:dataset.label_by=colour,max_samples=8"])
def test_eval_spec_round_trip(spec):
    name, options = g.parse_eval_spec(spec)
    assert g.parse_eval_spec(g.format_eval_spec(name, options)) == (name, options)


def test_eval_spec_nests_dotted_keys():
    assert g.parse_eval_spec("knn:k=[1,5],dataset.size=16") == ("knn", {"k": [1, 5], "dataset_options": {"size": 16}})


def test_unlock_round_trip_and_join():
    parsed = g.parse_unlock(["image:layer4*,!*bn*", "text:encoder.layer.5*", "image:fc"])
    assert parsed == {"image": "layer4*,!*bn*,fc", "text": "encoder.layer.5*"}
    assert g.parse_unlock(g.format_unlock(parsed)) == parsed


@pytest.mark.parametrize("call, flag", [
    (lambda: g.parse_backbone_spec("resnet18", flag="--image"), "--image"),
    (lambda: g.parse_weighted_names("infonce:x"), "--loss"),
    (lambda: g.parse_weighted_names("infonce,infonce:2"), "--loss"),
    (lambda: g.parse_options(["size"], "--data-option"), "--data-option"),
    (lambda: g.parse_loss_options(["queue_size=3"]), "--loss-option"),
    (lambda: g.parse_eval_spec("knn:k"), "--eval"),
    (lambda: g.parse_unlock(["layer4*"]), "--unlock"),
])
def test_malformed_text_is_a_one_line_error_naming_the_flag(call, flag):
    with pytest.raises(UsageError) as info:
        call()
    assert flag in str(info.value) and "\n" not in str(info.value)
