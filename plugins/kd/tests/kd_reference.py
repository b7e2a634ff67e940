"""Independent computations of the KD formulas (written from the papers, not from the plugin),
shared by the kd tests."""
import torch


def l2n(x):
    return x / x.norm(dim=1, keepdim=True)


def ref_simreg(s, t):
    return ((l2n(s) - l2n(t)) ** 2).sum() / s.numel()


def ref_simreg_l1(s, t):
    return (l2n(s) - l2n(t)).abs().sum() / s.numel()


def ref_simreg_smoothl1(s, t):
    d = (l2n(s) - l2n(t)).abs()
    return torch.where(d < 1, 0.5 * d ** 2, d - 0.5).mean()


def _vic_terms(x, eps):
    n, d = x.shape
    centred = x - x.sum(0) / n
    var = (centred ** 2).sum(0) / (n - 1)
    std_term = torch.clamp(1 - torch.sqrt(var + eps), min=0).sum() / d
    cov = sum(torch.outer(c, c) for c in centred) / (n - 1)
    off = cov * (1 - torch.eye(d))
    return std_term, (off ** 2).sum() / d


def ref_vicreg(s, t, sim=25.0, std=25.0, cov=1.0, eps=1e-4):
    sv, sc = _vic_terms(s, eps)
    tv, tc = _vic_terms(t, eps)
    return sim * ((s - t) ** 2).mean() + std * (sv + tv) / 2 + cov * (sc + tc)


def ref_barlowtwins(s, t, lambd=0.0051):
    bn = torch.nn.BatchNorm1d(s.shape[1], affine=False).train()  # "BatchNorm without affine"
    c = bn(s).T @ bn(t) / s.shape[0]
    eye = torch.eye(s.shape[1])
    return ((c - eye) ** 2 * eye).sum() + lambd * ((c * (1 - eye)) ** 2).sum()


def _relations(x):
    d = torch.cdist(x, x)
    d = d * (1 - torch.eye(len(x)))
    d = d / d[d > 0].mean()
    cos = []
    for j in range(len(x)):  # vertex j, arms towards i and k
        for i in range(len(x)):
            for k in range(len(x)):
                a, b = x[i] - x[j], x[k] - x[j]
                cos.append((a / a.norm().clamp(min=1e-12)) @ (b / b.norm().clamp(min=1e-12)))
    return d, torch.stack(cos)


def _smooth_l1(a, b):
    d = (a - b).abs()
    return torch.where(d < 1, 0.5 * d ** 2, d - 0.5).mean()


def ref_rkd(s, t, wd=1.0, wa=2.0):
    ds, as_ = _relations(s)
    dt, at = _relations(t)
    return wd * _smooth_l1(ds, dt) + wa * _smooth_l1(as_, at)


def initial_queue(q, d):
    """The documented start of every queue: unit rows of randn from a generator seeded 0."""
    rows = torch.randn(q, d, generator=torch.Generator().manual_seed(0))
    return rows / rows.norm(dim=1, keepdim=True)


def ref_seed(s, t, queue, ts=0.07, tt=1e-4):
    s, t = l2n(s), l2n(t)
    logits_s = torch.cat([(s * t).sum(1, keepdim=True), s @ queue.T], 1) / ts
    logits_t = torch.cat([torch.ones(len(t), 1), t @ queue.T], 1) / tt
    p_t = torch.exp(logits_t - torch.logsumexp(logits_t, 1, keepdim=True))
    return -(p_t * (logits_s - torch.logsumexp(logits_s, 1, keepdim=True))).sum(1).mean()


def ref_compress(s, t, q_s, q_t, temp=0.04):
    ls, lt = l2n(s) @ q_s.T / temp, l2n(t) @ q_t.T / temp
    log_ps = ls - torch.logsumexp(ls, 1, keepdim=True)
    log_pt = lt - torch.logsumexp(lt, 1, keepdim=True)
    return (log_pt.exp() * (log_pt - log_ps)).sum() / len(s)


def fifo(queue, ptr, rows):
    """Write rows one at a time, wrapping around: the textbook FIFO."""
    queue = queue.clone()
    for row in rows:
        queue[ptr] = row
        ptr = (ptr + 1) % len(queue)
    return queue, ptr
