"""Score tables of the engine's runs: a shard's per-module rows, and a run read back as a matrix.

Kept apart from :mod:`attribution.engine` so the engine module holds the scoring logic only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch

import stores


def score_matrix(store: stores.Store, run_id: str, query_ids: Sequence[str], train_ids: Sequence[str]) -> np.ndarray:
    """A run's pairwise scores as a dense (queries x training samples) array, in the given orders.

    For analysis at small scale (it holds Q x N floats); large runs are meant for SQL.
    """
    df = store.read_scores(run_id)
    qi = {q: i for i, q in enumerate(query_ids)}
    ti = {t: i for i, t in enumerate(train_ids)}
    out = np.full((len(query_ids), len(train_ids)), np.nan)
    out[[qi[q] for q in df["query_id"]], [ti[t] for t in df["sample_id"]]] = df["score"].to_numpy()
    if np.isnan(out).any():
        raise stores.StoreError(f"run {run_id} lacks scores for {int(np.isnan(out).sum())} (query, sample) pairs")
    return out


def module_parts_table(behaviour: str, qids: np.ndarray, sids: np.ndarray, n: int,
                        parts: dict[str, np.ndarray]) -> pa.Table:
    """Per-module scores of a shard, sample-major like ``scores``, one row block per module."""
    rows = n * len(qids)
    blocks = []
    for module, values in sorted(parts.items()):
        blocks.append(pa.table({
            "behaviour": pa.array([behaviour] * rows, pa.string()),
            "query_id": pa.array(np.tile(qids, n), pa.string()),
            "sample_id": pa.array(sids, pa.string()),
            "module": pa.array([module] * rows, pa.string()),
            "position": pa.nulls(rows, pa.int32()),
            "token": pa.nulls(rows, pa.string()),
            "score": pa.array(values.T.reshape(-1).astype(np.float32)),
        }))
    return pa.concat_tables(blocks)


def token_parts_table(behaviour: str, per_token: np.ndarray, train: Any, indices: Sequence[int],
                      sample_ids: Sequence[str], query_ids: Sequence[str], tokenizer: Any = None) -> pa.Table:
    """Per-token scores ``(Q, n, T)`` of the training samples at ``indices`` as ``score_parts`` rows.

    One row per (query, sample, token with attention): its ``position`` and, with a tokenizer,
    the ``token`` text; ``module`` is null (the scores are summed over modules).
    """
    queries_ids = list(query_ids)
    cols: dict[str, list] = {c: [] for c in ("query_id", "sample_id", "position", "token", "score")}
    for j, i in enumerate(indices):  # per_token: (Q, n, T)
        item = train[i]
        mask = item["attention_mask"].bool() if "attention_mask" in item else torch.ones_like(item["input_ids"]).bool()
        positions = torch.nonzero(mask).flatten().tolist()
        tokens = (tokenizer.convert_ids_to_tokens(item["input_ids"][positions].tolist())
                  if tokenizer is not None else [None] * len(positions))
        for q, qid in enumerate(queries_ids):
            cols["query_id"] += [qid] * len(positions)
            cols["sample_id"] += [sample_ids[j]] * len(positions)
            cols["position"] += positions
            cols["token"] += tokens
            cols["score"] += per_token[q, j, positions].tolist()
    n = len(cols["score"])
    return pa.table({
        "behaviour": pa.array([behaviour] * n, pa.string()),
        "query_id": pa.array(cols["query_id"], pa.string()),
        "sample_id": pa.array(cols["sample_id"], pa.string()),
        "module": pa.array([None] * n, pa.string()),
        "position": pa.array(cols["position"], pa.int32()),
        "token": pa.array(cols["token"], pa.string()),
        "score": pa.array(cols["score"], pa.float32()),
    })


__all__ = ["module_parts_table", "score_matrix", "token_parts_table"]
