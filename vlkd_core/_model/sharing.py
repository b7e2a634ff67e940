"""One expensive object for the towers of one composition.

A family whose image and text towers are two halves of one model (OpenCLIP) builds that model
once when a run asks for both: :func:`shared_build` gives the object ``make()`` built for ``key``
earlier in the same composition (the two towers of a run, so also ``vlkd.load``, and a
``--teacher-model`` given as towers), and outside one simply calls ``make()``. The scope ends
with the composition: nothing stays in memory after it, and two runs never share an object. What
is shared is the family's to hand out (e.g. each half of the model to one tower only)."""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_SCOPE: contextvars.ContextVar[dict[Hashable, Any] | None] = contextvars.ContextVar("vlkd_shared_builds", default=None)


@contextlib.contextmanager
def sharing() -> Iterator[None]:
    """A composition: objects built through :func:`shared_build` inside it are dropped when it
    ends (a nested one is part of the outer one)."""
    if _SCOPE.get() is not None:
        yield
        return
    token = _SCOPE.set({})
    try:
        yield
    finally:
        _SCOPE.reset(token)


def shared_build(key: Hashable, make: Callable[[], T]) -> T:
    """``make()``'s object for ``key``, built once per composition (every time outside one).
    Put your family's name in ``key`` and everything that changes what ``make`` builds."""
    scope = _SCOPE.get()
    if scope is None:
        return make()
    if key not in scope:
        scope[key] = make()
    return scope[key]
