"""An independent InfoNCE / UniCL computation shared by the clip tests."""
import math

import torch


def reference(img, txt, log_scale, labels=None, max_scale=100.0):
    """Cross-entropy written out row by row: −Σ_j target_ij log softmax_j(σ cos(x_i, y_j))."""
    scale = torch.exp(torch.minimum(log_scale, torch.tensor(math.log(max_scale))))
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
