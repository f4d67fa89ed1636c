"""Training-dynamics scores (EL2N, GraNd, forgetting events) against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from attribution.dynamics import ForgettingTracker, el2n_scores, grand_scores
from attribution.models import MLP


def _data(n: int = 40, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g))


def _models(k: int = 2) -> list[MLP]:
    out = []
    for s in range(k):
        torch.manual_seed(s)
        out.append(MLP(5, [7], 3).eval())
    return out


def test_el2n_is_the_mean_norm_of_softmax_minus_onehot() -> None:
    ds, models = _data(), _models()
    x, y = ds.tensors
    want = np.mean([torch.linalg.vector_norm(F.softmax(m(x), -1) - F.one_hot(y, 3), dim=-1).detach().numpy()
                    for m in models], axis=0)
    np.testing.assert_allclose(el2n_scores(models, ds, batch_size=7), want, rtol=1e-6)


def test_grand_is_the_mean_per_sample_gradient_norm() -> None:
    ds, models = _data(12), _models()
    want = np.zeros(12)
    for m in models:
        for i in range(12):
            x, y = ds[i]
            m.zero_grad()
            F.cross_entropy(m(x.unsqueeze(0)), y.unsqueeze(0)).backward()
            want[i] += torch.sqrt(sum((p.grad ** 2).sum() for p in m.parameters())).item()
    np.testing.assert_allclose(grand_scores(models, ds), want / len(models), rtol=1e-5)


def test_forgetting_counts_correct_to_incorrect_moves() -> None:
    ds = _data(6)
    x, y = ds.tensors

    class Fixed(torch.nn.Module):  # predicts a given label per sample, by position
        def __init__(self, labels):
            super().__init__()
            self.labels = torch.as_tensor(labels)

        def forward(self, inputs):
            return F.one_hot(self.labels[: len(inputs)], 3).float()

    tracker = ForgettingTracker(6)
    wrong = (y + 1) % 3
    # sample 0: right, wrong, right, wrong -> 2 events; sample 1: always right -> 0; sample 2: never right -> inf
    plans = [[y[0], y[1], wrong[2], y[3], wrong[4], y[5]],
             [wrong[0], y[1], wrong[2], wrong[3], wrong[4], y[5]],
             [y[0], y[1], wrong[2], y[3], y[4], wrong[5]],
             [wrong[0], y[1], wrong[2], y[3], y[4], y[5]]]
    for plan in plans:
        tracker(Fixed(plan), ds, batch_size=6)
    np.testing.assert_array_equal(tracker.scores(), [2, 0, np.inf, 1, 0, 1])
    with pytest.raises(ValueError, match="made for 6"):
        tracker(Fixed(plans[0]), _data(5), batch_size=6)


def test_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one model"):
        el2n_scores([], _data())
    with pytest.raises(ValueError, match="no epoch"):
        ForgettingTracker(3).scores()
