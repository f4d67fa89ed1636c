"""Candidate prefilters find the obvious neighbours and agree with brute force."""

from __future__ import annotations

import numpy as np

from attribution.prefilter import embedding_candidates, tfidf_candidates


def test_tfidf_puts_the_matching_text_first() -> None:
    train = [f"{a} + {b} = {a + b}" for a in range(20) for b in range(5)]
    queries = [train[37], train[81], "19 + 4 = 23"]
    cand = tfidf_candidates(train, queries, k=5)
    assert cand.shape == (3, 5)
    assert cand[0, 0] == 37 and cand[1, 0] == 81 and train[cand[2, 0]] == "19 + 4 = 23"
    assert tfidf_candidates(train, queries, k=500).shape == (3, 100)  # k is capped at N


def test_embedding_candidates_match_brute_force_cosine() -> None:
    rng = np.random.default_rng(0)
    train, queries = rng.normal(size=(200, 16)), rng.normal(size=(7, 16))
    got = embedding_candidates(train, queries, k=10)
    t = train / np.linalg.norm(train, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    want = np.argsort(-(q @ t.T), axis=1)[:, :10]
    np.testing.assert_array_equal(got, want)
