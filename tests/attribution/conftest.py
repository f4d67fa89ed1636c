"""Shared fixtures for engine tests: softmax regression on scikit-learn's digits, exact gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.utils.data import TensorDataset

import stores
from attribution.data import Samples
from attribution.engine import score_matrix

N_TRAIN, N_QUERY, L2 = 300, 12, 1e-2


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    return torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)


def _train(x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> nn.Module:
    """Softmax regression trained to convergence (deterministic: LBFGS, fixed init)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 10))
    opt = torch.optim.LBFGS(model.parameters(), max_iter=200, tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y) + L2 * sum((p**2).sum() for p in model.parameters())
        loss.backward()
        return loss

    opt.step(closure)
    return model


@pytest.fixture(scope="session")
def setup() -> dict:
    x, y = _data()
    xt, yt, xq, yq = x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN : N_TRAIN + N_QUERY], y[N_TRAIN : N_TRAIN + N_QUERY]
    train, queries = TensorDataset(xt, yt), TensorDataset(xq, yq)
    ids, qids = [f"t{i}" for i in range(N_TRAIN)], [f"q{i}" for i in range(N_QUERY)]
    return {
        "xt": xt, "yt": yt, "xq": xq, "yq": yq, "model": _train(xt, yt),
        "train": train, "queries": queries, "ids": ids, "qids": qids,
        "tr": Samples(train, ids), "qs": Samples(queries, qids),  # what the engine takes
    }


def _per_sample_grads(model: nn.Module, fn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    params = {k: v.detach() for k, v in model.named_parameters()}

    def one(p, xi, yi):
        return fn(functional_call(model, p, (xi.unsqueeze(0),)), yi.unsqueeze(0))

    g = vmap(grad(one), in_dims=(None, 0, 0))(params, x, y)
    # kronfluence's layout per Linear: [weight | bias] as (out, in + 1)
    w, b = g["0.weight"], g["0.bias"]
    return torch.cat([w, b.unsqueeze(-1)], dim=-1).flatten(1)


def _ce(logits, y):
    return nn.functional.cross_entropy(logits, y, reduction="sum")


def _neg_margin(logits, y):
    true = logits.gather(1, y.unsqueeze(1)).squeeze(1)
    others = logits.scatter(1, y.unsqueeze(1), float("-inf"))
    return (others.logsumexp(-1) - true).sum()


def _matrix(store: stores.Store, run_id: str, qids: list[str], ids: list[str]) -> np.ndarray:
    return score_matrix(store, run_id, qids, ids)


def _model_copy(setup: dict) -> nn.Module:
    m = nn.Sequential(nn.Linear(64, 10))
    m.load_state_dict({k.replace("original_module.", ""): v for k, v in setup["model"].state_dict().items() if not k.endswith("_constant")})
    return m


