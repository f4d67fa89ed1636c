"""Candidate ("prefiltered") pairwise influence: each query scored only against its top-K training samples.

kronfluence's pairwise scoring costs queries x training samples: it rescans the whole training set
for every query batch, and preconditions each query gradient with dense rotations
(out x out x in per layer). With a candidate prefilter (Grosse et al.: TF-IDF or embeddings pick
K ~ 50-100 training samples per query, see :mod:`attribution.prefilter`) only Q x K pairs are
needed, so this module computes exactly those, from the factors kronfluence fitted (given, not
fitted here: :meth:`~attribution.engine.InfluenceEngine.candidate_scores` passes an engine's):

- each sample's gradient of a tracked Linear is ``S^T X`` (output gradients x inputs, summed over
  tokens; a ones column on X when the layer has a bias), kronfluence's (out, in) layout;
- EK-FAC / K-FAC work in the eigenbasis without rotating back: ``R = (S Q_S)^T (X Q_A)`` costs
  T (out^2 + in^2 + out in) for T tokens, far less than out in (out + in) when T is small;
  a query is ``P = R_q / (Lambda + damping)`` (EK-FAC's fitted Lambda, K-FAC's eigenvalue
  outer product); diagonal divides the raw gradient by its Lambda; identity uses it as is;
- ``score(q, n) = sum over modules of <P_q, R_n>``: kronfluence's number, since the eigenbases are
  orthogonal, up to float rounding (tests check equality against the engine's full scores);
- queries and training samples (the union of the candidates) each go through one forward and
  backward pass; their gradients are kept as compact per-token factors (T x (out + in) floats).
  Dense preconditioned queries are built a group of modules at a time (bounded by
  ``max_query_bytes``); dense training gradients are built a tile (a few rows of out x in) at a
  time for blocks of training samples, in cache, and never stored;
- each (query, sample) pair is one sampled dot product per tile (a CSR ``sampled_addmm``):
  nothing is computed for pairs outside the candidates. This part costs Q x K x sum(out x in)
  multiply-adds, bounded by memory bandwidth rather than arithmetic on CPU.

Scores follow the engine's (and kronfluence's) convention: positive means training on the sample
lowered the query's measurement (loss), i.e. made the behaviour more likely. Trailing token
positions whose output gradient is exactly zero (padding after the last supervised token) are
dropped before the rotations; they contribute nothing to any gradient.

The candidate pick is biased toward lexical overlap (a sample can matter without sharing words):
reports must say when scores came from a prefilter.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from kronfluence.module.tracked_module import TrackedModule
from kronfluence.utils.constants import (
    ACTIVATION_EIGENVALUES_NAME,
    ACTIVATION_EIGENVECTORS_NAME,
    GRADIENT_EIGENVALUES_NAME,
    GRADIENT_EIGENVECTORS_NAME,
    LAMBDA_MATRIX_NAME,
    NUM_LAMBDA_PROCESSED,
)
from torch import nn
from torch.utils import data

from .damping import heuristic_damping
from .gradients import token_factors
from .lengths import length_sorted, sample_lengths, trim_padding_collate
from .strategies import check_strategy, factor_strategy
from .tasks import InfluenceTask

# Dot products run tile by tile: a tile is a few rows (about _TILE floats) of every (out x in)
# gradient, for blocks of _BLOCK training samples. A block's tile is computed into cache and every
# query's tile meets it there, so no dense training gradient is ever written to memory.
_TILE = 8192
_BLOCK = 256
Factors = dict[str, dict[str, torch.Tensor]]


@dataclass
class _ModulePreconditioner:
    """What one tracked Linear needs: eigenbases (EK-FAC/K-FAC), inverse damped Lambda, bias flag."""

    name: str
    out_features: int
    in_features: int  # including the ones column when the layer has a bias
    has_bias: bool
    q_out: torch.Tensor | None  # (out, out) gradient eigenvectors
    q_in: torch.Tensor | None  # (in, in) activation eigenvectors
    inverse: torch.Tensor | None  # (n_tiles, rows, in) 1 / (Lambda + damping), zero past the last row

    @property
    def size(self) -> int:
        return self.out_features * self.in_features

    @property
    def n_tiles(self) -> int:
        return -(-self.out_features // max(1, round(_TILE / self.in_features)))

    @property
    def rows(self) -> int:
        """Rows of the (out x in) gradient per tile (tiles balanced, about _TILE floats each)."""
        return -(-self.out_features // self.n_tiles)

    @property
    def padded_out(self) -> int:
        return self.n_tiles * self.rows


def candidate_scores(
    model: nn.Module,
    task: InfluenceTask,
    factors: Factors,
    strategy: str,
    damping: float | None,
    queries: data.Dataset,
    train: data.Dataset,
    candidates: np.ndarray | Sequence[Sequence[int]],
    *,
    batch_size: int = 32,
    query_batch_size: int = 32,
    max_query_bytes: int = 2**31,
    max_cache_bytes: int = 2**31,
    device: str | torch.device = "cpu",
    progress: bool = False,
    pad_per_batch: bool = False,
    query_factors: list[dict[str, tuple[torch.Tensor, torch.Tensor]]] | None = None,
) -> np.ndarray:
    """Influence scores of each query's candidate training samples, as a (queries x K) float32 array.

    Equal (up to float rounding) to kronfluence's pairwise scores for the same pairs, i.e. to the
    engine's full matrix gathered at ``candidates``, at a cost that scales with Q x K instead of
    Q x N. ``model`` is prepared for kronfluence (its tracked Linear layers wrapped, as the engine
    does), in eval mode; ``factors`` are ``analyzer.load_all_factors(name)`` of a fit with
    ``strategy`` (:meth:`~attribution.engine.InfluenceEngine.load_factors`); ``damping`` None is kronfluence's heuristic (0.1 x the mean of each module's
    Lambda / eigenvalue products). ``candidates[q]`` lists training indices for query ``q``
    (duplicates allowed; each position gets its pair's score). ``device`` is where the model
    lives; the work runs there.

    Memory: every query's gradient is kept in compact per-token form (tokens x (out + in) floats
    per module, small next to out x in; split very large query sets over several calls). Dense
    preconditioned queries (out x in floats per module) are built a group of modules at a time,
    at most ``max_query_bytes``, splitting the queries only when one module's do not fit.
    Training samples' compact factors are kept between such chunks up to ``max_cache_bytes``;
    past it they are recomputed (one more forward/backward pass over the candidates per chunk).
    Scores do not depend on the chunking or the caching (bit for bit).

    ``pad_per_batch`` (the engine's setting): token sequences are batched by length, longest
    first, and each batch's trailing padding is cut (``attribution.lengths``), so a corpus of
    short documents does not pay for ``max_length``; the gradients are the same up to float
    rounding. ``query_factors``: the queries' :func:`measurement_factors` with the same
    preconditioners and ``query_batch_size``, when the caller has them already (the gradient
    index projects the same factors), so the queries' gradients are not computed twice.
    """
    check_strategy(strategy)
    if strategy == "ekfac_cg":
        raise ValueError("candidate_scores computes kronfluence's strategies; for ekfac_cg use "
                         "InfluenceEngine.candidate_scores, which solves the queries by conjugate gradient first")
    if batch_size < 1 or query_batch_size < 1 or max_query_bytes < 1:
        raise ValueError("batch_size, query_batch_size and max_query_bytes must be positive")
    if model.training:
        raise ValueError("the model is in training mode: call model.eval() (dropout would make scores random)")
    device = torch.device(device)
    cand = _check_candidates(candidates, len(queries), len(train))  # type: ignore[arg-type]
    n_queries, k = cand.shape
    out = np.zeros((n_queries, k), dtype=np.float32)
    if n_queries == 0 or k == 0:
        return out

    pre = {m.name: _preconditioner(m, factors, strategy, damping, device) for m in _tracked_linears(model)}
    chunks = _plan_chunks([(name, p.size * 4) for name, p in pre.items()], n_queries, max_query_bytes)

    # unique (query, sample) pairs, sorted by query then sample; training batches are fixed over the
    # sorted union of candidates, so a sample's gradient never depends on the chunking
    union = np.unique(cand)
    # the order samples are batched in: by descending length when trimming padding, else by index
    lengths = sample_lengths(data.Subset(train, union.tolist())) if pad_per_batch else None
    order = np.asarray(length_sorted(range(len(union)), lengths), dtype=np.int64)
    rank = np.empty(len(union), dtype=np.int64)
    rank[order] = np.arange(len(union))
    batched = union[order]
    keys, inverse = np.unique(np.arange(n_queries)[:, None] * len(union) + rank[np.searchsorted(union, cand)],
                              return_inverse=True)
    pair_query, pair_pos = keys // len(union), keys % len(union)
    batches = [batched[lo: lo + batch_size] for lo in range(0, len(batched), batch_size)]
    collate_fn = trim_padding_collate if pad_per_batch else data.default_collate
    per_block = -(-_BLOCK // batch_size)  # forward batches per dot block
    block_size = per_block * batch_size
    blocks = [range(lo, min(lo + per_block, len(batches))) for lo in range(0, len(batches), per_block)]
    values = np.zeros(len(keys), dtype=np.float64)  # summed module by module, tile by tile, in a fixed order

    train_loss = lambda batch, m: task.compute_train_loss(batch=batch, model=m, sample=False)  # noqa: E731
    if query_factors is None:
        query_factors = measurement_factors(model, task, pre, queries, query_batch_size, device, pad_per_batch)
    elif len(query_factors) != -(-n_queries // query_batch_size) or set(query_factors[0]) != set(pre):
        raise ValueError(f"query_factors must hold the tracked modules' factors of {n_queries} queries in batches "
                         f"of {query_batch_size} (measurement_factors with the same query_batch_size)")
    t_query = max(a.shape[1] for f in query_factors for a, _ in f.values())  # fixed: chunking-independent
    cache: dict[int, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
    cache_left = max_cache_bytes if len(chunks) > 1 else 0
    scratch = _Scratch(device)
    pool: dict[tuple[int, tuple[int, ...]], torch.Tensor] = {}

    with _progress(progress, len(chunks) * len(blocks)) as advance, torch.no_grad():
        for names, q_lo, q_hi in chunks:
            # the previous chunk's query tiles are reused where shapes match, freed otherwise
            needed = {(j, _tiles_shape(pre[n], q_hi - q_lo)) for j, n in enumerate(names)}
            pool = {key: tiles for key, tiles in pool.items() if key in needed}
            p_tiles = {n: _query_tiles(query_factors, pre[n], q_lo, q_hi, query_batch_size, t_query, scratch, pool, j)
                       for j, n in enumerate(names)}
            lo, hi = np.searchsorted(pair_query, [q_lo, q_hi])
            block_of = pair_pos[lo:hi] // block_size
            order = lo + np.argsort(block_of, kind="stable")
            bounds = np.searchsorted(np.sort(block_of, kind="stable"), np.arange(len(blocks) + 1))
            for i, block in enumerate(blocks):
                sel = order[bounds[i]: bounds[i + 1]]
                if len(sel):
                    block_factors = []
                    for b in block:
                        sample_factors = cache.get(b)
                        if sample_factors is None:
                            sample_factors = token_factors(model, train_loss, collate_fn([train[int(i)] for i in batches[b]]),
                                                                  pre, device)
                            size = _nbytes(sample_factors)
                            if size <= cache_left:
                                cache[b], cache_left = sample_factors, cache_left - size
                        block_factors.append(sample_factors)
                    n_block = sum(len(batches[b]) for b in block)
                    pattern = _pattern(pair_query[sel] - q_lo, pair_pos[sel] - i * block_size, q_hi - q_lo,
                                       n_block, device)
                    acc = torch.from_numpy(values[sel]).to(device)
                    for n in names:  # modules and tiles in a fixed order: sums never depend on the chunking
                        p = pre[n]
                        a_block, x_block = _stack([f[n] for f in block_factors], p, scratch, "train")
                        r = scratch.get("r", (n_block, p.rows, p.in_features))
                        for t in range(p.n_tiles):
                            torch.bmm(a_block[:, t * p.rows: (t + 1) * p.rows], x_block, out=r)
                            acc += _sampled_dots(pattern, p_tiles[n][t], r.view(n_block, -1))
                    values[sel] = acc.cpu().numpy()
                advance(1)
            del p_tiles
    out[:] = values[inverse.reshape(-1)].reshape(n_queries, k)
    return out


def measurement_factors(
    model: nn.Module, task: InfluenceTask, pre: dict[str, Any], queries: data.Dataset, query_batch_size: int,
    device: str | torch.device = "cpu", pad_per_batch: bool = False,
) -> list[dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """The queries' measurement gradients in compact per-token eigenbasis form, ``query_batch_size`` at a time.

    One dict per batch of queries, in order (module name -> ``(A, X)``, see
    :func:`attribution.gradients.token_factors`); each batch's trailing padding cut when
    ``pad_per_batch``. ``pre``: the tracked modules' preconditioners (their eigenvectors).
    """
    measurement = lambda batch, m: task.compute_measurement(batch=batch, model=m)  # noqa: E731
    collate_fn = trim_padding_collate if pad_per_batch else data.default_collate
    n = len(queries)  # type: ignore[arg-type]
    with torch.no_grad():
        return [token_factors(model, measurement, collate_fn([queries[i] for i in range(lo, min(lo + query_batch_size, n))]),
                              pre, torch.device(device)) for lo in range(0, n, query_batch_size)]


def _plan_chunks(sizes: list[tuple[str, int]], n_queries: int, budget: int) -> list[tuple[list[str], int, int]]:
    """Chunks (modules, first query, end query) whose dense preconditioned queries fit ``budget``.

    Whole query sets are grouped module by module, so each training sample's dense gradient of a
    module is built once; a module whose queries alone exceed the budget is split by queries.
    """
    chunks: list[tuple[list[str], int, int]] = []
    group: list[str] = []
    used = 0
    for name, per_query in sizes:
        need = per_query * n_queries
        if need > budget:
            if group:
                chunks.append((group, 0, n_queries))
                group, used = [], 0
            step = max(1, budget // per_query)
            chunks.extend(([name], lo, min(lo + step, n_queries)) for lo in range(0, n_queries, step))
            continue
        if used + need > budget and group:
            chunks.append((group, 0, n_queries))
            group, used = [], 0
        group.append(name)
        used += need
    if group:
        chunks.append((group, 0, n_queries))
    return chunks


# ---------------------------------------------------------------------------------------- factors
def _tracked_linears(model: nn.Module) -> list[TrackedModule]:
    tracked = [m for m in model.modules() if isinstance(m, TrackedModule)]
    if not tracked:
        raise ValueError("the model has no kronfluence-tracked modules: prepare it first "
                         "(kronfluence.analyzer.prepare_model, as InfluenceEngine does)")
    other = [m.name for m in tracked if not isinstance(m.original_module, nn.Linear)]
    if other:
        raise ValueError(f"candidate scoring supports tracked nn.Linear layers only; got {', '.join(other[:3])}")
    return tracked


def _preconditioner(
    module: TrackedModule, factors: Factors, strategy: str, damping: float | None, device: torch.device
) -> _ModulePreconditioner:
    """kronfluence's FactorConfig.prepare for one module, kept in the eigenbasis (no rotation back).

    As kronfluence 1.0.1: Lambda is divided by ``num_lambda_processed`` and damped in float64, the
    heuristic damping is 0.1 x the mean of that module's (normalised) Lambda, or of the outer
    product of eigenvalues for K-FAC; the inverse and eigenvectors are used in float32.
    """
    strategy = factor_strategy(strategy)  # EK-FAC+CG is preconditioned by EK-FAC
    linear = module.original_module
    has_bias = linear.bias is not None
    out_f, in_f = linear.out_features, linear.in_features + int(has_bias)

    def get(name: str) -> torch.Tensor:
        try:
            return factors[name][module.name]
        except KeyError as exc:
            raise ValueError(f"strategy {strategy!r} needs factor {name!r} for module {module.name!r}; "
                             f"the loaded factors have {sorted(factors)}") from exc

    q_out = q_in = None
    if strategy in ("ekfac", "kfac"):
        q_out = get(GRADIENT_EIGENVECTORS_NAME).to(device=device, dtype=torch.float32).contiguous()
        q_in = get(ACTIVATION_EIGENVECTORS_NAME).to(device=device, dtype=torch.float32).contiguous()
    if strategy in ("ekfac", "diagonal"):
        lam = get(LAMBDA_MATRIX_NAME).to(device=device, dtype=torch.float64)
        lam = lam / get(NUM_LAMBDA_PROCESSED).to(device=device)
    elif strategy == "kfac":
        act = get(ACTIVATION_EIGENVALUES_NAME).to(device=device, dtype=torch.float64)
        grad = get(GRADIENT_EIGENVALUES_NAME).to(device=device, dtype=torch.float64)
        lam = torch.outer(grad, act)  # kronfluence: kron(act[None], grad[:, None]) -> [o, i] = g_o a_i
    if q_out is not None and (q_out.shape != (out_f, out_f) or q_in.shape != (in_f, in_f)):
        raise ValueError(f"module {module.name!r}: eigenvectors {tuple(q_out.shape)}/{tuple(q_in.shape)} "
                         f"do not match the layer ({out_f} out, {in_f} in with bias column)")
    pre = _ModulePreconditioner(module.name, out_f, in_f, has_bias, q_out, q_in, None)
    if strategy != "identity":
        lam = lam.reshape(out_f, in_f)
        damp = heuristic_damping(lam.mean()) if damping is None else damping
        inverse = torch.zeros(pre.padded_out, in_f, dtype=torch.float32, device=device)
        inverse[:out_f] = (lam + damp).reciprocal()
        pre.inverse = inverse.view(pre.n_tiles, pre.rows, in_f)
    return pre


# ---------------------------------------------------------------------------------------- tiles
class _Scratch:
    """Reused work buffers: on CPU a fresh large tensor page-faults on every call, which costs more
    than the arithmetic here."""

    def __init__(self, device: torch.device):
        self.device = device
        self.buffers: dict[str, torch.Tensor] = {}

    def get(self, role: str, shape: tuple[int, ...]) -> torch.Tensor:
        """A contiguous buffer of ``shape`` (a prefix, along dimension 0, of the role's buffer)."""
        buf = self.buffers.get(role)
        if buf is None or buf.shape[1:] != shape[1:] or buf.shape[0] < shape[0]:
            buf = self.buffers[role] = torch.empty(shape, dtype=torch.float32, device=self.device)
        return buf[: shape[0]]

    def at_least(self, role: str, shape: tuple[int, ...]) -> torch.Tensor:
        """A zeroed view of ``shape`` into a buffer at least that large in every dimension."""
        buf = self.buffers.get(role)
        if buf is None or buf.dim() != len(shape) or any(b < n for b, n in zip(buf.shape, shape, strict=True)):
            big = shape if buf is None or buf.dim() != len(shape) else tuple(map(max, buf.shape, shape))
            buf = self.buffers[role] = torch.empty(big, dtype=torch.float32, device=self.device)
        view = buf[tuple(slice(0, n) for n in shape)]
        view.zero_()
        return view


def _stack(
    batch_factors: list[tuple[torch.Tensor, torch.Tensor]], p: _ModulePreconditioner, scratch: _Scratch, role: str,
    t: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples' factors side by side: A^T as (N, padded out, T) and X as (N, T, in), zero-padded."""
    n = sum(a.shape[0] for a, _ in batch_factors)
    t = t or max(a.shape[1] for a, _ in batch_factors)
    a_all = scratch.at_least(role + "-a", (n, p.padded_out, t))
    x_all = scratch.at_least(role + "-x", (n, t, p.in_features))
    start = 0
    for a, x in batch_factors:
        end = start + a.shape[0]
        a_all[start:end, : p.out_features, : a.shape[1]] = a.transpose(1, 2)
        x_all[start:end, : x.shape[1]] = x
        start = end
    return a_all, x_all


def _tiles_shape(p: _ModulePreconditioner, n: int) -> tuple[int, int, int, int]:
    return p.n_tiles, n, p.rows, p.in_features


def _query_tiles(
    query_factors: list[dict[str, tuple[torch.Tensor, torch.Tensor]]],
    p: _ModulePreconditioner,
    q_lo: int,
    q_hi: int,
    batch_size: int,
    t_query: int,
    scratch: _Scratch,
    pool: dict[tuple[int, tuple[int, ...]], torch.Tensor],
    slot: int,
) -> torch.Tensor:
    """(n_tiles, q_hi - q_lo, tile) preconditioned query gradients of one module, in its eigenbasis."""
    parts = []
    for i in range(q_lo // batch_size, -(-q_hi // batch_size)):
        a, x = query_factors[i][p.name]
        lo, hi = max(q_lo - i * batch_size, 0), min(q_hi - i * batch_size, a.shape[0])
        parts.append((a[lo:hi], x[lo:hi]))
    a_all, x_all = _stack(parts, p, scratch, "query", t_query)
    shape = _tiles_shape(p, q_hi - q_lo)
    tiles = pool.get((slot, shape))
    if tiles is None:
        tiles = pool[(slot, shape)] = torch.empty(shape, dtype=torch.float32, device=scratch.device)
    for t in range(p.n_tiles):
        torch.bmm(a_all[:, t * p.rows: (t + 1) * p.rows], x_all, out=tiles[t])
        if p.inverse is not None:
            tiles[t].mul_(p.inverse[t])
    return tiles.view(p.n_tiles, q_hi - q_lo, -1)


def _pattern(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int, device: torch.device) -> torch.Tensor:
    """A CSR matrix with zeros at (rows, cols); rows ascending, columns ascending within a row."""
    rows_t = torch.as_tensor(rows, dtype=torch.int64, device=device)
    crow = torch.zeros(n_rows + 1, dtype=torch.int64, device=device)
    crow[1:] = torch.bincount(rows_t, minlength=n_rows).cumsum(0)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the pattern is valid by construction
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, torch.as_tensor(cols, dtype=torch.int64, device=device),
                                       torch.zeros(len(rows), dtype=torch.float32, device=device),
                                       size=(n_rows, n_cols), check_invariants=False)


def _sampled_dots(pattern: torch.Tensor, p: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """``(p @ r.T)`` at the pattern's entries only, in its (CSR) order: one dot product per pair."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse.sampled_addmm(pattern, p, r.T).values()


def _nbytes(factors: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> int:
    return sum(a.numel() * a.element_size() + x.numel() * x.element_size() for a, x in factors.values())


# ---------------------------------------------------------------------------------------- helpers
def _check_candidates(candidates: Any, n_queries: int, n_train: int) -> np.ndarray:
    cand = np.asarray(candidates)
    if cand.ndim != 2 or cand.shape[0] != n_queries:
        raise ValueError(f"candidates must be a (queries x K) array with {n_queries} rows; got shape {cand.shape}")
    if cand.size and not np.issubdtype(cand.dtype, np.integer):
        raise ValueError(f"candidates must hold integer training indices; got dtype {cand.dtype}")
    cand = cand.astype(np.int64, copy=False)
    if cand.size and (cand.min() < 0 or cand.max() >= n_train):
        bad = np.argwhere((cand < 0) | (cand >= n_train))[0]
        raise ValueError(f"candidates[{bad[0]}, {bad[1]}] = {cand[tuple(bad)]} is not a training index "
                         f"(the training set has {n_train} samples)")
    return cand


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[int], None]]:
    """Progress over (chunk, training batch) steps; yields an ``advance(n)`` function."""
    from stores.progress import StepProgress

    with StepProgress("candidate scores", total, unit="batches", enabled=enabled) as bar:
        yield bar.advance


__all__ = ["Factors", "candidate_scores", "measurement_factors"]
