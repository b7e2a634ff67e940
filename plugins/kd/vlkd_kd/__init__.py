"""vlkd plugin `kd`: knowledge-distillation losses (cheap hooks only; torch is imported lazily)."""
from vlkd_core import hookimpl

_QUEUE_EXAMPLE = {"queue_size": 64}


@hookimpl
def vlkd_register_losses(register):
    register("simreg", "vlkd_kd.regression:SimReg",
             description="SimReg: MSE between L2-normalised student and teacher features")
    register("simreg-l1", "vlkd_kd.regression:SimRegL1",
             description="SimReg with an L1 regression between normalised features")
    register("simreg-smoothl1", "vlkd_kd.regression:SimRegSmoothL1",
             description="SimReg with a smooth-L1 (beta=1) regression between normalised features")
    register("vicreg", "vlkd_kd.vicreg:VICReg",
             description="VICReg: invariance + variance + covariance terms on raw features")
    register("barlowtwins", "vlkd_kd.barlowtwins:BarlowTwins",
             description="Barlow Twins: cross-correlation of standardised features towards identity")
    register("rkd", "vlkd_kd.rkd:RKD",
             description="Relational KD: distance-wise and angle-wise relations within the batch")
    register("compress-1q", "vlkd_kd.compress:CompRess1q", example=_QUEUE_EXAMPLE,
             description="CompRess-1q: KL between similarity distributions over one teacher queue")
    register("compress-2q", "vlkd_kd.compress:CompRess2q", example=_QUEUE_EXAMPLE,
             description="CompRess-2q: KL between teacher-queue and student-queue similarity distributions")
    register("seed", "vlkd_kd.seed:SEED", example=_QUEUE_EXAMPLE,
             description="SEED: cross-entropy between teacher and student similarities over a queue")
