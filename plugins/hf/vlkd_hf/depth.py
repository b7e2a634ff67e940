"""--layer-decay depth of Hugging Face towers: transformer layers (BERT/RoBERTa ``encoder.layer``,
CLIP/SigLIP ``encoder.layers``, DistilBERT ``transformer.layer``) or ConvNeXt-style stages; the
embeddings (and CoOp prompts) are the stem, poolers, final norms and projections the top."""

HF_DEPTH = (
    (r"(.+\.)?(encoder\.layers?|transformer\.layer)\.\d+", r"(.+\.)?(embeddings|pre_layrnorm)\.|prompt\."),
    (r"(.+\.)?encoder\.stages\.\d+", r"(.+\.)?embeddings\."),
)
