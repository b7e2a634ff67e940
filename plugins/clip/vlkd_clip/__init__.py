"""vlkd plugin `clip`: contrastive image-text losses (cheap hooks only; torch is imported lazily)."""
from vlkd_core import hookimpl


@hookimpl
def vlkd_register_losses(register):
    register("infonce", "vlkd_clip.infonce:InfoNCE",
             description="CLIP InfoNCE with a learnable temperature and global negatives across ranks")
    register("unicl", "vlkd_clip.infonce:UniCL",
             description="UniCL: InfoNCE with image-label-text soft targets (same label = positive)")
    register("siglip", "vlkd_clip.siglip:SigLIP",
             description="SigLIP: pairwise sigmoid loss with learnable scale and bias, text chunks rotating between ranks")
    register("simcse", "vlkd_clip.simcse:SimCSE",
             description="SimCSE: InfoNCE between two dropout passes of each caption (text regulariser)")
