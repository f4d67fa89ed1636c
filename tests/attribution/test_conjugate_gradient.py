"""EK-FAC + CG: 0 iterations are the engine's EK-FAC scores, the GGN products are J^T H J, CG solves exactly.

- On a digits MLP the scores with 0 iterations equal the engine's (kronfluence's) EK-FAC pairwise
  scores up to float rounding, and 5 iterations lower every query's residual.
- The GGN products use EK-FAC's normalisation (per-sample summed loss, averaged over samples): the
  diagonal of G in each layer's Kronecker eigenbasis is about kronfluence's Lambda (sampled-label
  Fisher, an unbiased estimate of that diagonal).
- On a tiny MLP (186 tracked parameters) the products equal a dense ``J^T H J / N`` built with
  ``torch.autograd.functional.jacobian``, and CG reaches the exact damped solve.
- On a tiny GPT-2 (CausalLMTask, Conv1D linearised) the scores are finite and CG lowers residuals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from kronfluence.utils.constants import (
    ACTIVATION_EIGENVECTORS_NAME,
    GRADIENT_EIGENVECTORS_NAME,
    LAMBDA_MATRIX_NAME,
    NUM_LAMBDA_PROCESSED,
)
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import TensorDataset

import stores
from attribution.conjugate_gradient import (
    Preconditioner,
    cg_pairwise_scores,
    layer_damping,
    solution_scores,
    solve,
    solve_queries,
)
from attribution.data import Samples
from attribution.engine import EngineConfig, InfluenceEngine, score_matrix
from attribution.gauss_newton import GaussNewton, per_sample_gradients
from attribution.gradients import collate
from attribution.tasks import CausalLMTask, ClassifierTask
from tests.attribution.test_candidates import _fast_gc, _tiny_gpt2
from tests.attribution.test_causal_lm import PromptCompletion, _pairs


def _fit(tmp_path, model: nn.Module, task, train, queries, batch_size: int, damping: float | None = None) -> dict:
    """The engine's EK-FAC pairwise scores and its factors, for a model, task and data."""
    ids, qids = [f"t{i}" for i in range(len(train))], [f"q{i}" for i in range(len(queries))]
    tr, qs = Samples(train, ids), Samples(queries, qids)
    store = stores.open(tmp_path / "s")
    with _fast_gc():
        eng = InfluenceEngine(store, model, task, EngineConfig(strategy="ekfac", damping=damping,
                                                               batch_size=batch_size, shard_size=len(train)))
        run = eng.pairwise_scores("b", tr, qs)
        factors = eng.load_factors(tr)
    return {"engine": eng, "model": eng.model, "task": task, "factors": factors, "train": train,
            "queries": queries, "full": score_matrix(store, run.run_id, qids, ids)}


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A digits MLP 64-32-10, trained briefly (not saturated: sampled-label Fisher is then a fair
    estimate of the GGN), 300 training samples and 8 queries."""
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(40):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[:300]), y[:300]).backward()
        opt.step()
    train, queries = TensorDataset(x[:300], y[:300]), TensorDataset(x[300:308], y[300:308])
    return _fit(tmp_path_factory.mktemp("digits"), model.eval(), ClassifierTask(), train, queries, 100)


def test_zero_iterations_equal_engine_ekfac_scores(digits: dict) -> None:
    d = digits
    scores, info = cg_pairwise_scores(d["model"], d["task"], d["factors"], None, d["queries"], d["train"],
                                      iterations=0, batch_size=100, start="ekfac")
    scale = np.abs(d["full"]).max()
    diff = np.abs(scores - d["full"]).max()
    print(f"digits: 0 iterations vs engine EK-FAC, max |diff| / max |score| = {diff / scale:.2g}; "
          f"EK-FAC residuals {np.round(info['residual_before'], 2)}")
    assert scores.shape == d["full"].shape and scores.dtype == np.float32
    np.testing.assert_allclose(scores, d["full"], rtol=0, atol=1e-5 * scale)
    assert info["iterations"] == 0 and np.array_equal(info["residual_before"], info["residual_after"])
    assert info["fit_examples"] == 300 and set(info["damping"]) == {"0", "2"}
    # the two steps the engine would call per shard: solve once, score any training indices
    sol = solve_queries(d["model"], d["task"], d["factors"], None, d["queries"], d["train"], iterations=0,
                        start="ekfac")
    part = solution_scores(d["model"], d["task"], sol.solutions, d["train"], [7, 3, 250], batch_size=2)
    np.testing.assert_allclose(part, scores[:, [7, 3, 250]], rtol=0, atol=1e-6 * scale)

    five, info5 = cg_pairwise_scores(d["model"], d["task"], d["factors"], None, d["queries"], d["train"],
                                     iterations=5, batch_size=100, query_batch_size=5)  # 2 query blocks
    print("digits: residuals per step (queries x steps)\n", np.round(info5["residual_history"].T, 3))
    assert info5["residual_history"].shape == (6, 8)
    # far closer than EK-FAC's own answer, and than the rescaled start (per query the 2-norm may rise on a step)
    assert (info5["residual_after"] < 0.1 * info["residual_before"]).all()
    assert np.median(info5["residual_after"]) < 0.5 * np.median(info5["residual_before"])
    assert np.isfinite(five).all() and not np.allclose(five, scores)
    # the solve refines EK-FAC's answer, it does not replace it: the scores stay correlated
    assert np.corrcoef(five.ravel(), scores.ravel())[0, 1] > 0.3


def test_ggn_normalisation_matches_ekfac_eigenvalues(digits: dict) -> None:
    """diag(Q^T G Q) in each layer's eigenbasis vs kronfluence's Lambda / num processed.

    Lambda is the sampled-label Fisher, an unbiased estimate of exactly that diagonal (its
    expectation over labels is the GGN for softmax cross-entropy), but with one label per sample
    it is noisy (measured: layer traces 1.3-1.45x below the GGN's with the 300 samples alone, about
    1.5 standard deviations of the draw). Fitted on the training set repeated 10 times (10 labels
    per sample; the mean over samples is unchanged) it is within a few percent. A wrong
    normalisation (summed instead of averaged over samples) would be off by 300x.
    """
    d = digits
    x, y = d["train"].tensors
    repeated = TensorDataset(x.repeat(10, 1), y.repeat(10))
    factors = d["engine"].load_factors(Samples(repeated, [f"r{i}" for i in range(len(repeated))]))
    ggn = GaussNewton(d["model"], d["task"], d["train"], batch_size=100)
    shapes = {n: factors[LAMBDA_MATRIX_NAME][n].shape for n in ggn.layers}
    for name in ggn.layers:
        lam = (factors[LAMBDA_MATRIX_NAME][name] / factors[NUM_LAMBDA_PROCESSED][name]).double()
        assert int(factors[NUM_LAMBDA_PROCESSED][name]) == 3000
        q_out, q_in = factors[GRADIENT_EIGENVECTORS_NAME][name].float(), factors[ACTIVATION_EIGENVECTORS_NAME][name].float()
        # the 40 directions of largest Lambda: those dominate the preconditioner
        top = lam.flatten().argsort(descending=True)[:40]
        basis = torch.zeros(len(top), lam.numel())
        basis[torch.arange(len(top)), top] = 1
        vecs = {n: torch.zeros(len(top), *s) for n, s in shapes.items()}
        vecs[name] = q_out @ basis.view(len(top), *lam.shape) @ q_in.T
        diag = (ggn(vecs)[name] * vecs[name]).flatten(1).sum(1).double()
        ratio = diag.sum() / lam.flatten()[top].sum()
        corr = np.corrcoef(diag.numpy(), lam.flatten()[top].numpy())[0, 1]
        print(f"layer {name}: sum diag(Q^T G Q) / sum Lambda over the top 40 = {ratio:.3f}, correlation {corr:.3f}")
        assert 0.8 < ratio < 1.25 and corr > 0.9


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An MLP 8-12-6 (186 tracked parameters) on random data, 64 samples, and its dense GGN."""
    torch.manual_seed(1)
    x, y = torch.randn(64, 8), torch.randint(0, 6, (64,))
    xq, yq = torch.randn(3, 8), torch.randint(0, 6, (3,))
    model = nn.Sequential(nn.Linear(8, 12), nn.Tanh(), nn.Linear(12, 6))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    fit = _fit(tmp_path_factory.mktemp("tiny"), model.eval(), ClassifierTask(), TensorDataset(x, y),
               TensorDataset(xq, yq), 16)
    # dense G = (1/N) sum_n J_n^T H_n J_n over the flat layout [layer 0 (12 x 9), layer 2 (6 x 13)]
    m = fit["model"]
    shapes = {"0": (12, 9), "2": (6, 13)}
    w0, w2 = m[0].original_module, m[2].original_module
    flat = torch.cat([torch.cat([w.weight, w.bias[:, None]], 1).flatten() for w in (w0, w2)]).detach().double()

    def logits(theta: torch.Tensor) -> torch.Tensor:
        a, b = theta[:108].view(12, 9), theta[108:].view(6, 13)
        h = torch.tanh(x.double() @ a[:, :8].T + a[:, 8])
        return h @ b[:, :12].T + b[:, 12]

    jac = torch.autograd.functional.jacobian(logits, flat)  # (64, 6, 186)
    p = logits(flat).softmax(-1)
    hess = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    dense = torch.einsum("nap,nab,nbq->pq", jac, hess, jac) / len(x)
    return {**fit, "shapes": shapes, "dense": dense}


def _split(flat: torch.Tensor, shapes: dict[str, tuple[int, int]]) -> dict[str, torch.Tensor]:
    out, lo = {}, 0
    for name, (o, i) in shapes.items():
        out[name] = flat[:, lo: lo + o * i].reshape(-1, o, i).float()
        lo += o * i
    return out


def _join(vectors: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.flatten(1) for v in vectors.values()], 1).double()


def test_ggn_products_equal_dense_jacobian_ggn(tiny: dict) -> None:
    ggn = GaussNewton(tiny["model"], tiny["task"], tiny["train"], batch_size=10)  # uneven batches
    vectors = torch.randn(5, 186, dtype=torch.float64)
    got = _join(ggn(_split(vectors, tiny["shapes"])))
    expected = vectors @ tiny["dense"]
    err = (got - expected).abs().max() / expected.abs().max()
    print(f"tiny MLP: GGN products vs dense J^T H J / N, max relative error {err:.2g}")
    assert err < 1e-5
    eig = torch.linalg.eigvalsh(tiny["dense"])
    assert eig.min() > -1e-10  # positive semi-definite: what CG needs


def test_cg_reaches_the_exact_damped_solve(tiny: dict) -> None:
    model, factors, shapes = tiny["model"], tiny["factors"], tiny["shapes"]
    pre = Preconditioner(model, factors, "ekfac", None)
    lam = layer_damping(model, factors, "ekfac", None)
    damping = torch.cat([torch.full((o * i,), lam[n], dtype=torch.float64) for n, (o, i) in shapes.items()])
    rhs = per_sample_gradients(model, lambda b, m: tiny["task"].compute_measurement(b, m),
                               collate(tiny["queries"], range(3)))
    exact = torch.linalg.solve(tiny["dense"] + torch.diag(damping), _join(rhs).T).T  # (3, 186)
    ggn = GaussNewton(model, tiny["task"], tiny["train"], batch_size=64)

    start = solve(ggn, pre, rhs, iterations=0, start="ekfac")
    np.testing.assert_allclose(_join(start.solutions).numpy(), _join(pre(rhs)).numpy())  # x0 = EK-FAC's
    # the default start: EK-FAC's answer times a positive factor per query, no farther from the solution in A-norm
    scaled = _join(solve(ggn, pre, rhs, iterations=0).solutions)
    ratio = (scaled * _join(start.solutions)).sum(1) / _join(start.solutions).square().sum(1)
    np.testing.assert_allclose(scaled.numpy(), (ratio[:, None] * _join(start.solutions)).numpy(), rtol=1e-5, atol=1e-9)
    system = tiny["dense"] + torch.diag(damping)
    a_err = lambda x: torch.einsum("qi,ij,qj->q", x - exact, system, x - exact)  # noqa: E731
    assert (ratio > 0).all() and (a_err(scaled) <= a_err(_join(start.solutions)) + 1e-12).all()
    sol = solve(ggn, pre, rhs, iterations=60, tolerance=1e-7)
    err = ((_join(sol.solutions) - exact).norm(dim=1) / exact.norm(dim=1)).numpy()
    err0 = ((_join(start.solutions) - exact).norm(dim=1) / exact.norm(dim=1)).numpy()
    hist = sol.residuals
    print(f"tiny MLP: relative error vs exact solve, EK-FAC {np.round(err0, 3)} -> CG {err}; "
          f"residuals (steps x queries) {np.array2string(hist[::5], precision=2)}")
    assert (err < 1e-3).all() and (err0 > 10 * err).all()
    # the recurrence's residual is the true one
    true = _join(rhs) - (_join(ggn(sol.solutions)) + damping * _join(sol.solutions))
    np.testing.assert_allclose(true.norm(dim=1) / _join(rhs).norm(dim=1), hist[-1], rtol=0.05, atol=1e-6)
    # monotone-ish: every 5 steps lower, and never more than 2x above the best so far
    assert (np.diff(hist[::5], axis=0) < 0).all() or (hist[-1] < 1e-6).all()
    assert (hist <= 2 * np.minimum.accumulate(hist, axis=0)).all()
    # a query stops at the tolerance; the solve ends when every query has
    early = solve(ggn, pre, rhs, iterations=60, tolerance=1e-2)
    assert early.residuals.shape[0] < 40 and (early.residual_after <= 1e-2).all()


def test_tiny_gpt2_causal_lm(tmp_path: Path) -> None:
    model = _tiny_gpt2()
    task = CausalLMTask(model)
    fit = _fit(tmp_path, model, task, PromptCompletion(_pairs(32)), PromptCompletion(_pairs(4, 1000)), 16)
    args = (fit["model"], task, fit["factors"], None, fit["queries"], fit["train"])
    zero, _ = cg_pairwise_scores(*args, iterations=0, batch_size=16, start="ekfac")
    scale = np.abs(fit["full"]).max()
    np.testing.assert_allclose(zero, fit["full"], rtol=0, atol=1e-5 * scale)
    scores, info = cg_pairwise_scores(*args, iterations=3, batch_size=16, max_examples=24)
    print("tiny GPT-2: residuals per step (queries x steps)\n", np.round(info["residual_history"].T, 3))
    assert scores.shape == (4, 32) and np.isfinite(scores).all()
    assert info["fit_examples"] == 24 and len(info["damping"]) == 4
    assert (info["residual_after"] < info["residual_before"]).all()
    # G is symmetric and positive semi-definite on the LM too
    ggn = GaussNewton(fit["model"], task, fit["train"], batch_size=16)
    torch.manual_seed(0)
    u = {n: torch.randn(2, *f.shape) for n, f in fit["factors"][LAMBDA_MATRIX_NAME].items()}
    gu = ggn(u)
    uv = sum((gu[n][0] * u[n][1]).sum() for n in u)
    vu = sum((gu[n][1] * u[n][0]).sum() for n in u)
    assert abs(uv - vu) < 1e-4 * abs(uv) + 1e-6
    assert all(sum((gu[n][k] * u[n][k]).sum() for n in u) > 0 for k in range(2))


def test_bad_input_is_named(digits: dict) -> None:
    d = digits
    for strategy in ("identity", "kfac"):
        with pytest.raises(ValueError, match="damped preconditioner"):
            layer_damping(d["model"], d["factors"], strategy, None)
    ggn = GaussNewton(d["model"], d["task"], d["train"], batch_size=100)
    with pytest.raises(ValueError, match="cover exactly the tracked layers"):
        ggn({"0": torch.zeros(1, 32, 65)})
    with pytest.raises(ValueError, match="iterations"):
        solve(ggn, Preconditioner(d["model"], d["factors"], "ekfac", None), {}, iterations=-1)
    d["model"].train()
    try:
        with pytest.raises(ValueError, match="training mode"):
            cg_pairwise_scores(d["model"], d["task"], d["factors"], None, d["queries"], d["train"])
    finally:
        d["model"].eval()
