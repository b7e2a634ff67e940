"""vlkd plugin `hf`: the backbone family ``hf:<hub id or local directory>`` (cheap hooks only)."""
from vlkd_core import hookimpl


@hookimpl
def vlkd_register_backbones(register):
    # models=None: any hub id or local directory is accepted. No `example`: a tiny HF model
    # needs config/tokenizer files, which the plugin's own tests create in a temp directory.
    register("hf", "vlkd_hf.backbone:build_hf_backbone", models=None,
             description="Hugging Face transformers / sentence-transformers text and vision towers")


@hookimpl
def vlkd_register_export_formats(register):
    register("sentence-transformers", "vlkd_hf.export_st:SentenceTransformersFormat",
             description="a SentenceTransformer folder: the text tower and head (HF text towers)")
    register("hf", "vlkd_hf.export_hf:HFFormat",
             description="save_pretrained folders of the HF towers, heads as module folders (HF towers)")
