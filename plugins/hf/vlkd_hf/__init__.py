"""vlkd plugin `hf`: the backbone family ``hf:<hub id or local directory>`` (cheap hooks only)."""
from vlkd_core import hookimpl


@hookimpl
def vlkd_register_backbones(register):
    # models=None: any hub id or local directory is accepted. No `example`: a tiny HF model
    # needs config/tokenizer files, which the plugin's own tests create in a temp directory.
    register("hf", "vlkd_hf.backbone:build_hf_backbone", models=None,
             description="Hugging Face transformers / sentence-transformers text and vision towers")
