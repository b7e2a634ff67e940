"""Builtin recipes."""
from vlkd_core.hookspecs import hookimpl


@hookimpl
def vlkd_register_recipes(register):
    register("default", "vlkd_core.builtins.recipes:default_job",
             description="the built-in job (`vlkd train` with no arguments): resnet18 from scratch at 48 px, "
                         "taught by the locked MiniLM on the shapes data")


def default_job():
    """The values tuned for ``vlkd train`` with no arguments: a resnet18 learning from scratch
    on 4,000 generated 64 px shapes. 48 px keeps a run under a minute on two CPU cores (the
    shapes are drawn at 64 px, and 48 px loses none of what the captions say); a from-scratch
    student takes a higher learning rate than OpenCLIP's 5e-4 and a short warm-up fits its ~90
    steps. Another tower or other data gets none of these."""
    from vlkd_core.training.recipes import Recipe
    return Recipe(
        job={"image": "torchvision:resnet18", "image_pretrained": None,
             "text": "hf:sentence-transformers/all-MiniLM-L6-v2", "text_pretrained": None, "data": "shapes"},
        values={"image_options": {"image_size": 48}, "lr": 2e-3, "warmup_steps": 20, "epochs": 3})
