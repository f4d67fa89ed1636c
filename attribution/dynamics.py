"""Training-dynamics value scores of classifier samples: EL2N, GraNd and forgetting events.

Data-pruning scores (filters.md section 2b) that need no influence factors, only models at some
point of training:

- **EL2N** (Paul et al. 2021): the L2 norm of ``softmax(f(x)) - onehot(y)``, averaged over models
  early in training (several seeds). Large = hard or mislabelled; small = easy.
- **GraNd** (Paul et al. 2021): the norm of the sample's loss gradient over all parameters,
  averaged over the same models.
- **Forgetting events** (Toneva et al. 2019): how often a sample goes from correctly to
  incorrectly classified between consecutive checks during training (:class:`ForgettingTracker`,
  called once per epoch). A sample never learned counts as unforgettable-but-unlearned: it gets
  ``inf`` events by the paper's convention, so it ranks as the hardest.

Every function takes models in eval mode and a dataset of ``(inputs, label)`` items, and returns
one value per sample in dataset order. Larger always means harder (less redundant), which is what
a pruning filter keeps; the filter decides the direction it prunes from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils import data

from .gradients import in_batches


@torch.no_grad()
def el2n_scores(models: Sequence[nn.Module], dataset: data.Dataset, *, batch_size: int = 256) -> np.ndarray:
    """Mean over ``models`` of ``||softmax(f(x)) - onehot(y)||_2`` per sample."""
    if not models:
        raise ValueError("EL2N needs at least one model")
    total = np.zeros(len(dataset))
    for model in models:
        model.eval()
        out = []
        for x, y in in_batches(dataset, batch_size):
            p = F.softmax(model(x).float(), dim=-1)
            out.append(torch.linalg.vector_norm(p - F.one_hot(y, p.shape[-1]).to(p.dtype), dim=-1))
        total += torch.cat(out).numpy()
    return total / len(models)


def grand_scores(models: Sequence[nn.Module], dataset: data.Dataset) -> np.ndarray:
    """Mean over ``models`` of the norm of each sample's cross-entropy gradient over all parameters."""
    from torch.func import functional_call, grad, vmap

    if not models:
        raise ValueError("GraNd needs at least one model")
    total = np.zeros(len(dataset))
    for model in models:
        model.eval()
        params = {k: v.detach() for k, v in model.named_parameters()}

        def loss(p, x, y, model=model):
            return F.cross_entropy(functional_call(model, p, (x.unsqueeze(0),)), y.unsqueeze(0))

        per_sample = vmap(grad(loss), in_dims=(None, 0, 0))
        out = []
        for x, y in in_batches(dataset, 256):
            g = per_sample(params, x, y)
            sq = sum(v.reshape(v.shape[0], -1).pow(2).sum(1) for v in g.values())
            out.append(sq.sqrt())
        total += torch.cat(out).numpy()
    return total / len(models)


class ForgettingTracker:
    """Counts forgetting events per sample across calls (one call per epoch, on the same dataset)."""

    def __init__(self, n: int):
        self.previous = np.zeros(n, dtype=bool)
        self.ever_learned = np.zeros(n, dtype=bool)
        self.events = np.zeros(n, dtype=np.int64)
        self.checks = 0

    @torch.no_grad()
    def __call__(self, model: nn.Module, dataset: data.Dataset, batch_size: int = 256) -> None:
        """Record which samples ``model`` classifies correctly now; count correct -> incorrect moves."""
        was_training = model.training
        model.eval()
        correct = np.concatenate([(model(x).argmax(-1) == y).numpy() for x, y in in_batches(dataset, batch_size)])
        model.train(was_training)
        if len(correct) != len(self.previous):
            raise ValueError(f"the tracker was made for {len(self.previous)} samples, the dataset has {len(correct)}")
        self.events += self.previous & ~correct
        self.ever_learned |= correct
        self.previous = correct
        self.checks += 1

    def scores(self) -> np.ndarray:
        """Forgetting events per sample; ``inf`` for samples never classified correctly."""
        if not self.checks:
            raise ValueError("no epoch was recorded: call the tracker after each epoch")
        return np.where(self.ever_learned, self.events.astype(np.float64), np.inf)


__all__ = ["ForgettingTracker", "el2n_scores", "grand_scores"]
