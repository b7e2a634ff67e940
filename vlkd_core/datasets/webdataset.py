"""Image-text pairs streamed from webdataset ``.tar`` shards (an ``IterableDataset``).

    vlkd.build_dataset("webdataset", path="data/shard-{000000..000009}.tar")

Each sample is the group of tar members sharing a key: an image (``jpg``, ``jpeg``, ``png`` or
``webp``), a caption (``txt``) and optionally a class label (``cls``), as written by
``vlkd data to-webdataset`` or img2dataset. ``path`` is brace-expanded; several patterns may be
joined with ``::`` or given as a list. Local shards are checked to exist when the dataset is built.

Two ways through the data:

- epoch-based (default): every epoch reads each shard once, in an order shuffled by
  ``(seed, epoch)`` (call :meth:`WebDataset.set_epoch`), samples mixed by a ``shuffle`` buffer.
- ``resampled=True``: shards are drawn with replacement, forever; ``epoch_samples`` then says
  how many samples make an epoch (required).

Splitting across processes. Shards are the unit of work. In epoch-based mode the shuffled shard
list is split first by rank (``shards[rank::world_size]``) and then by DataLoader worker
(``[worker::num_workers]``), so every shard is read by exactly one worker of one rank. ``rank`` and
``world_size`` come from the options, else from the ``RANK``/``WORLD_SIZE`` environment set by
torchrun, else from an initialised ``torch.distributed`` (webdataset's ``pytorch_worker_info``).
Under DDP every rank must run the same number of steps, or the ranks still training wait forever
in a collective op. Two ways to guarantee it:

- ``epoch_samples=N``: each worker of each rank yields exactly ``ceil(N / (world_size *
  num_workers))`` samples, going round its own shards again (reshuffled) when they run out;
- ``resampled=True`` (with ``epoch_samples``), where each worker draws shards from its own seeded
  stream (seeded by ``seed``, epoch, rank and worker) and never runs out.

With ``epoch_samples`` in epoch-based mode every worker of every rank needs a shard (at least
``world_size * num_workers`` shards), else a UsageError. Without either option, ranks may see
different numbers of samples when the shards hold different counts: use that for single-process
runs and evaluation. A rank left with no shard at all raises a UsageError rather than hanging.

Bad data: an undecodable image, or a sample without image or caption, yields ``None`` (counted by
the collate function, see :mod:`vlkd_core.datasets.robust`) with a warning naming
``shard:key``, or raises :class:`~vlkd_core.errors.DataError` with ``strict=True``. An unreadable
or truncated shard is warned about and skipped (its readable samples are kept); if no shard
yields a sample the iteration stops with a DataError instead of spinning.
Samples: ``{"image": PIL RGB, "text": caption, "key": "<shard name>/<key>"[, "label": int]}``.
"""
from __future__ import annotations

import itertools
import math
import random
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError, UsageError
from .csv import substitute_split
from .robust import BadImageLog, DataWarning, describe_error, open_image
from .sampling import derive_seed

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
TEXT_EXT = "txt"
LABEL_EXT = "cls"


def is_local(url: str) -> bool:
    """A plain file path (not ``pipe:``, ``http://``, ``s3://``...)."""
    from ..safety import needs_command
    return "://" not in url and not needs_command(url)


def expand_shards(path: str | list[str]) -> list[str]:
    """Brace-expand (``{000..009}``), split on ``::``, and check local shards exist."""
    from webdataset.shardlists import expand_urls
    patterns = list(path) if isinstance(path, (list, tuple)) else [str(path)]
    urls = [str(Path(u).expanduser()) if is_local(u) else u
            for pattern in patterns for u in expand_urls(str(pattern))]
    if not urls:
        raise UsageError("webdataset: option 'path' names no shards")
    missing = [u for u in urls if is_local(u) and not Path(u).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more of {len(urls)})" if len(missing) > 1 else ""
        raise UsageError(f"webdataset: shard not found: {missing[0]}{more}")
    return urls


def worker_info(rank: int | None, world_size: int | None) -> tuple[int, int, int, int]:
    """``(rank, world_size, worker, num_workers)``: options override the environment."""
    from webdataset.utils import pytorch_worker_info
    env_rank, env_world, worker, workers = pytorch_worker_info()
    rank = env_rank if rank is None else rank
    world = env_world if world_size is None else world_size
    if world < 1 or not 0 <= rank < world:
        raise UsageError(f"webdataset: rank {rank} is not in range for world_size {world}")
    return rank, world, worker, workers


class WebDataset(torch.utils.data.IterableDataset):
    """Image-text pairs from webdataset shards.

    Options: ``path`` (brace pattern, ``::``-joined patterns or a list), ``resampled`` (draw
    shards with replacement), ``epoch_samples`` (samples per epoch over all ranks and workers;
    required when resampled, optional otherwise), ``shuffle`` (sample shuffle buffer size, 0 to
    keep shard order), ``seed``, ``strict`` (raise on bad samples), ``rank`` / ``world_size``
    (override the distributed environment), ``split`` (fills a ``{split}`` placeholder in
    ``path``, e.g. ``data/{split}-{0000..0009}.tar``; without one only ``train`` is accepted)."""

    def __init__(self, path: str | list[str], resampled: bool = False,
                 epoch_samples: int | None = None, shuffle: int = 1000, seed: int = 0,
                 strict: bool = False, rank: int | None = None, world_size: int | None = None,
                 split: str | None = None):
        self.split = split
        from ..safety import check_url_option
        # a pattern that runs a command (pipe:, remote schemes) must have been typed on the
        # command line with --allow-pipe (vlkd_core.safety): checked before anything is expanded
        for pattern in (list(path) if isinstance(path, (list, tuple)) else [path]):
            check_url_option(str(pattern), "webdataset: option path")
        self.urls = expand_shards(substitute_split(path, split, "webdataset"))
        # the URLs cleared to run a command, re-checked where a shard is opened (worker processes)
        self._command_urls = frozenset(u for u in self.urls if not is_local(u))
        if resampled and not epoch_samples:
            raise UsageError("webdataset: resampled=True streams forever; set epoch_samples "
                             "(samples per epoch)")
        if epoch_samples is not None and epoch_samples < 1:
            raise UsageError(f"webdataset: epoch_samples must be positive, not {epoch_samples}")
        if shuffle < 0:
            raise UsageError(f"webdataset: shuffle (buffer size) must be >= 0, not {shuffle}")
        self.resampled, self.epoch_samples, self.shuffle = resampled, epoch_samples, shuffle
        self.seed, self.strict, self.rank, self.world_size = seed, strict, rank, world_size
        self.epoch = 0
        self.bad_images = BadImageLog()
        if not resampled and world_size is not None and len(self.urls) < world_size:
            self._no_shard_error(len(self.urls), world_size)

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s shard order / random stream. With DataLoader workers this must be
        called before the loader's iterator is created (workers copy the dataset at start)."""
        self.epoch = epoch

    @staticmethod
    def _no_shard_error(shards: int, world: int):
        raise UsageError(f"webdataset: {shards} shard(s) cannot be split over {world} ranks "
                         f"(a rank without data would hang DDP); write more shards "
                         f"(`vlkd data to-webdataset --maxcount`) or use resampled=True")

    # -- shard streams -------------------------------------------------------------------------

    def shards_for(self, rank: int, world: int, worker: int, workers: int, rounds: int = 0) -> list[str]:
        """Epoch-based mode: the shards one worker of one rank reads in pass ``rounds``."""
        order = list(self.urls)
        random.Random(derive_seed(self.seed, "shards", self.epoch)).shuffle(order)
        mine = order[rank::world][worker::workers]
        if rounds:  # later passes of the same shards (epoch_samples larger than the shards)
            random.Random(derive_seed(self.seed, "pass", self.epoch, rank, worker, rounds)).shuffle(mine)
        return mine

    def _shard_stream(self, rank: int, world: int, worker: int, workers: int) -> Iterator[str]:
        if self.resampled:
            rng = random.Random(derive_seed(self.seed, "resample", self.epoch, rank, worker))
            while True:
                yield rng.choice(self.urls)
        passes = itertools.count() if self.epoch_samples else range(1)
        for rounds in passes:
            yield from self.shards_for(rank, world, worker, workers, rounds)

    def _raw_samples(self, shards: Iterable[str], pool: set[str]) -> Iterator[dict]:
        """Samples of each shard in turn. An endless stream (resampled, or cycling for
        epoch_samples) stops with a DataError once every shard of ``pool`` has come up empty
        in a row, instead of looping forever without yielding."""
        empty: set[str] = set()
        for url in shards:
            got = 0
            for sample in self._shard_samples(url):
                got += 1
                yield sample
            empty = set() if got else empty | {url}
            if empty >= pool and (self.resampled or self.epoch_samples):
                raise DataError(f"webdataset: no readable samples in any of {len(pool)} shard(s) "
                                f"(e.g. {url}); check the shards")

    def _shard_samples(self, url: str) -> Iterator[dict]:
        """The samples of one shard. Opens and closes the stream itself: webdataset's
        ``tarfile_samples`` leaves it for the garbage collector (a ResourceWarning per shard)."""
        from webdataset.gopen import gopen
        from webdataset.tariterators import group_by_keys, tar_file_expander
        handler = self._shard_handler(url)
        if not is_local(url) and url not in self._command_urls:  # never from a mutated url list
            raise UsageError(f"webdataset: refusing '{url}': not a shard cleared at construction")
        try:  # local shards are opened as files, never through a URL scheme handler
            stream = open(url, "rb") if is_local(url) else gopen(url)
        except Exception as exc:  # noqa: BLE001 -- the handler decides: warn and skip, or raise
            handler(exc)
            return
        try:
            files = tar_file_expander([{"url": url, "stream": stream}], handler=handler)
            yield from group_by_keys(files, handler=handler)
        finally:  # also runs when the consumer stops early (epoch_samples quota reached)
            stream.close()

    def _shard_handler(self, url: str):
        def handle(exc: Exception) -> bool:
            # webdataset appends (stream, url) to exc.args and " @ <stream>" to the message:
            # report only the original message
            if isinstance(exc, FileNotFoundError) or not exc.args:
                reason = describe_error(exc)
            else:
                reason = f"{type(exc).__name__}: {str(exc.args[0]).split(' @ ')[0]}"
            message = f"{url}: unreadable shard ({reason})"
            if self.strict:
                raise DataError(message) from exc
            warnings.warn(f"skipping the rest of {message}", DataWarning, stacklevel=2)
            return False  # stop reading this shard; the next one follows
        return handle

    # -- samples -------------------------------------------------------------------------------

    def shard_items(self, url: str) -> Iterator[dict | None]:
        """The decoded samples of one shard in file order (`vlkd features extract` reads whole
        shards, one output shard per input shard)."""
        return (self.decode(s) for s in self._shard_samples(url))

    def __iter__(self) -> Iterator[dict | None]:
        rank, world, worker, workers = worker_info(self.rank, self.world_size)
        if not self.resampled:
            if len(self.urls) < world:
                self._no_shard_error(len(self.urls), world)
            if len(self.urls) < world * workers:
                if self.epoch_samples:  # an idle worker would leave its rank short of batches
                    raise UsageError(f"webdataset: epoch_samples needs a shard for every worker, but "
                                     f"there are {len(self.urls)} shard(s) for {world} rank(s) x "
                                     f"{workers} worker(s); use fewer workers or more shards")
                warnings.warn(f"webdataset: {len(self.urls)} shard(s) for {world} rank(s) x "
                              f"{workers} worker(s): some workers get no shard and stay idle",
                              DataWarning, stacklevel=2)
        pool = set(self.urls) if self.resampled else set(self.shards_for(rank, world, worker, workers))
        if not pool:
            return  # an idle worker (warned above)
        quota = math.ceil(self.epoch_samples / (world * workers)) if self.epoch_samples else None
        samples: Iterator[dict] = self._raw_samples(self._shard_stream(rank, world, worker, workers), pool)
        if self.shuffle > 1:
            from webdataset import shuffle
            seed = derive_seed(self.seed, "buffer", self.epoch, rank, worker)
            samples = shuffle(self.shuffle, initial=min(self.shuffle, 100), seed=seed)(samples)
        yield from itertools.islice((self.decode(s) for s in samples), quota)

    def decode(self, raw: dict[str, Any]) -> dict | None:
        """A tar sample (``{"__key__", "__url__", ext: bytes}``) -> our sample dict, or ``None``
        for a bad one (recorded in ``bad_images``)."""
        url, key = str(raw.get("__url__", "?")), str(raw.get("__key__", "?"))
        name = f"{url}:{key}"
        ext = next((e for e in IMAGE_EXTS if e in raw), None)
        problem = None
        if ext is None:
            members = sorted(k for k in raw if not k.startswith("__"))
            problem = f"no image member ({'|'.join(IMAGE_EXTS)}); members: {members}"
        elif TEXT_EXT not in raw:
            problem = "no caption member (txt)"
        if problem is None:
            try:
                text = raw[TEXT_EXT].decode("utf-8").strip()
                label = int(raw[LABEL_EXT].decode("utf-8").strip()) if LABEL_EXT in raw else None
            except (UnicodeDecodeError, ValueError) as exc:
                problem = f"bad txt/cls member ({describe_error(exc)})"
            else:
                if not text:
                    problem = "empty caption"
        if problem is not None:
            if self.strict:
                raise DataError(f"{name}: {problem}")
            self.bad_images.record(name, problem)
            return None
        image = open_image(raw[ext], f"{name}.{ext}", strict=self.strict, log=self.bad_images)
        if image is None:
            return None
        sample: dict[str, Any] = {"image": image, "text": text, "key": f"{Path(url).name}/{key}"}
        if label is not None:
            sample["label"] = label
        return sample
