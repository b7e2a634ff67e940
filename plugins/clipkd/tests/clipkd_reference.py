"""Independent computations of the CLIP-distillation objectives, written from each paper's
definition (with the reductions of its reference code), row by row and element by element in
float64, not from vlkd_clipkd. Autograd through them gives the reference gradients.

    TinyCLIP affinity mimicking:  ½ Σ_directions −1/B Σ_i Σ_j A_t[i, j] log A_s[i, j]
    CLIP-KD relation (CRD):       ½ Σ_directions  1/B Σ_i Σ_j P_t[i, j] log(P_t[i, j] / P_s[i, j])
    MobileCLIP KD:                the same KL with the teacher at its fixed scale
    CLIP-KD FD:                   Σ_modalities 1/(B·D) Σ_i Σ_d (norm(P s)_id − t̂_id)²
    CLIP-KD ICL:                  ½ Σ_directions −1/B Σ_i Σ_j y_ij log softmax_j(σ norm(P s_i)·t̂_j)
"""
import torch


def unit_rows(x):
    return [row / torch.sqrt((row * row).sum()) for row in x]


def softmax(scores):
    top = max(float(s.detach()) for s in scores)  # a constant shift, for stability
    exps = [torch.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def scores(rows, cols, scale):
    """For every row: scale · cos(row, col) for every col."""
    cols = unit_rows(cols)
    return [[scale * (r * c).sum() for c in cols] for r in unit_rows(rows)]


def _both_directions(student_image, student_text, teacher_image, teacher_text, s_scale, t_scale, per_row):
    total = 0.0
    pairs = ((student_image, student_text, teacher_image, teacher_text),
             (student_text, student_image, teacher_text, teacher_image))
    for s_rows, s_cols, t_rows, t_cols in pairs:
        s, t = scores(s_rows, s_cols, s_scale), scores(t_rows, t_cols, t_scale)
        for i in range(len(s)):
            p_t, p_s = softmax(t[i]), softmax(s[i])
            total = total + per_row(p_t, p_s) / len(s)
    return total / 2


def affinity_mimic(si, st, ti, tt, s_scale, t_scale):
    """TinyCLIP: cross-entropy of the student's affinities to the teacher's."""
    return _both_directions(si, st, ti, tt, s_scale, t_scale,
                            lambda p_t, p_s: -sum(p * torch.log(q) for p, q in zip(p_t, p_s)))


def kl_relation(si, st, ti, tt, s_scale, t_scale):
    """CLIP-KD CRD and MobileCLIP's KD term: KL(teacher ‖ student) per row."""
    return _both_directions(si, st, ti, tt, s_scale, t_scale,
                            lambda p_t, p_s: sum(p * torch.log(p / q) for p, q in zip(p_t, p_s)))


def linear(x, weight=None, bias=None):
    """x Wᵀ + b written out per output unit (the identity without weights)."""
    if weight is None:
        return x
    return torch.stack([torch.stack([(row * weight[k]).sum() + bias[k] for k in range(len(weight))]) for row in x])


def feature_distill(si, st, ti, tt, image_proj=(None, None), text_proj=(None, None)):
    total = 0.0
    for s, t, proj in ((si, ti, image_proj), (st, tt, text_proj)):
        s_rows, t_rows = unit_rows(linear(s, *proj)), unit_rows(t)
        squares = [((a - b) ** 2).sum() for a, b in zip(s_rows, t_rows)]
        total = total + sum(squares) / (len(s_rows) * len(t_rows[0]))
    return total


def interactive_contrast(si, st, ti, tt, log_scale, image_proj=(None, None), text_proj=(None, None), labels=None):
    scale = torch.exp(log_scale)
    labels = list(range(len(si))) if labels is None else [int(v) for v in labels]
    total = 0.0
    for s, t, proj in ((si, tt, image_proj), (st, ti, text_proj)):
        rows = scores(linear(s, *proj), t, scale)
        for i, row in enumerate(rows):
            p = softmax(row)
            positives = [j for j in range(len(row)) if labels[j] == labels[i]]
            total = total - sum(torch.log(p[j]) for j in positives) / len(positives) / len(rows)
    return total / 2
