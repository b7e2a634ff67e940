"""What a tower may offer beyond the Backbone contract, each an optional Protocol.

The engine asks ``isinstance(tower, Ability)`` and uses the ability when it is there; a tower
without it gets the documented fallback (or a one-line error naming the flag that needs it).
None of these needs inheritance: a tower has the attribute or method, or it does not.

| ability             | member                                | used by                                    |
|---------------------|---------------------------------------|--------------------------------------------|
| ``HasImageSpec``    | ``image_spec: ImageSpec``             | the core's transforms and ``--augment``, the feature store, paired teacher views; without it the tower's own ``preprocess`` is used |
| ``LocksItself``     | ``lock_tower()``                      | ``--lock-*`` / a teacher role: the family's own lock (OpenCLIP's LiT lock), else every parameter frozen |
| ``GradCheckpointing`` | ``set_grad_checkpointing(enable)``  | ``--grad-checkpointing`` (refused without it) |
| ``LayerDepth``      | ``num_layers``, ``layer_id(name)``    | ``--layer-decay`` (refused without it)     |
| ``NamesBlocks``     | ``blocks() -> list[str]``             | ``--inherit-layers`` (refused without it)  |
| ``TextContext``     | ``context_length: int``               | what ``vlkd train`` says at start          |
| ``TrimsPadding``    | ``trims_padding: bool``               | the same; training tokens stop after the longest caption |
| ``ReportsLogitScale`` | ``logit_scale: float``              | a ``--teacher-model`` given as towers: its similarities' scale |
| ``TakesPrompts``    | ``add_prompt(tokens, phrase)``        | ``--text-option prompt_tokens=N`` (CoOp)   |
| ``ExportsAs``       | ``exports_as(format) -> part, None or why not`` | export formats of a family (``vlkd export --format``): what the format writes of this tower; without it the tower fits only tower-agnostic formats (safetensors, onnx) |
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class HasImageSpec(Protocol):
    image_spec: Any  # vlkd_core._model.images.ImageSpec


@runtime_checkable
class LocksItself(Protocol):
    def lock_tower(self) -> None: ...


@runtime_checkable
class GradCheckpointing(Protocol):
    def set_grad_checkpointing(self, enable: bool = True) -> None: ...


@runtime_checkable
class LayerDepth(Protocol):
    num_layers: int | None

    def layer_id(self, name: str) -> int: ...


@runtime_checkable
class NamesBlocks(Protocol):
    def blocks(self) -> list[str]: ...


@runtime_checkable
class TextContext(Protocol):
    context_length: int


@runtime_checkable
class TrimsPadding(Protocol):
    trims_padding: bool


@runtime_checkable
class ReportsLogitScale(Protocol):
    logit_scale: float


@runtime_checkable
class TakesPrompts(Protocol):
    def add_prompt(self, tokens: int, phrase: str | None = None) -> None: ...


@runtime_checkable
class ExportsAs(Protocol):
    """A tower that an export format of its family can write. ``exports_as(format)`` returns
    what that format needs of the tower (its own object: the wrapped library module, the model
    and pooler; the tower itself is fine), None when the tower has no form in that format, or a
    string saying in a few words why this tower cannot be written in it (e.g. learnable
    prompts). Formats read it through :func:`vlkd_core.exports.export_part`."""

    def exports_as(self, format: str) -> Any: ...
