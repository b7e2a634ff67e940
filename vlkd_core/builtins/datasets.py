"""Builtin datasets."""
from vlkd_core.hookspecs import hookimpl


@hookimpl
def vlkd_register_datasets(register):
    register("shapes", "vlkd_core.datasets.shapes:ShapesDataset",
             description="procedurally generated captioned shapes (no download; the default data)",
             evals=[  # single-shape test images: their class is unambiguous
                 "zeroshot:dataset=shapes,dataset.label_by=shape,dataset.two_shapes=0,prefix=zeroshot-shape",
                 "zeroshot:dataset=shapes,dataset.label_by=colour,dataset.two_shapes=0,prefix=zeroshot-colour",
                 "retrieval:dataset=shapes"])
    register("fashion-mnist", "vlkd_core.datasets.fashion_mnist:FashionMNISTDataset",
             description="Fashion-MNIST from IDX files (default root: Debian's /usr/share/datasets/fashion-mnist)",
             evals=["zeroshot:dataset=fashion-mnist,max_samples=2000",
                    "linear-probe:dataset=fashion-mnist,max_train_samples=5000,max_samples=2000"])
    register("torchvision", "vlkd_core.datasets.torchvision_local:TorchvisionDataset",
             description="torchvision classification sets (CIFAR10/100, MNIST, STL10, ...) from a local root, no download")
    register("csv", "vlkd_core.datasets.csv:CsvDataset",
             description="image-text pairs from CSV/TSV files (OpenCLIP/ITRA columns filepath,title)")
    register("webdataset", "vlkd_core.datasets.webdataset:WebDataset",
             description="image-text pairs streamed from webdataset .tar shards (jpg|png|webp + txt [+ cls])")
    register("coco-captions", "vlkd_core.datasets.coco_captions:CocoCaptionsDataset",
             description="images with several captions: Karpathy-split JSON (COCO, Flickr8k/30k) or COCO captions JSON")
    register("imagefolder", "vlkd_core.datasets.imagefolder:ImageFolderDataset",
             description="class folders (root/[split/]class/img) captioned with prompt templates")
