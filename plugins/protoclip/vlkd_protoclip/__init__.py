"""vlkd plugin `protoclip`: the ProtoCLIP loss (cheap hooks only; torch and faiss load lazily)."""
from vlkd_core import hookimpl


@hookimpl
def vlkd_register_losses(register):
    register("protoclip", "vlkd_protoclip.loss:ProtoCLIPLoss",
             example={"prototypes": 4, "projection_dim": 8, "projection_hidden_dim": 16},
             description="ProtoCLIP: InfoNCE plus prototype-level contrast against per-episode "
                         "k-means prototypes of the other modality (PBT, external teacher)")
