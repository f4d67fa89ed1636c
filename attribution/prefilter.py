"""Candidate prefilters: the top-K training samples per query, to score only those with influence.

Grosse et al. pick candidates by TF-IDF overlap before computing influence. The pick is biased
toward lexical overlap (a sample can matter without sharing words), so reports must say when a
prefilter was used, and it is off unless asked for. Engine integration and its speed/recall
measurement are still to come.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _top_k(similarity: np.ndarray, k: int) -> np.ndarray:
    k = min(k, similarity.shape[1])
    part = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(similarity, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def tfidf_candidates(
    train_texts: Sequence[str], query_texts: Sequence[str], k: int,
    analyzer: str = "char_wb", ngram_range: tuple[int, int] = (2, 4), batch: int = 256,
) -> np.ndarray:
    """Indices (queries x k) of each query's most TF-IDF-similar training texts, best first.

    Character n-grams by default, which suit digits and formulas; use ``analyzer="word"`` for
    prose. Similarities are computed a batch of queries at a time (sparse products).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range, sublinear_tf=True)
    train = vec.fit_transform(list(train_texts))
    queries = vec.transform(list(query_texts))
    out = []
    for lo in range(0, queries.shape[0], batch):
        sim = (queries[lo : lo + batch] @ train.T).toarray()
        out.append(_top_k(sim, k))
    return np.vstack(out) if out else np.empty((0, min(k, train.shape[0])), dtype=np.int64)


def embedding_candidates(train_vectors: np.ndarray, query_vectors: np.ndarray, k: int) -> np.ndarray:
    """Indices (queries x k) of the nearest training embeddings by cosine similarity, via faiss.

    Uses a GPU index when faiss-gpu is installed and a GPU is visible, else the CPU one.
    """
    import faiss

    train = np.ascontiguousarray(train_vectors, dtype=np.float32).copy()
    queries = np.ascontiguousarray(query_vectors, dtype=np.float32).copy()
    faiss.normalize_L2(train)
    faiss.normalize_L2(queries)
    index = faiss.IndexFlatIP(train.shape[1])
    if hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0:  # pragma: no cover - no GPU in CI
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(train)
    _, idx = index.search(queries, min(k, train.shape[0]))
    return idx.astype(np.int64)
