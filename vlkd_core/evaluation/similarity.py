"""Text-tower similarity benchmarks: sentence similarity (STS) and word similarity.

Both embed each item with ``model.encode_texts``, take the cosine of every pair and report the
Spearman correlation with the human scores.

``sts`` metrics: ``sts/spearman``, ``sts/pearson``; artifacts ``pairs`` (s1, s2, human, cosine).
``word-similarity`` metrics: ``word_similarity/<set>`` (Spearman) for each set, and
``word_similarity/mean``; artifacts ``<set>`` pairs like STS.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import DataError, UsageError
from .features import encode_texts
from .metrics import spearman

WORD_SETS = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}


def pair_cosines(model: Any, left: Sequence[str], right: Sequence[str], show_progress: bool = False) -> np.ndarray:
    """Cosine of each (left[i], right[i]) pair; every distinct string is encoded once."""
    vocab = sorted(set(left) | set(right))
    index = {s: i for i, s in enumerate(vocab)}
    feats = torch.nn.functional.normalize(encode_texts(model, vocab, show_progress=show_progress), dim=-1)
    a = feats[[index[s] for s in left]]
    b = feats[[index[s] for s in right]]
    return (a * b).sum(dim=1).numpy()


def read_pairs_tsv(path: str | Path, columns: Sequence[str | int] = (0, 1, 2), delimiter: str = "\t",
                   header: bool | None = None) -> list[tuple[str, str, float]]:
    """(text1, text2, score) triples from a delimited file. ``columns`` are header names or
    0-based indices; ``header`` None = there is a header iff a column is given by name. Lines
    starting with '#' are comments (gensim's word-similarity files)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"similarity data file not found: {path}")
    with path.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.reader((l for l in f if not l.startswith("#")), delimiter=delimiter,
                                      quoting=csv.QUOTE_NONE) if r]
    if header is None:
        header = any(isinstance(c, str) for c in columns)
    if header:
        names = [h.strip() for h in rows[0]]
        try:
            idx = [c if isinstance(c, int) else names.index(c) for c in columns]
        except ValueError as exc:
            raise UsageError(f"{path}: column missing from header {names}: {exc}") from None
        rows = rows[1:]
    else:
        idx = [int(c) for c in columns]
    out = []
    for n, row in enumerate(rows, start=2 if header else 1):
        try:
            out.append((row[idx[0]], row[idx[1]], float(row[idx[2]])))
        except (IndexError, ValueError):
            raise DataError(f"{path}: row {n} has no text pair and numeric score in columns {list(columns)}") from None
    if len(out) < 2:
        raise DataError(f"{path}: fewer than two scored pairs")
    return out


def _score(model: Any, pairs: list[tuple[str, str, float]], progress: bool) -> tuple[float, float, list]:
    cos = pair_cosines(model, [p[0] for p in pairs], [p[1] for p in pairs], progress)
    human = np.array([p[2] for p in pairs])
    pearson = float(np.corrcoef(cos, human)[0, 1]) if cos.std() > 0 else 0.0
    table = [(a, b, h, float(c)) for (a, b, h), c in zip(pairs, cos)]
    return spearman(cos, human), pearson, table


class STSEvaluator:
    """Sentence similarity from a TSV: ``path``, ``columns`` (names or indices of sentence 1,
    sentence 2, score; default ``("sentence1", "sentence2", "score")`` read from a header),
    ``delimiter``, ``prefix``. ``evaluate(model, pairs=[(s1, s2, score), ...])`` overrides."""

    name = "sts"

    def __init__(self, path: str | None = None,
                 columns: Sequence[str | int] = ("sentence1", "sentence2", "score"),
                 delimiter: str = "\t", prefix: str | None = None, progress: bool = True):
        self.path, self.columns, self.delimiter = path, tuple(columns), delimiter
        self.prefix, self.progress = prefix or "sts", progress
        self.artifacts: dict[str, Any] = {}

    def evaluate(self, model: Any, pairs: Sequence[tuple[str, str, float]] | None = None, **_: Any) -> dict[str, float]:
        if pairs is None:
            if not self.path:
                raise UsageError("sts: set the option path=<TSV of sentence pairs and scores>")
            pairs = read_pairs_tsv(self.path, self.columns, self.delimiter)
        rho, r, table = _score(model, list(pairs), self.progress)
        self.artifacts = {"pairs": table}
        return {f"{self.prefix}/spearman": rho, f"{self.prefix}/pearson": r}


class WordSimilarityEvaluator:
    """Word similarity on WordSim353 / SimLex-999 as shipped by gensim (``sets``), or on files
    in that format (``paths``: ``{name: path}``)."""

    name = "word-similarity"

    def __init__(self, sets: Sequence[str] = ("wordsim353", "simlex999"),
                 paths: dict[str, str] | None = None, lowercase: bool = True,
                 prefix: str | None = None, progress: bool = True):
        sets = [sets] if isinstance(sets, str) else list(sets)  # `--eval word-similarity:sets=simlex999`
        unknown = [s for s in sets if s not in WORD_SETS]
        if unknown:
            raise UsageError(f"word-similarity: unknown set '{unknown[0]}'; shipped sets: "
                             f"{', '.join(WORD_SETS)} (or give paths={{name: file}})")
        self.sets, self.paths, self.lowercase = tuple(sets), dict(paths or {}), lowercase
        self.prefix, self.progress = prefix or "word_similarity", progress
        self.artifacts: dict[str, Any] = {}

    def _files(self) -> dict[str, str]:
        files = dict(self.paths)
        if self.sets:
            try:
                from gensim.test.utils import datapath
            except ImportError:
                raise UsageError("word-similarity: the shipped sets come with gensim "
                                 "(pip install gensim), or give paths={name: file}") from None
            for s in self.sets:
                files.setdefault(s, datapath(WORD_SETS[s]))
        if not files:
            raise UsageError("word-similarity: no sets and no paths given")
        return files

    def evaluate(self, model: Any, **_: Any) -> dict[str, float]:
        metrics, self.artifacts = {}, {}
        for name, path in self._files().items():
            pairs = read_pairs_tsv(path, (0, 1, 2), "\t", header=False)
            if self.lowercase:
                pairs = [(a.lower(), b.lower(), s) for a, b, s in pairs]
            rho, _, table = _score(model, pairs, self.progress)
            metrics[f"{self.prefix}/{name}"] = rho
            self.artifacts[name] = table
        metrics[f"{self.prefix}/mean"] = float(np.mean(list(metrics.values())))
        return metrics
