"""Several training sources as one dataset: ``--data "csv:0.7,imagefolder:0.3"``.

Each source gets a share of every epoch proportional to its weight: with sources of sizes n_i and
weights w_i, an epoch holds N = Σ n_i samples of which round(N · w_i / Σ w) come from source i.
A source with more share than samples repeats them (each one the same number of times, ±1); one
with less takes a different window of its samples every epoch (``set_epoch``), so over epochs
it is all used. Indices are deterministic, so the engine's seeded, resumable sampler works on
the mixture unchanged.

Class labels are offset per source (source i's label y becomes y + the class count of the
sources before it), so UniCL's class positives never cross sources; a source without labels
keeps none (its rows are positives by caption only). Keys are prefixed with the source name,
so the locked-tower cache never confuses two sources' samples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from torch.utils.data import Dataset

from ..errors import UsageError
from .keys import sample_key


@dataclass
class Source:
    name: str
    weight: float
    dataset: Any
    label_offset: int = 0


def _class_count(name: str, dataset: Any) -> int:
    classnames = getattr(dataset, "classnames", None)
    return len(classnames) if classnames else 0


class MixtureDataset(Dataset):
    def __init__(self, sources: Sequence[Source]):
        if not sources:
            raise UsageError("--data: a mixture needs at least one source")
        offset = 0
        for source in sources:
            if not hasattr(source.dataset, "__len__") or not hasattr(source.dataset, "__getitem__"):
                raise UsageError(f"--data: source '{source.name}' streams without a length; a mixture "
                                 "takes sized datasets only")
            if len(source.dataset) == 0:
                raise UsageError(f"--data: source '{source.name}' is empty")
            if source.weight <= 0:
                raise UsageError(f"--data: source '{source.name}' has weight {source.weight:g}; weights must be > 0")
            source.label_offset = offset
            offset += _class_count(source.name, source.dataset)
        self.sources = list(sources)
        self.epoch = 0
        total, weights = sum(len(s.dataset) for s in sources), sum(s.weight for s in sources)
        self.shares = _shares([s.weight / weights for s in sources], total)
        self.starts = [sum(self.shares[:i]) for i in range(len(sources))]
        self.classnames = [n for s in sources for n in (getattr(s.dataset, "classnames", None) or [])]

    def __len__(self) -> int:
        return sum(self.shares)

    def set_epoch(self, epoch: int) -> None:
        """A down-sampled source moves its window, so every sample is used over epochs."""
        self.epoch = epoch

    def locate(self, index: int) -> tuple[Source, int]:
        """(the source of mixture row ``index``, the row within that source)."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        i = max(k for k, start in enumerate(self.starts) if start <= index)
        source, j, n = self.sources[i], index - self.starts[i], len(self.sources[i].dataset)
        share = self.shares[i]
        offset = (self.epoch * share) % n if share < n else 0
        return source, (offset + j) % n

    def __getitem__(self, index: int) -> dict | None:
        source, row = self.locate(index)
        item = source.dataset[row]
        if item is None:  # unreadable sample: the loader skips it
            return None
        item = dict(item)
        if item.get("label") is not None:
            label, classes = int(item["label"]), _class_count(source.name, source.dataset)
            if not 0 <= label < classes:
                raise UsageError(f"--data: source '{source.name}' gave label {label} but declares "
                                 f"{classes} classnames; a mixture needs each labelled source's "
                                 "classnames to keep its classes apart")
            item["label"] = label + source.label_offset
        item["key"] = f"{source.name}:{sample_key(item, row)}"
        return item


def _shares(fractions: list[float], total: int) -> list[int]:
    """Integer shares of ``total`` proportional to ``fractions`` (largest remainders), each >= 1."""
    raw = [f * total for f in fractions]
    shares = [max(1, int(r)) for r in raw]
    for i in sorted(range(len(raw)), key=lambda k: raw[k] - int(raw[k]), reverse=True):
        if sum(shares) >= total:
            break
        shares[i] += 1
    return shares
