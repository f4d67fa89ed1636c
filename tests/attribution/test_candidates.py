"""Candidate scoring equals kronfluence's pairwise scores at the candidate pairs, for every strategy.

The reference is the engine's full (queries x training samples) matrix from kronfluence, gathered
at random candidates. Measured on this machine: max |difference| / max |score| at most 1.9e-7 on
the digits classifier and 1.8e-7 on the tiny GPT-2, for ekfac, kfac, diagonal (heuristic and
fixed damping) and identity, i.e. one or two float32 steps of the largest score (the engine
stores float32). The tolerance below (1e-5 of the score scale) leaves room for BLAS differences
only, not for any mismatch in the math.
"""

from __future__ import annotations

import contextlib
import gc

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

import stores
from attribution.candidates import candidate_scores
from attribution.data import Samples
from attribution.engine import EngineConfig, InfluenceEngine, score_matrix
from attribution.strategies import KRONFLUENCE_STRATEGIES as STRATEGIES  # ekfac_cg: test_engine_cg
from attribution.tasks import CausalLMTask, ClassifierTask, linearize_conv1d
from tests.attribution.conftest import _model_copy
from tests.attribution.test_causal_lm import PAD, VOCAB, _pairs
from tests.attribution.test_causal_lm import PromptCompletion as _PromptCompletion

DAMPINGS = (None, 1e-3)
# identity ignores damping (kronfluence's Identity.prepare has none): one run is enough
CASES = [(s, d) for s in STRATEGIES for d in DAMPINGS if s != "identity" or d is None]
TOLERANCE = 1e-5  # of the largest |score| in the full matrix

def _tiny_gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(VOCAB), n_positions=16, n_embd=32, n_layer=2, n_head=2,
                     bos_token_id=PAD, eos_token_id=PAD, pad_token_id=PAD)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # break the init's symmetry a little so that every layer's factors matter
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return linearize_conv1d(model)


@contextlib.contextmanager
def _fast_gc():
    """kronfluence runs gc.collect() several times per call; with the test session's heap frozen
    each takes milliseconds instead of a quarter of a second."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _candidates(n_queries: int, n_train: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(n_train, k, replace=False) for _ in range(n_queries)])


def _check(got: np.ndarray, full: np.ndarray, cand: np.ndarray, label: str) -> None:
    expected = np.take_along_axis(full, cand, axis=1)
    scale = np.abs(full).max()
    diff = np.abs(got - expected).max()
    print(f"{label}: max |diff| {diff:.3g}, relative to max |score| {diff / scale:.3g}")
    assert got.shape == cand.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE * scale)


@pytest.fixture(scope="module")
def digits(setup: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Full engine scores of the digits classifier for every strategy and damping."""
    store = stores.open(tmp_path_factory.mktemp("digits") / "s")
    model = _model_copy(setup)
    engines, full = {}, {}
    for strategy, damping in CASES:
        with _fast_gc():
            eng = InfluenceEngine(store, model, ClassifierTask(),
                                  EngineConfig(strategy=strategy, damping=damping, batch_size=100, shard_size=300))
            run = eng.pairwise_scores("b", setup["tr"], setup["qs"])
            engines[strategy, damping] = eng
            full[strategy, damping] = score_matrix(store, run.run_id, setup["qids"], setup["ids"])
    return {"engines": engines, "full": full, "cand": _candidates(len(setup["qids"]), len(setup["ids"]), 20, 0)}


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Full engine scores of a tiny GPT-2 (prompt-masked completion loss) for every strategy and damping."""
    store = stores.open(tmp_path_factory.mktemp("gpt2") / "s")
    model = _tiny_gpt2()
    task = CausalLMTask(model)
    ids, qids = [f"t{i}" for i in range(64)], [f"q{i}" for i in range(6)]
    train, queries = Samples(_PromptCompletion(_pairs(64)), ids), Samples(_PromptCompletion(_pairs(6, 1000)), qids)
    engines, full = {}, {}
    for strategy, damping in CASES:
        with _fast_gc():
            eng = InfluenceEngine(store, model, task, EngineConfig(strategy=strategy, damping=damping, batch_size=32,
                                                                    query_batch_size=8, shard_size=64))
            run = eng.pairwise_scores("b", train, queries)
            engines[strategy, damping] = eng
            full[strategy, damping] = score_matrix(store, run.run_id, qids, ids)
    return {"engines": engines, "full": full, "train": train, "queries": queries,
            "cand": _candidates(len(qids), len(ids), 10, 1)}


@pytest.mark.parametrize("strategy,damping", CASES)
def test_equals_full_scores_on_digits(digits: dict, setup: dict, strategy: str, damping: float | None) -> None:
    eng = digits["engines"][strategy, damping]
    got = eng.candidate_scores(setup["tr"], setup["qs"], digits["cand"])
    _check(got, digits["full"][strategy, damping], digits["cand"], f"digits {strategy} damping={damping}")


@pytest.mark.parametrize("strategy,damping", CASES)
def test_equals_full_scores_on_tiny_gpt2(gpt2: dict, strategy: str, damping: float | None) -> None:
    eng = gpt2["engines"][strategy, damping]
    got = eng.candidate_scores(gpt2["train"], gpt2["queries"], gpt2["cand"])
    _check(got, gpt2["full"][strategy, damping], gpt2["cand"], f"gpt2 {strategy} damping={damping}")


def test_chunking_and_caching_do_not_change_scores(gpt2: dict) -> None:
    eng = gpt2["engines"]["ekfac", None]
    factors, strategy = eng.load_factors(gpt2["train"]), eng.config.strategy
    args = (eng.model, eng.task, factors, strategy, None, gpt2["queries"].data, gpt2["train"].data, gpt2["cand"])
    one = candidate_scores(*args, batch_size=16, query_batch_size=2)
    module_bytes = 4 * 32 * 4 * 33  # a c_fc layer: out 128 x in 33 (bias column) floats per query
    for budget, cache in [(1, 2**31), (1, 0), (6 * module_bytes, 2**31), (6 * module_bytes, 0)]:
        # one query of one module per chunk, or a few modules per chunk; training factors kept or recomputed
        chunked = candidate_scores(*args, batch_size=16, query_batch_size=2, max_query_bytes=budget,
                                   max_cache_bytes=cache)
        np.testing.assert_array_equal(chunked, one)
    # other batch sizes only change float rounding
    other = candidate_scores(*args, batch_size=5, query_batch_size=3)
    np.testing.assert_allclose(other, one, rtol=0, atol=TOLERANCE * np.abs(one).max())


def test_tiles_and_blocks_only_change_rounding(gpt2: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small tiles (with a zero-padded last tile) and one-batch blocks give the same scores."""
    import attribution.candidates as candidates

    eng = gpt2["engines"]["kfac", None]
    factors, strategy = eng.load_factors(gpt2["train"]), eng.config.strategy
    args = (eng.model, eng.task, factors, strategy, None, gpt2["queries"].data, gpt2["train"].data, gpt2["cand"])
    one = candidate_scores(*args, batch_size=16)
    monkeypatch.setattr(candidates, "_TILE", 100)  # c_fc: 43 tiles of 3 rows for 128 rows
    monkeypatch.setattr(candidates, "_BLOCK", 1)
    tiled = candidate_scores(*args, batch_size=16)
    np.testing.assert_allclose(tiled, one, rtol=0, atol=TOLERANCE * np.abs(one).max())
    _check(tiled, gpt2["full"]["kfac", None], gpt2["cand"], "gpt2 kfac small tiles")


def test_duplicate_candidates_and_empty_input(digits: dict, setup: dict) -> None:
    eng = digits["engines"]["ekfac", None]
    cand = np.array([[5, 5, 7, 5]] * len(setup["qids"]))
    got = eng.candidate_scores(setup["tr"], setup["qs"], cand, progress=True)
    _check(got, digits["full"]["ekfac", None], cand, "digits duplicates")
    assert (got[:, 0] == got[:, 1]).all() and (got[:, 0] == got[:, 3]).all()
    empty = eng.candidate_scores(setup["tr"], setup["qs"], np.zeros((len(setup["qids"]), 0), dtype=int))
    assert empty.shape == (len(setup["qids"]), 0)


def test_bad_input_is_named(digits: dict, setup: dict) -> None:
    eng = digits["engines"]["ekfac", None]
    factors = eng.load_factors(setup["tr"])
    args = (eng.model, eng.task, factors, "ekfac", None, setup["queries"], setup["train"])
    n_q = len(setup["qids"])
    with pytest.raises(ValueError, match=r"candidates\[2, 1\] = 300 is not a training index"):
        bad = np.zeros((n_q, 3), dtype=int)
        bad[2, 1] = 300
        candidate_scores(*args, bad)
    with pytest.raises(ValueError, match="12 rows"):
        candidate_scores(*args, np.zeros((3, 3), dtype=int))
    with pytest.raises(ValueError, match="integer"):
        candidate_scores(*args, np.zeros((n_q, 3)))
    with pytest.raises(ValueError, match="unknown strategy"):
        candidate_scores(eng.model, eng.task, factors, "exact", None, setup["queries"], setup["train"],
                         np.zeros((n_q, 3), dtype=int))
    with pytest.raises(ValueError, match="strategy 'ekfac' needs factor"):
        candidate_scores(eng.model, eng.task, {}, "ekfac", None, setup["queries"], setup["train"],
                         np.zeros((n_q, 3), dtype=int))
    eng.model.train()
    try:
        with pytest.raises(ValueError, match="training mode"):
            candidate_scores(*args, np.zeros((n_q, 3), dtype=int))
    finally:
        eng.model.eval()
    unprepared = torch.nn.Sequential(torch.nn.Linear(64, 10)).eval()
    with pytest.raises(ValueError, match="no kronfluence-tracked modules"):
        candidate_scores(unprepared, eng.task, factors, "ekfac", None, setup["queries"], setup["train"],
                         np.zeros((n_q, 3), dtype=int))
