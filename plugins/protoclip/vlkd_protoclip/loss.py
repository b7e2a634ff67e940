"""The ProtoCLIP loss: InfoNCE plus prototype-level contrast against per-episode prototypes."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vlkd_core import api
from vlkd_core.contracts import LossNeeds
from vlkd_core.errors import UsageError
from vlkd_core.sdk import notice

from . import episode as episodes
from .clustering import DIAGNOSTICS
from .targets import proto_term

# per-sample state, one row per sample of the episode (its length is the data's, see resize_episode)
ROW_STATE = ("sample_index", "image_labels", "text_labels", "external_labels")
PARTS = ("image", "text", "external")
PROTOTYPE_STATE = ("image_centroids", "text_centroids", "image_targets", "text_targets",
                   "image_external_targets", "text_external_targets")  # [K, projection_dim] each
SAMPLES_PER_PROTOTYPE, MAX_DEFAULT_PROTOTYPES = 10, 20000  # the paper: K = 20000 for 200k samples


class ProtoCLIPLoss(nn.Module):
    """ProtoCLIP (Chen et al.): InfoNCE between the inputs, plus prototype-level discrimination
    between image and text spaces, with prototypes rebuilt by k-means at every episode.

    x (image) and y (text) are the loss's two inputs (swapped under ``--teacher image``). Each goes
    through a projection head of its own: z_x = norm(g_x(x)), z_y = norm(g_y(y)). At the start
    of every episode (``LossNeeds.episodes``) the episode's samples are encoded in eval mode,
    projected, and clustered with k-means per modality (K = ``prototypes``): centroids C_x, C_y
    and assignments a_x(n), a_y(n) per sample. Each side is scored against the other side's
    prototypes: the image target P_x = C_y, or with PBT (Prototypical Back Translation,
    ``pbt``) P_x[c] = mean of z_x over the samples in text cluster c (symmetrically P_y), so the
    student's own space holds the other modality's grouping. For a sample n with text cluster
    c = a_y(n) the image side minimises

        L_x→y = CE(σ_p z_x P_xᵀ, q),  q = softmax(C_y[c] C_yᵀ / τ)   (τ = target_temperature),
        q = onehot(c) when τ = 0,

    and the text side L_y→x likewise with C_x and a_x. An external teacher (features of a tower
    before its head, or a .npy of per-sample features) is clustered too, translated into both
    spaces (PBT), and taught with one-hot targets. The total is

        w_clip · InfoNCE(x, y) + w_proto · ½(L_x→y + L_y→x) + w_external · ½(L_x→e + L_y→e),

    σ_p = exp(learnable log-scale), clamped in place to [0, ln max_logit_scale] after each
    optimizer step, as the InfoNCE scale. During the first ``warmup_episodes`` episodes only
    InfoNCE trains (no clustering). k-means: faiss (``kmeans_backend`` auto|faiss|sklearn),
    ``kmeans_iters`` Lloyd iterations, best of ``kmeans_redo`` restarts, seeded per episode;
    ``kmeans_threads`` caps faiss's OpenMP threads (0: all; 1 where OpenMP was used before a fork).

    State in buffers (the checkpoint has it; a resumed run keeps the episode's prototypes):
    ``episode`` (the epoch the prototypes belong to, -1 before the first), ``sample_index``
    [N] (dataset index per episode position), ``image_labels`` / ``text_labels`` /
    ``external_labels`` [N], ``image_centroids`` / ``text_centroids`` / ``image_targets`` /
    ``text_targets`` / ``image_external_targets`` / ``text_external_targets`` [K, P] and
    ``diagnostics`` (k-means error, clusters used, cluster size min / max / std, silhouette per
    clustering, logged at every step as ``protoclip/image_silhouette`` etc.). The [N] buffers
    take the episode's length, which the data decides: loading a checkpoint sizes them. Rank 0
    writes RUN/figures/protoclip-clusters.png per episode (``figure_samples`` members of the
    ``figure_rows`` largest clusters; 0 turns it off), which `vlkd report` shows. Defaults follow
    the paper's CC2.5M recipe, except ``prototypes``: unset, K is one per 10 samples of the
    episode (the paper's ratio: 20000 for episodes of 200k), at most 20000, and the run says so
    at its first episode; keep an explicit K well below the episode size.
    """

    formula = ("w_clip·InfoNCE(x, y) + w_proto·½[CE(σ_p ẑ_x P_xᵀ, q_y) + CE(σ_p ẑ_y P_yᵀ, q_x)] "
               "+ w_ext·½[CE(σ_p ẑ_x P_x,eᵀ, a_e) + CE(σ_p ẑ_y P_y,eᵀ, a_e)]; ẑ = norm(g(·)); "
               "per episode k-means C_x, C_y, assignments a_x, a_y; P_x = C_y, or PBT: P_x[c] = "
               "mean{ẑ_x(n) : a_y(n) = c}; q_y = softmax(C_y[a_y] C_yᵀ/τ) (onehot(a_y) at τ = 0)")
    paper = ("Chen et al. ProtoCLIP: Prototypical Contrastive Language Image Pretraining. IEEE "
             "TNNLS, arXiv:2206.10996; code github.com/megvii-research/protoclip")
    needs = LossNeeds(teacher=False, symmetric=True, gathers=True, labels=True, after_step=True,
                      episodes=True, sample_ids=True)

    def __init__(self, *, student_dim: int, teacher_dim: int, prototypes: int | None = None,
                 projection_dim: int = 128, projection_hidden_dim: int = 2048, projection_layers: int = 2,
                 target_temperature: float = 0.01, pbt: bool = True, clip_weight: float = 1.0,
                 proto_weight: float = 1.0, external_weight: float = 1.0, external_teacher: str = "none",
                 init_temperature: float = 0.07, learn_temperature: bool = True, max_logit_scale: float = 100.0,
                 warmup_episodes: int = 0, kmeans_iters: int = 20, kmeans_redo: int = 3,
                 kmeans_backend: str = "auto", kmeans_seed: int = 0, kmeans_threads: int = 0,
                 silhouette_sample: int = 2000,
                 figure_rows: int = 6, figure_samples: int = 8):
        super().__init__()
        _check_options(prototypes, projection_dim, target_temperature, warmup_episodes, kmeans_iters,
                       kmeans_redo, external_teacher, pbt, max_logit_scale)
        self.prototypes = None if prototypes is None else int(prototypes)  # None: from the episode
        self.target_temperature, self.pbt = float(target_temperature), bool(pbt)
        self.weights = {"clip": float(clip_weight), "proto": float(proto_weight), "external": float(external_weight)}
        self.external_teacher, self.warmup_episodes = str(external_teacher), int(warmup_episodes)
        self.kmeans_iters, self.kmeans_redo, self.kmeans_backend = int(kmeans_iters), int(kmeans_redo), kmeans_backend
        self.kmeans_seed, self.kmeans_threads = int(kmeans_seed), int(kmeans_threads)
        self.silhouette_sample = int(silhouette_sample)
        self.figure_rows, self.figure_samples = int(figure_rows), int(figure_samples)
        self.max_logit_scale = float(max_logit_scale)
        self.infonce = api.build_loss("infonce", init_temperature=init_temperature,
                                      learn_temperature=learn_temperature, max_logit_scale=max_logit_scale)
        head = dict(out_dim=projection_dim, layers=projection_layers, hidden_dim=projection_hidden_dim,
                    activation="relu", batch_norm=True)  # the paper's Linear-BN-ReLU-Linear
        self.image_projection = api.build_head("mlp", in_dim=student_dim, **head)
        self.text_projection = api.build_head("mlp", in_dim=teacher_dim, **head)
        self.proto_logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)),
                                              requires_grad=bool(learn_temperature))
        self._register_state(self.prototypes or 0, int(projection_dim))
        self._lookup: tuple[torch.Tensor, torch.Tensor] | None = None
        self.after_optimizer_step()

    @property
    def figure_name(self) -> str:
        return getattr(self, "vlkd_name", "protoclip")

    def _register_state(self, k: int, p: int) -> None:
        self.register_buffer("episode", torch.tensor(-1, dtype=torch.long))
        for name in ROW_STATE:
            self.register_buffer(name, torch.zeros(0, dtype=torch.long))
        for name in ("image_centroids", "text_centroids", "image_targets", "text_targets"):
            self.register_buffer(name, torch.zeros(k, p))
        if self.external_teacher != "none":
            self.register_buffer("image_external_targets", torch.zeros(k, p))
            self.register_buffer("text_external_targets", torch.zeros(k, p))
        self.register_buffer("diagnostics", torch.zeros(len(PARTS) * len(DIAGNOSTICS)))

    def episode_buffers(self) -> list[str]:
        return [name for name, _ in self.named_buffers(recurse=False) if name != "sample_index"]

    def resize_episode(self, n: int) -> None:
        """Give the per-sample buffers the episode's length ``n`` (contents undefined)."""
        for name in ROW_STATE:
            old = getattr(self, name)
            if old.numel() != n:
                setattr(self, name, torch.zeros(n, dtype=old.dtype, device=old.device))
        self._lookup = None

    def prepare_prototypes(self, n: int) -> int:
        """K for an episode of ``n`` samples, with the prototype buffers at [K, P]: the option
        ``prototypes``, or when unset the paper's one per 10 samples (at most 20000), said once."""
        k = self.prototypes or min(MAX_DEFAULT_PROTOTYPES, max(1, n // SAMPLES_PER_PROTOTYPE))
        if self.image_centroids.shape[0] != k:
            if self.prototypes is None:
                notice(f"loss '{self.figure_name}': prototypes={k}, one per {SAMPLES_PER_PROTOTYPE} samples of "
                       f"the {n}-sample episode (the paper: 20000 for 200k); set it with "
                       f"--loss-option {self.figure_name}.prototypes=K")
            self._resize_prototypes(k)
        return k

    def _resize_prototypes(self, k: int) -> None:
        for name in PROTOTYPE_STATE:
            old = getattr(self, name, None)
            if old is not None and old.shape[0] != k:
                setattr(self, name, torch.zeros(k, old.shape[1], dtype=old.dtype, device=old.device))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ROW_STATE:  # a checkpoint's episode may have any length
            if prefix + name in state_dict:
                self.resize_episode(state_dict[prefix + name].numel())
        if prefix + "image_centroids" in state_dict:  # and a derived K, its own
            self._resize_prototypes(state_dict[prefix + "image_centroids"].shape[0])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._lookup = None

    # -- engine calls -------------------------------------------------------------------------
    def start_episode(self, episode) -> None:
        """New prototypes for ``episode``, unless the checkpoint already holds this episode's."""
        if int(self.episode) == episode.epoch and self._holds(episode):
            return
        self.episode.fill_(episode.epoch)
        if episode.epoch < self.warmup_episodes:
            self.resize_episode(0)  # InfoNCE-only warm-up: no prototypes
            return
        episodes.start(self, episode)
        self._lookup = None

    def _holds(self, episode) -> bool:
        if episode.epoch < self.warmup_episodes:
            return self.sample_index.numel() == 0
        return torch.equal(self.sample_index.cpu(), episode.indices)

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Clamp both log-scales in place to [0, ln max_logit_scale] (the paper's code)."""
        self.infonce.after_optimizer_step()
        self.proto_logit_scale.clamp_(0, math.log(self.max_logit_scale))

    # -- one step -------------------------------------------------------------------------------
    def _rows(self, indices: torch.Tensor) -> torch.Tensor:
        """Episode positions of the dataset indices ``indices``."""
        if self._lookup is None:
            self._lookup = self.sample_index.sort()
        values, order = self._lookup
        indices = torch.as_tensor(indices, device=values.device).long()
        pos = torch.searchsorted(values, indices).clamp(max=len(values) - 1)
        if not torch.equal(values[pos], indices):
            raise UsageError(f"loss '{self.figure_name}': a batch holds samples outside the current episode")
        return order[pos]

    def forward(self, image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor | None = None,
                indices: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        nce = self.infonce(image, text, labels=labels)
        z_x = F.normalize(self.image_projection(image.float()).float(), dim=1)
        z_y = F.normalize(self.text_projection(text.float()).float(), dim=1)
        scale = self.proto_logit_scale.exp()
        out = {"infonce": nce["loss"].detach(), "logit_scale": nce["logit_scale"], "proto_scale": scale.detach()}
        total = self.weights["clip"] * nce["loss"]
        if indices is None or self.sample_index.numel() == 0:  # no prototypes (yet)
            # keep every parameter in the graph: DDP expects a gradient for each of them
            out["loss"] = total + 0.0 * (z_x.sum() + z_y.sum() + scale)
            return out
        rows = self._rows(indices)
        a_x, a_y = self.image_labels[rows], self.text_labels[rows]
        l_xy, acc_xy = proto_term(z_x, self.image_targets, self.text_centroids, a_y, scale, self.target_temperature)
        l_yx, acc_yx = proto_term(z_y, self.text_targets, self.image_centroids, a_x, scale, self.target_temperature)
        proto = (l_xy + l_yx) / 2
        total = total + self.weights["proto"] * proto
        out.update({"proto": proto.detach(), "acc_image_to_text": acc_xy, "acc_text_to_image": acc_yx})
        if self.external_teacher != "none":
            a_e = self.external_labels[rows]
            l_xe, acc_xe = proto_term(z_x, self.image_external_targets, None, a_e, scale, 0.0)
            l_ye, acc_ye = proto_term(z_y, self.text_external_targets, None, a_e, scale, 0.0)
            total = total + self.weights["external"] * (l_xe + l_ye) / 2
            out.update({"proto_external": ((l_xe + l_ye) / 2).detach(), "acc_image_to_external": acc_xe,
                        "acc_text_to_external": acc_ye})
        out.update(self._diagnostic_logs())
        out["loss"] = total
        return out

    def _diagnostic_logs(self) -> dict[str, float]:
        parts = PARTS if self.external_teacher != "none" else PARTS[:2]
        values = self.diagnostics.tolist()
        names = [f"{part}_{d}" for part in parts for d in DIAGNOSTICS]
        return {n: v for n, v in zip(names, values) if not math.isnan(v)}  # NaN: undefined silhouette


def _check_options(prototypes, projection_dim, target_temperature, warmup_episodes, kmeans_iters,
                   kmeans_redo, external_teacher, pbt, max_logit_scale) -> None:
    for option, value in (("prototypes", prototypes), ("projection_dim", projection_dim),
                          ("kmeans_iters", kmeans_iters), ("kmeans_redo", kmeans_redo)):
        if value is not None and int(value) < 1:
            raise UsageError(f"loss 'protoclip': option {option} must be >= 1, got {value}")
    if target_temperature < 0:
        raise UsageError(f"loss 'protoclip': option target_temperature must be >= 0 (0: one-hot), got {target_temperature}")
    if warmup_episodes < 0:
        raise UsageError(f"loss 'protoclip': option warmup_episodes must be >= 0, got {warmup_episodes}")
    if not max_logit_scale > 1:
        raise UsageError(f"loss 'protoclip': option max_logit_scale must be > 1, got {max_logit_scale}")
    if external_teacher != "none" and not pbt:
        raise UsageError("loss 'protoclip': option external_teacher needs pbt=true (the external "
                         "prototypes live in another space; PBT translates them into both)")
