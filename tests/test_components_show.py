"""`vlkd components show`: docstrings as plain text (no reST markup) and every option, including
those a class inherits from its base through ``**options``."""
from __future__ import annotations

import inspect
import json
import re

from typer.testing import CliRunner

from vlkd_cli.app import app
from vlkd_core._host.describe import options, plain_text

runner = CliRunner()
MARKUP = re.compile(r"``|:\w+:`|\*\*")


def test_plain_text_strips_roles_and_literals_and_keeps_paragraphs():
    doc = """First line of a paragraph with :class:`BaseEvaluator`, :func:`~pkg.mod.build` and
    :meth:`the title <pkg.Class.method>`, a ``literal [B, D]`` and **strong** words.

    Second paragraph:

    - an item
    - another item

    name:      an aligned row
    other:     another row

    Example::

        build(x=1)
    """
    assert plain_text(doc) == (
        "First line of a paragraph with BaseEvaluator, build and the title, a literal [B, D] "
        "and strong words.\n\n"
        "Second paragraph:\n\n"
        "- an item\n- another item\n\n"
        "name:      an aligned row\nother:     another row\n\n"
        "Example:\n\n"
        "    build(x=1)")


def test_options_follow_kwargs_forwarding_up_the_mro():
    class Base:
        def __init__(self, dataset: str | None = None, split: str = "test", **unknown):
            pass

    class Child(Base):
        def __init__(self, ks: int = 5, split: str = "val", **options):
            super().__init__(split=split, **options)

    class Closed(Base):
        def __init__(self, ks: int = 5):  # forwards nothing: the base's options are not its own
            super().__init__()

    found = {o.name: (o.default, o.declared_by) for o in options(Child)}
    assert found == {"ks": (5, "Child"), "split": ("val", "Child"), "dataset": (None, "Base")}
    assert [o.name for o in options(Closed)] == ["ks"]
    assert [o.name for o in options(lambda a, b=2, *rest, c=3, **kw: None)] == ["a", "b", "c"]
    assert options(lambda a, b=2: None)[0].required


def test_show_evaluator_is_plain_text_with_inherited_options():
    from vlkd_core import get_component
    factory = get_component("evaluators", "zeroshot").resolve()
    assert MARKUP.search(inspect.getdoc(factory))  # the raw docstring is reST ...
    table = runner.invoke(app, ["components", "show", "evaluator", "zeroshot"], terminal_width=200)
    assert table.exit_code == 0, table.output
    assert not MARKUP.search(table.output), table.output  # ... the terminal gets plain text
    assert "BaseEvaluator's" in table.output and "classnames" in table.output
    rows = {line.split("│")[1].strip(): line for line in table.output.splitlines()
            if line.count("│") >= 3}
    for option, default in [("dataset", "None"), ("split", "'test'"), ("max_samples", "None"),
                            ("classnames", "None")]:
        assert option in rows, table.output
        assert default in rows[option]
    assert "BaseEvaluator" in rows["split"] and "ZeroShotEvaluator" in rows["classnames"]

    info = json.loads(runner.invoke(app, ["components", "show", "evaluator", "zeroshot", "--json"]).stdout)
    assert info["options"]["split"] == "test" and info["options"]["batch_size"] == 64
    assert {"dataset", "max_samples", "templates"} <= set(info["options"])
    assert info["declared_by"]["max_samples"] == "BaseEvaluator"
    assert not MARKUP.search(info["description"])


def test_show_keeps_required_options_and_escapes_brackets():
    info = json.loads(runner.invoke(app, ["components", "show", "head", "mlp", "--json"]).stdout)
    assert set(info["required"]) == {"in_dim", "out_dim"} and info["options"]["layers"] == 2
    table = runner.invoke(app, ["components", "show", "dataset", "csv"], terminal_width=200)
    assert table.exit_code == 0 and "{split}" in table.output and "``" not in table.output
