"""Which flag gave the weights of the tower being built, so a backbone family's error about them
names what the user typed: ``--image-pretrained`` / ``--text-pretrained`` (train, eval, features
extract) or ``--teacher-pretrained`` (a ``--teacher-model`` given as towers)."""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

_FLAG: ContextVar[str | None] = ContextVar("vlkd_pretrained_flag", default=None)


@contextmanager
def pretrained_named_by(flag: str, keep_outer: bool = False) -> Iterator[None]:
    """Towers built inside name their weights ``flag`` (``keep_outer``: unless a caller further
    out already named them, as the teacher model does around its towers' builds)."""
    token = None if keep_outer and _FLAG.get() else _FLAG.set(flag)
    try:
        yield
    finally:
        if token is not None:
            _FLAG.reset(token)


def pretrained_flag() -> str:
    """The flag that gave the weights of the tower being built (``--image-pretrained``, ...):
    what a backbone family's message about its ``pretrained`` argument names."""
    return _FLAG.get() or "--pretrained"
