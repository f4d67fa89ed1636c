"""Helpers of ``bench/index.py``: the facts corpus split, the model, ranks and recall metrics.

The corpus (:mod:`curation.datasets.facts`): ``--people`` fictitious people, each with five facts.
A seeded permutation of the people (``bench-index:<seed>``) puts them in three groups:

- *QA people* (``--qa-people``): their five bio sentences and their five QA records are trained;
  they teach the model the ``Question: ... Answer:`` format;
- *selection people* (``--select-people``): bios trained; their QA questions are the validation
  queries on which the index's projection dimension is chosen (never reported);
- *query people* (the rest): bios trained; their QA questions are the reported queries.

Training documents: every person's bios (plain text) plus the QA people's QA records. A query is
a QA question about one fact of a person whose QA was never trained (prompt = question,
completion = answer, so the measurement is the answer's loss). Its *source document* (gold) is
that person's bio sentence of the same attribute: the only training document that states the
fact (one bio template per person and attribute), as in bergson's recall test (statements
trained, questions queried, gold = the statements of the same person and field).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from attribution.data import CompletionDataset, Samples
from curation.datasets.facts import (
    FACTS_LM,
    FactRecord,
    fact_records,
    make_people,
    train_facts_tokenizer,
)
from curation.steps.train import LMConfig, build_gpt2, train_lm


@dataclass
class Corpus:
    """One seed's corpus: training documents, validation and reported queries, gold positions."""

    seed: int
    train: list[FactRecord]
    select: list[FactRecord]  # validation queries (selection people)
    queries: list[FactRecord]  # reported queries (query people), in a seeded random order
    records: list[FactRecord]  # every record of every person (the tokenizer's corpus)
    n_people: int
    n_qa_people: int
    n_select_people: int

    @property
    def train_ids(self) -> list[str]:
        return [r.fact_id for r in self.train]

    def gold(self, queries: list[FactRecord]) -> np.ndarray:
        """Training position of each query's source document (the person's bio of that attribute)."""
        where = {r.fact_id: i for i, r in enumerate(self.train)}
        return np.array([where[f"{q.person_id}-bio-{q.attribute}"] for q in queries], dtype=np.int64)

    def summary(self) -> dict[str, Any]:
        kinds = [r.kind for r in self.train]
        return {"people": self.n_people, "qa_people": self.n_qa_people, "select_people": self.n_select_people,
                "query_people": self.n_people - self.n_qa_people - self.n_select_people,
                "train_docs": len(self.train), "train_bio_docs": kinds.count("bio"),
                "train_qa_docs": kinds.count("qa"), "select_queries": len(self.select),
                "query_pool": len(self.queries)}


def make_corpus(seed: int, n_people: int, n_qa: int, n_select: int) -> Corpus:
    """The corpus of one seed (people drawn with ``seed``; groups by a seeded permutation)."""
    if n_qa + n_select >= n_people:
        raise ValueError(f"--qa-people ({n_qa}) + --select-people ({n_select}) must leave query people "
                         f"among the {n_people}")
    people = make_people(n_people, seed)
    order = list(range(n_people))
    random.Random(f"bench-index:{seed}").shuffle(order)
    qa_ids = {people[i].person_id for i in order[:n_qa]}
    select_ids = {people[i].person_id for i in order[n_qa:n_qa + n_select]}
    records = fact_records(people, seed)
    train = [r for r in records if r.kind == "bio" or r.person_id in qa_ids]
    questions = [r for r in records if r.kind == "qa" and r.person_id not in qa_ids]
    select = [r for r in questions if r.person_id in select_ids]
    queries = [r for r in questions if r.person_id not in select_ids]
    random.Random(f"bench-index-queries:{seed}").shuffle(queries)
    return Corpus(seed, train, select, queries, records, n_people, n_qa, n_select)


def samples(records: list[FactRecord], tok: Any, max_length: int) -> Samples:
    """Records as engine samples (prompt masked, completion scored), ids = fact ids."""
    data = CompletionDataset([r.prompt for r in records], [r.completion for r in records], tok, max_length)
    return Samples(data, [r.fact_id for r in records])


def train_model(corpus: Corpus, steps: int, threads: int) -> tuple[Any, Any, LMConfig, dict[str, Any]]:
    """Tokenizer (BPE on every record of the seed) and a GPT-2 (FACTS_LM shape) trained on the documents."""
    torch.set_num_threads(threads)
    cfg = replace(FACTS_LM, steps=steps)
    tok = train_facts_tokenizer(corpus.records)
    data = CompletionDataset([r.prompt for r in corpus.train], [r.completion for r in corpus.train], tok,
                             cfg.max_length)
    model = build_gpt2(tok, cfg, corpus.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    losses = train_lm(model, data, cfg, corpus.seed)
    info = {"train_s": time.perf_counter() - t0, "train_cpu_s": time.process_time() - c0,
            "final_loss": float(np.mean(losses[-50:])), "n_truncated": data.n_truncated,
            "params": sum(p.numel() for p in model.parameters())}
    return model, tok, cfg, info


def gold_ranks(scores: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """1-based rank of each query's gold column under a stable descending sort (ties: lower index first)."""
    g = scores[np.arange(len(gold)), gold][:, None]
    before = np.arange(scores.shape[1])[None, :] < gold[:, None]
    return 1 + (scores > g).sum(1) + ((scores == g) & before).sum(1)


def ranks_from_order(order: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """1-based rank of each query's gold in a full ranking (queries x N indices, best first)."""
    hit = order == gold[:, None]
    if not hit.any(1).all():
        raise ValueError("a ranking does not contain its query's gold document")
    return 1 + hit.argmax(1)


def recall_metrics(ranks: np.ndarray, top1_same_person: np.ndarray | None = None) -> dict[str, float]:
    """recall@1, recall@10, MRR and the median rank of the gold documents (+ same-person share of top-1)."""
    out = {"recall_at_1": float(np.mean(ranks <= 1)), "recall_at_10": float(np.mean(ranks <= 10)),
           "mrr": float(np.mean(1.0 / ranks)), "median_rank": float(np.median(ranks)), "queries": int(len(ranks))}
    if top1_same_person is not None:
        out["top1_same_person"] = float(np.mean(top1_same_person))
    return out


def same_person_top1(top1: np.ndarray, queries: list[FactRecord], train: list[FactRecord]) -> np.ndarray:
    """Whether each query's top-ranked document is about the query's person (any of its facts)."""
    return np.array([train[int(t)].person_id == q.person_id for t, q in zip(top1, queries, strict=True)])


def topk_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over rows of |a_row & b_row| / width: the share of one top-k list found in the other."""
    k = a.shape[1]
    return float(np.mean([len(set(x.tolist()) & set(y.tolist())) / k for x, y in zip(a, b, strict=True)]))


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's k largest scores, best first (stable: lower index first on ties)."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def timed(fn, *args, **kwargs) -> tuple[Any, float, float]:
    """``fn(*args, **kwargs)``, its wall seconds and this process's CPU seconds (all threads)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0, time.process_time() - c0


__all__ = ["Corpus", "gold_ranks", "make_corpus", "ranks_from_order", "recall_metrics", "same_person_top1",
           "samples", "timed", "top_k", "topk_overlap", "train_model"]
