"""An independent InfoNCE / UniCL computation shared by the clip tests."""
import torch


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
