"""The two sides of benchmarks/eval_vs_clip_benchmark.py: CLIP_benchmark's zero-shot
classification and retrieval functions, and vlkd's evaluators as ``vlkd eval`` builds them.

Each ``run_*`` returns (metrics in vlkd's names, a :class:`Clock`). Metric names of CLIP_benchmark map
as follows: ``acc1``/``acc5``/``mean_per_class_recall`` -> ``zeroshot/top1``/``top5``/
``mean_per_class_recall``; ``text_retrieval_recall@k`` (an image retrieves its captions) ->
``retrieval/image_to_text_R@k``; ``image_retrieval_recall@k`` (a caption retrieves its image)
-> ``retrieval/text_to_image_R@k``.
"""
from __future__ import annotations

import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

KS = (1, 5, 10)


class Clock:
    """Wall seconds, and CPU seconds of this process plus its finished children (the DataLoader
    workers): the CPU figure does not grow when other jobs share the cores, the wall one does."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), self._cpu()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, self._cpu() - self.cpu

    @staticmethod
    def _cpu() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime


@dataclass
class Setup:
    """Everything both tools are given: the model folder, the data and the prompts."""

    model_dir: Path
    fashion_root: Path          # IDX files (vlkd's fashion-mnist dataset reads them)
    torchvision_root: Path      # the same files in torchvision's FashionMNIST layout
    captions_json: Path         # COCO captions format
    captions_images: Path
    classnames: list
    templates: list             # with a "{c}" placeholder: CLIP_benchmark's str.format(c=...)
    batch_size: int = 64
    workers: int = 2
    max_samples: int | None = None
    vlkd_workers: int | None = None  # None: the evaluators' default


@contextmanager
def numpy2_safe_accuracy():
    """CLIP_benchmark 1.6.2's ``accuracy`` calls ``float()`` on a 1-element array, which numpy 2
    rejects. Swapped for the same count (top-k hits / N) while the benchmark runs."""
    from clip_benchmark.metrics import zeroshot_classification as zc
    original = zc.accuracy

    def accuracy(output, target, topk=(1,)):
        top = output.topk(max(topk), 1, True, True).indices
        hits = top == target.view(-1, 1)
        return [hits[:, :k].sum().item() / len(target) for k in topk]

    zc.accuracy = accuracy
    try:
        yield
    finally:
        zc.accuracy = original


def load_clip_benchmark_model(setup: Setup):
    """(model, transform, tokenizer) through CLIP_benchmark's own open_clip loader."""
    from clip_benchmark.models import load_clip
    model, transform, tokenizer = load_clip("open_clip", f"local-dir:{setup.model_dir}", None, None, "cpu")
    return model.eval(), transform, tokenizer


def _clip_benchmark_loaders(setup: Setup, transform):
    import torchvision
    from clip_benchmark.datasets.builder import build_dataset, get_dataset_collate_fn
    from torch.utils.data import DataLoader, Subset
    fmnist = torchvision.datasets.FashionMNIST(str(setup.torchvision_root), train=False, transform=transform)
    fmnist.classes = list(setup.classnames)
    coco = build_dataset("mscoco_captions", root=str(setup.captions_images.parent), transform=transform,
                         split="test", annotation_file=str(setup.captions_json), download=False,
                         task="zeroshot_retrieval")
    if setup.max_samples is not None:
        fmnist_sub = Subset(fmnist, range(min(setup.max_samples, len(fmnist))))
        fmnist_sub.classes = fmnist.classes
        fmnist = fmnist_sub
    load = lambda ds, collate=None: DataLoader(ds, batch_size=setup.batch_size, shuffle=False,  # noqa: E731
                                               num_workers=setup.workers, collate_fn=collate)
    return load(fmnist), load(coco, get_dataset_collate_fn("mscoco_captions"))


def run_clip_benchmark(setup: Setup, model, transform, tokenizer) -> tuple[dict, Clock]:
    """CLIP_benchmark's evaluate functions, fp32 (``amp=False``: on a CPU its autocast means
    bfloat16, while vlkd evaluates in fp32)."""
    from clip_benchmark.metrics import zeroshot_classification, zeroshot_retrieval
    with Clock() as clock, numpy2_safe_accuracy():
        zs_loader, ret_loader = _clip_benchmark_loaders(setup, transform)
        zs = zeroshot_classification.evaluate(model, zs_loader, tokenizer, setup.classnames, setup.templates,
                                              "cpu", amp=False)
        ret = zeroshot_retrieval.evaluate(model, ret_loader, tokenizer, "cpu", amp=False, recall_k_list=list(KS))
    metrics = {"zeroshot/top1": zs["acc1"], "zeroshot/top5": zs["acc5"],
               "zeroshot/mean_per_class_recall": float(zs["mean_per_class_recall"])}
    for k in KS:
        metrics[f"retrieval/image_to_text_R@{k}"] = ret[f"text_retrieval_recall@{k}"]
    for k in KS:
        metrics[f"retrieval/text_to_image_R@{k}"] = ret[f"image_retrieval_recall@{k}"]
    return metrics, clock


def vlkd_eval_specs(setup: Setup) -> list[str]:
    """The ``--eval`` arguments of the equivalent ``vlkd eval`` command."""
    import json
    limit = "" if setup.max_samples is None else f",max_samples={setup.max_samples}"
    common = f"batch_size={setup.batch_size},progress=false"
    if setup.vlkd_workers is not None:
        common += f",workers={setup.vlkd_workers}"
    zeroshot = (f"zeroshot:dataset=fashion-mnist,dataset.root={setup.fashion_root},{common}{limit},"
                f"classnames={json.dumps(setup.classnames)},templates={json.dumps(setup.templates)}")
    retrieval = (f"retrieval:dataset=coco-captions,dataset.path={setup.captions_json},"
                 f"dataset.root={setup.captions_images},{common},ks=[1,5,10]")
    return [zeroshot, retrieval]


def load_vlkd_model(setup: Setup):
    """The DualEncoder ``vlkd eval --image openclip:local-dir:DIR --text openclip:local-dir:DIR``
    builds."""
    import vlkd_core
    from vlkd_core._model.model import DualEncoder
    spec = f"openclip:local-dir:{setup.model_dir}"
    return DualEncoder(vlkd_core.build_backbone(spec, "image"), vlkd_core.build_backbone(spec, "text")).eval()


def run_vlkd(setup: Setup, model) -> tuple[dict, Clock]:
    """vlkd's evaluators exactly as ``vlkd eval`` runs them (build_evaluators + run_evaluators)."""
    from vlkd_core.training.evals import build_evaluators, run_evaluators
    with Clock() as clock:
        metrics = run_evaluators(build_evaluators(vlkd_eval_specs(setup)), model)
    return {k: v for k, v in metrics.items() if not k.endswith("mean_recall")}, clock
