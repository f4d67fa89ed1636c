"""Training-dynamics value scores of classifier and causal-LM samples: EL2N, GraNd and forgetting events.

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

Causal LMs (prompt/completion items of ``input_ids``, ``attention_mask`` and ``labels`` with -100
on the prompt and padding, as :class:`attribution.data.CompletionDataset` makes them) have their
own versions, over the completion tokens only (token ``t + 1`` predicted from the tokens up to
``t``, teacher forcing):

- :func:`lm_el2n_scores`: the mean over completion tokens of ``||softmax(logits) - onehot(next)||_2``;
- :func:`lm_grand_scores`: the norm of the gradient of the sample's mean completion-token NLL
  over all parameters (one backward pass per sample, on the sample's own length);
- :func:`sequences_learned`: whether the argmax of every completion token is right, the "learned"
  flag that :meth:`ForgettingTracker.record` counts forgetting events of.
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
    """Counts forgetting events per sample across calls (one call per epoch, on the same dataset).

    Calling the tracker classifies the dataset with a classifier; :meth:`record` takes the learned
    flags of any model directly (a causal LM's :func:`sequences_learned`, every ``k`` steps).
    """

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
        self.record(correct)

    def record(self, correct: np.ndarray) -> None:
        """Record one check: which samples are learned (classified correctly) now."""
        correct = np.asarray(correct, dtype=bool)
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


def _completion_logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits predicting each next token, the next tokens and the completion mask of a batch.

    The batch is cut to its longest sequence first (right padding: under causal attention the real
    tokens do not see it, so the result equals each sample on its own).
    """
    width = max(int(batch["attention_mask"].sum(1).max()), 1)
    out = model(input_ids=batch["input_ids"][:, :width], attention_mask=batch["attention_mask"][:, :width])
    logits = (out.logits if hasattr(out, "logits") else out)[:, :-1].float()
    targets = batch["labels"][:, 1:width]
    return logits, targets, targets != -100


@torch.no_grad()
def lm_el2n_scores(models: Sequence[nn.Module], dataset: data.Dataset, *, batch_size: int = 64) -> np.ndarray:
    """Mean over ``models`` of the mean over completion tokens of ``||softmax(logits) - onehot(next)||_2``.

    A sample without completion tokens (all truncated) scores 0.
    """
    if not models:
        raise ValueError("EL2N needs at least one model")
    total = np.zeros(len(dataset))
    for model in models:
        model.eval()
        out = []
        for batch in in_batches(dataset, batch_size):
            logits, targets, mask = _completion_logits(model, batch)
            p = F.softmax(logits, dim=-1)
            p = p.scatter_add(-1, targets.clamp(min=0).unsqueeze(-1), -torch.ones_like(p[..., :1]))  # p - onehot
            norm = torch.linalg.vector_norm(p, dim=-1) * mask
            out.append(norm.sum(1) / mask.sum(1).clamp(min=1))
        total += torch.cat(out).double().numpy()
    return total / len(models)


def lm_grand_scores(models: Sequence[nn.Module], dataset: data.Dataset) -> np.ndarray:
    """Mean over ``models`` of the norm of each sample's mean completion-token NLL gradient (all parameters).

    One forward and backward pass per sample, on the sample's own length (exact, no padding).
    A sample without completion tokens scores 0.
    """
    if not models:
        raise ValueError("GraNd needs at least one model")
    total = np.zeros(len(dataset))
    for model in models:
        model.eval()
        params = [p for p in model.parameters() if p.requires_grad]
        for i in range(len(dataset)):
            item = dataset[i]
            batch = {k: item[k].unsqueeze(0) for k in ("input_ids", "attention_mask", "labels")}
            with torch.enable_grad():
                logits, targets, mask = _completion_logits(model, batch)
                if not bool(mask.any()):
                    continue
                nll = F.cross_entropy(logits[mask], targets[mask])
                grads = torch.autograd.grad(nll, params, allow_unused=True)
            total[i] += float(torch.sqrt(sum(g.pow(2).sum() for g in grads if g is not None)))
    return total / len(models)


@torch.no_grad()
def sequences_learned(model: nn.Module, dataset: data.Dataset, *, batch_size: int = 256) -> np.ndarray:
    """Whether ``model`` (set to eval mode for the check, then restored) gets every completion token
    right by argmax under teacher forcing, per sample. A sample without completion tokens counts as learned.
    """
    was_training = model.training
    model.eval()
    out = []
    try:
        for batch in in_batches(dataset, batch_size):
            logits, targets, mask = _completion_logits(model, batch)
            out.append(((logits.argmax(-1) == targets) | ~mask).all(1).numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)


__all__ = ["ForgettingTracker", "el2n_scores", "grand_scores", "lm_el2n_scores", "lm_grand_scores",
           "sequences_learned"]
