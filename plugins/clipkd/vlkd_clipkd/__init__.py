"""vlkd plugin `clipkd`: losses that distil a CLIP teacher model (both towers) into a smaller
CLIP student (cheap hooks only; torch is imported lazily). Each reads the teacher model's
embeddings through its forward parameters (``teacher_image``, ``teacher_text``,
``teacher_logit_scale``), which ``vlkd train --teacher-model`` provides."""
from vlkd_core import hookimpl


@hookimpl
def vlkd_register_losses(register):
    register("affinity-mimic", "vlkd_clipkd.similarity:AffinityMimic",
             description="TinyCLIP affinity mimicking: cross-entropy to the teacher's image-text affinities")
    register("relation-distill", "vlkd_clipkd.similarity:RelationDistill",
             description="CLIP-KD relation distillation: KL between teacher and student image-text similarity distributions")
    register("mobileclip-kd", "vlkd_clipkd.similarity:MobileCLIPKD",
             description="MobileCLIP's KD term: KL to the teacher's similarity softmaxes at a fixed teacher scale")
    register("feature-distill", "vlkd_clipkd.feature:FeatureDistill",
             description="CLIP-KD feature distillation: MSE between student and teacher embeddings (projected when widths differ)")
    register("interactive-contrast", "vlkd_clipkd.interactive:InteractiveContrast",
             description="CLIP-KD interactive contrastive learning: student image vs teacher text and student text vs teacher image")
