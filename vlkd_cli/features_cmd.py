"""`vlkd features extract`: a teacher's features of a dataset, as a sharded store next to it."""
import os
from typing import List, Optional

import typer

from vlkd_core.training.config import options as train_options

from .common import command_url_trust, console, fail, handle_errors, parse_options
from .launch import LAUNCH_OPTIONS, check_launch, launch, needs_launch
from .tower_options import given_towers, tower_flags

app = typer.Typer(help="Teacher feature stores: encode a dataset once, train many students from it "
                  "(`vlkd train --teacher-features DIR`).", no_args_is_help=True)


# the tower's own features: no head, learning rate or lock
TOWER_PARTS = ("spec", "pretrained", "options")
NOTES = {("image", "spec"): "Store its features of the images (one per sample); give --image or --text, "
                            "or --teacher-model.",
         ("text", "spec"): "Store its features of the captions (one per caption); give --text or --image, "
                           "or --teacher-model."}
# the flags of the tower before it was named by its side, as in `vlkd train`
RETIRED = {"--tower": "--image SPEC or --text SPEC (the flag names the side)",
           "--side": "--image SPEC or --text SPEC (the flag names the side)",
           "--tower-option": "--image-option or --text-option", "--pretrained": "--image-pretrained or --text-pretrained"}


@app.command("extract", context_settings={"allow_extra_args": False})
@tower_flags(TOWER_PARTS, notes=NOTES, after="split", retired=RETIRED)
@handle_errors
def extract_command(
    ctx: typer.Context,
    data: str = typer.Option(..., "--data", help="Dataset name (as `vlkd train --data`)."),
    data_option: Optional[List[str]] = typer.Option(None, "--data-option", help="key=value for the dataset (repeatable)."),
    split: str = typer.Option("train", "--split", help="Dataset split."),
    cache_dir: Optional[str] = typer.Option(None, "--cache-dir", help=train_options()["cache_dir"].help),
    out: str = typer.Option(..., "--out", help="Folder of the feature store (resumes what is there)."),
    dtype: str = typer.Option("fp32", "--dtype", help="Stored precision: fp32 | fp16 | bf16."),
    batch_size: int = typer.Option(256, "--batch-size", help="Inputs per forward pass."),
    shard_size: int = typer.Option(4096, "--shard-size", help="Samples per output shard of a map-style "
                                   "dataset (webdataset: one output shard per input shard)."),
    teacher_model: Optional[str] = typer.Option(None, "--teacher-model", help="A reinforced store instead: this "
                                                "dual encoder's embeddings of K training views per image and of every "
                                                "caption (as `vlkd train --teacher-model`)."),
    teacher_pretrained: Optional[str] = typer.Option(None, "--teacher-pretrained", help="Weights of a "
                                                     "--teacher-model given as towers."),
    augmentations: Optional[int] = typer.Option(None, "--augmentations", help="With --teacher-model: views per "
                                                "image (a run trains on them with the same --seed and --augment)."),
    augment: str = typer.Option("openclip", "--augment", help="With --teacher-model: the training preset the "
                                "views are drawn from (openclip | imagenet)."),
    seed: int = typer.Option(0, "--seed", help="Seed of a tower built without pretrained weights, and of the views."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    allow_pipe: bool = typer.Option(False, "--allow-pipe", help="Let pipe:/remote shard URLs typed in --data-option run."),
    nproc_per_node: int = LAUNCH_OPTIONS["nproc_per_node"],
    nnodes: int = LAUNCH_OPTIONS["nnodes"],
    node_rank: int = LAUNCH_OPTIONS["node_rank"],
    rdzv_endpoint: Optional[str] = LAUNCH_OPTIONS["rdzv_endpoint"],
    master_port: Optional[int] = LAUNCH_OPTIONS["master_port"],
    **towers,
):
    """Encode a dataset with a locked tower (eval mode, no augmentation) into resumable
    safetensors shards keyed by sample key, with a manifest."""
    check_launch(nproc_per_node, nnodes, node_rank, master_port)
    from vlkd_core.features import ExtractConfig
    options = parse_options(data_option, "--data-option")
    named = list(given_towers(towers, TOWER_PARTS).values())
    if len(named) > 1:
        fail("give --image or --text, not both: a store holds the features of one tower")
    tower = named[0] if named else None
    cfg = ExtractConfig(data=data, data_options=options, split=split, tower=tower, cache_dir=cache_dir,
                        out=out, dtype=dtype, batch_size=batch_size, shard_size=shard_size, seed=seed,
                        progress=progress,
                        teacher_model=teacher_model, teacher_pretrained=teacher_pretrained,
                        augmentations=augmentations, augment=augment)
    cfg.validate()  # before launching processes
    cfg.check_out()
    if needs_launch(nproc_per_node, nnodes):
        command_url_trust(allow_pipe, [options])
        raise typer.Exit(launch("features extract", nproc_per_node, nnodes, node_rank, rdzv_endpoint,
                                master_port, ctx))
    from vlkd_core.features import extract  # after the launch: the launcher needs no torch
    with command_url_trust(allow_pipe, [options]):
        manifest = extract(cfg, console=console)
    if manifest is not None and int(os.environ.get("RANK", "0")) == 0:
        what = f"entries ({augmentations} teacher views and their crops per image, every caption)" \
            if teacher_model else f"{tower.side} features"
        console.print(f"[green]wrote[/] {out}: {manifest['count']} {what} of {manifest['samples']} "
                      f"samples, {len(manifest['shards'])} shard(s) ({manifest['encoded']} encoded now), "
                      f"{manifest['width']}-d {dtype}, in {manifest['seconds']:.1f} s",
                      soft_wrap=True, highlight=False)


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name="features")
