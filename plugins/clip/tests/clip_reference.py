"""Independent InfoNCE / UniCL and SigLIP computations shared by the clip tests, and the
inputs the value tests feed both them and the losses."""
import torch


def features(seed: int, batch: int = 5, dim: int = 4):
    """A seeded (image, text) pair of [batch, dim] features."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, dim, generator=gen), torch.randn(batch, dim, generator=gen)


def run_with_grads(loss, img, txt, labels=None):
    """The loss's output on copies of (img, txt) after backward, and the copies' gradients."""
    img, txt = img.clone().requires_grad_(True), txt.clone().requires_grad_(True)
    out = loss(img, txt) if labels is None else loss(img, txt, labels=labels)
    out["loss"].backward()
    return out, img.grad, txt.grad


def reference(img, txt, log_scale, labels=None):
    """Cross-entropy written out row by row: −Σ_j target_ij log softmax_j(σ cos(x_i, y_j)),
    σ = exp(log-scale) (the cap is applied to the parameter after each optimizer step)."""
    scale = torch.exp(log_scale)
    labels = torch.arange(len(img)) if labels is None else labels
    total = 0.0
    for a, b in ((img, txt), (txt, img)):
        a, b = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
        for i in range(len(a)):
            logits = scale * (b @ a[i])
            log_p = logits - torch.log(torch.exp(logits).sum())
            same = (labels == labels[i]).float()
            total = total - (same / same.sum() * log_p).sum() / len(a)
    return total / 2


def sigmoid_reference(img, txt, log_scale, bias, labels=None):
    """SigLIP (Zhai et al. 2023, eq. 1) pair by pair: −1/|B| Σ_i Σ_j log(1 / (1 + exp(−z_ij (t x̂_i·ŷ_j + b)))),
    t = exp(t'), z_ij = 1 for the matching caption (or the same id) and −1 otherwise."""
    scale = torch.exp(log_scale)
    labels = torch.arange(len(img)) if labels is None else labels
    total = 0.0
    for i in range(len(img)):
        x = img[i] / img[i].norm()
        for j in range(len(txt)):
            y = txt[j] / txt[j].norm()
            z = 1.0 if labels[i] == labels[j] else -1.0
            total = total + torch.log(1 + torch.exp(-z * (scale * (x @ y) + bias)))
    return total / len(img)
