"""``inverse_hessian_products`` applies the same damped inverse Hessian the engine scores with.

Under :class:`LossMeasurementTask` the engine's pairwise score of (query q, training sample t) is
``grad L(q)^T H^-1 grad L(t)`` with kronfluence's factors and damping; H^-1 is symmetric, so
preconditioning either side and taking the dot product with the other must give the engine's
number for every strategy, up to float32 rounding (max |diff| / max |score| about 2e-7 measured).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import stores
from attribution.data import Samples
from attribution.engine import EngineConfig, InfluenceEngine, score_matrix
from attribution.models import MLP
from attribution.preconditioning import inverse_hessian_products, layer_gradient
from attribution.strategies import KRONFLUENCE_STRATEGIES as STRATEGIES  # ekfac_cg: test_engine_cg
from attribution.tasks import ClassifierTask, LossMeasurementTask
from tests.helpers import fast_gc

N_TRAIN, N_QUERY = 48, 6
TOLERANCE = 1e-5  # of the largest |score|: BLAS rounding only
CASES = [(s, None) for s in STRATEGIES] + [("ekfac", 1e-3), ("diagonal", 1e-3)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 5-6-3 MLP trained briefly on random data (3 classes), its data and a store."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N_TRAIN + N_QUERY, 5, generator=gen)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    torch.manual_seed(0)
    net = MLP(5, [6], 3)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    train = Samples(TensorDataset(x[:N_TRAIN], y[:N_TRAIN]), [f"t{i}" for i in range(N_TRAIN)])
    queries = Samples(TensorDataset(x[N_TRAIN:], y[N_TRAIN:]), [f"q{i}" for i in range(N_QUERY)])
    return {"net": net.eval(), "x": x, "y": y, "train": train, "queries": queries,
            "store": stores.open(tmp_path_factory.mktemp("pre") / "st", create=True)}


def _gradients(model: nn.Module, task: LossMeasurementTask, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """One sample's training-loss gradient per Linear layer, computed on an unprepared model."""
    model.zero_grad(set_to_none=True)
    task.compute_train_loss((x.unsqueeze(0), y.unsqueeze(0)), model).backward()
    return {name: layer_gradient(m) for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def _dot(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return float(sum((a[k].double() * b[k].double()).sum() for k in a))


def _engine(tiny: dict, strategy: str, damping: float | None) -> tuple[InfluenceEngine, np.ndarray]:
    task = LossMeasurementTask(ClassifierTask())
    with fast_gc():
        eng = InfluenceEngine(tiny["store"], copy.deepcopy(tiny["net"]), task,
                              EngineConfig(strategy=strategy, damping=damping, batch_size=16))
        run = eng.pairwise_scores("b", tiny["train"], tiny["queries"])
    return eng, score_matrix(tiny["store"], run.run_id, tiny["queries"].ids, tiny["train"].ids)


@pytest.mark.parametrize("strategy,damping", CASES)
def test_products_reproduce_the_engines_pairwise_scores(tiny: dict, strategy: str, damping: float | None) -> None:
    eng, full = _engine(tiny, strategy, damping)
    factors = eng.load_factors(tiny["train"])
    plain, task = copy.deepcopy(tiny["net"]), eng.task
    x, y = tiny["x"], tiny["y"]
    train_grads = [_gradients(plain, task, x[t], y[t]) for t in range(N_TRAIN)]
    pre_train = [inverse_hessian_products(eng.model, factors, strategy, damping, g) for g in train_grads]
    query_side = np.zeros_like(full)  # (H^-1 g_q) . g_t
    train_side = np.zeros_like(full)  # g_q . (H^-1 g_t)
    raw = np.zeros_like(full)  # g_q . g_t, no preconditioning
    for q in range(N_QUERY):
        g_q = _gradients(plain, task, x[N_TRAIN + q], y[N_TRAIN + q])
        p_q = inverse_hessian_products(eng.model, factors, strategy, damping, g_q)
        assert p_q.keys() == g_q.keys() and all(p_q[k].shape == g_q[k].shape for k in g_q)
        for t in range(N_TRAIN):
            query_side[q, t] = _dot(p_q, train_grads[t])
            train_side[q, t] = _dot(g_q, pre_train[t])
            raw[q, t] = _dot(g_q, train_grads[t])
    scale = np.abs(full).max()
    np.testing.assert_allclose(query_side, full, rtol=0, atol=TOLERANCE * scale)
    np.testing.assert_allclose(train_side, full, rtol=0, atol=TOLERANCE * scale)
    if strategy == "identity":
        np.testing.assert_allclose(raw, full, rtol=0, atol=TOLERANCE * scale)
    else:  # the products do precondition: plain gradient dot products are far from the scores
        assert np.abs(raw - full).max() > 1e-2 * scale


def test_identity_returns_a_copy_of_the_gradient(tiny: dict) -> None:
    eng, _ = _engine(tiny, "identity", None)
    factors = eng.load_factors(tiny["train"])
    grads = _gradients(copy.deepcopy(tiny["net"]), eng.task, tiny["x"][0], tiny["y"][0])
    out = inverse_hessian_products(eng.model, factors, "identity", None, grads)
    for name, g in grads.items():
        torch.testing.assert_close(out[name], g, rtol=0, atol=0)
        assert out[name].data_ptr() != g.data_ptr()


def test_layer_gradient_layout_and_missing_grad() -> None:
    layer = nn.Linear(3, 2)
    assert torch.equal(layer_gradient(layer), torch.zeros(2, 4))  # no backward yet: zeros, bias column included
    x = torch.tensor([[1.0, 2.0, 3.0]])
    layer(x).sum().backward()
    g = layer_gradient(layer)
    assert g.shape == (2, 4)
    torch.testing.assert_close(g[:, :3], layer.weight.grad)
    torch.testing.assert_close(g[:, 3], layer.bias.grad)
    no_bias = nn.Linear(3, 2, bias=False)
    no_bias(x).sum().backward()
    assert layer_gradient(no_bias).shape == (2, 3)


def test_unknown_layer_is_refused_by_name(tiny: dict) -> None:
    eng, _ = _engine(tiny, "ekfac", None)
    factors = eng.load_factors(tiny["train"])
    grads = _gradients(copy.deepcopy(tiny["net"]), eng.task, tiny["x"][0], tiny["y"][0])
    with pytest.raises(ValueError, match=r"not tracked: net\.9"):
        inverse_hessian_products(eng.model, factors, "ekfac", None, {**grads, "net.9": torch.zeros(3, 7)})


@pytest.mark.parametrize("shape", [(6, 5), (5, 6), (6, 7)])  # net.0 expects (6, 5 + bias) = (6, 6)
def test_wrong_shape_is_refused_naming_the_layer(tiny: dict, shape: tuple[int, int]) -> None:
    eng, _ = _engine(tiny, "ekfac", None)
    factors = eng.load_factors(tiny["train"])
    grads = _gradients(copy.deepcopy(tiny["net"]), eng.task, tiny["x"][0], tiny["y"][0])
    grads["net.0"] = torch.zeros(shape)
    with pytest.raises(ValueError, match=r"layer 'net\.0'.*\(6, 6\)"):
        inverse_hessian_products(eng.model, factors, "ekfac", None, grads)


def test_missing_tracked_layer_is_refused(tiny: dict) -> None:
    eng, _ = _engine(tiny, "ekfac", None)
    factors = eng.load_factors(tiny["train"])
    grads = _gradients(copy.deepcopy(tiny["net"]), eng.task, tiny["x"][0], tiny["y"][0])
    del grads["net.2"]
    with pytest.raises(ValueError, match=r"net\.2"):
        inverse_hessian_products(eng.model, factors, "ekfac", None, grads)


def test_unprepared_model_is_refused(tiny: dict) -> None:
    grads = _gradients(copy.deepcopy(tiny["net"]), LossMeasurementTask(ClassifierTask()), tiny["x"][0], tiny["y"][0])
    with pytest.raises(ValueError, match="no kronfluence-tracked modules"):
        inverse_hessian_products(tiny["net"], {}, "identity", None, grads)
