"""The detection step (curation.steps.detection) on a ten-sample store with hand-made evidence:
planted truth per noise kind, evidence aligned by sample, ROC areas equal to sklearn's, and the
detection table's counts worked out by hand. No training; runs in about a second."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import stores
from curation.steps.detection import (
    detection_table,
    evidence_scores,
    flags_scores,
    noise_truth,
    roc_points,
)
from stores.ingest import ingest
from tests.helpers import write_jsonl

#              0        1        2          3          4          5         6         7        8         9
NOISE = ["clean", "clean", "dynamic", "dynamic", "dynamic", "static", "static", "clean", "static", "dynamic"]
CHANGED = [False, False, True, True, False, True, True, False, False, True]
# positives: dynamic {2, 3, 9}, static {5, 6}; unaffected {0, 1, 4, 7, 8} (4 and 8: noise left them unchanged)
LOSS = {0: 0.1, 2: 0.9, 3: 0.5, 4: 0.5, 5: 0.7, 6: 0.2, 7: 0.3, 8: 0.6, 9: 0.8}  # no loss for sample 1
FLAG_SCORE = {1: 0.2, 2: 0.9, 3: 0.8, 4: 0.7, 5: 0.95, 6: 0.1, 7: 0.3, 8: 0.4, 9: 0.5}  # sample 0 not in the run
FLAGGED = {2, 3, 4, 5}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[stores.Store, list[str], dict[str, str]]:
    """A store with the ten samples, loss and random self_scores runs, and a flags run."""
    tmp = tmp_path_factory.mktemp("detection")
    store = stores.open(tmp / "store")
    rows = [{"prompt": f"q{i}\n", "completion": f"a{i}", "noise": n, "trace_changed": c}
            for i, (n, c) in enumerate(zip(NOISE, CHANGED, strict=True))]
    ingest(store, write_jsonl(tmp / "train.jsonl", rows), "tiny")
    ingest(store, write_jsonl(tmp / "plain.jsonl", [{"prompt": "p", "completion": "c"}]), "plain")
    ids = store.read_samples("tiny", columns=["sample_id"])["sample_id"].to_list()
    runs: dict[str, str] = {}
    with store.run("baseline", dataset="tiny") as h:
        h.write("self_scores", {"sample_id": [ids[i] for i in LOSS], "method": ["loss"] * len(LOSS),
                                "score": list(LOSS.values())})
    runs["loss"] = h.id
    with store.run("baseline", dataset="tiny") as h:
        h.write("self_scores", {"sample_id": ids, "method": ["random"] * 10,
                                "score": np.random.default_rng(0).random(10)})
    runs["random"] = h.id
    with store.run("filter", dataset="tiny") as h:
        h.write("flags", {"filter": ["f"] * len(FLAG_SCORE), "sample_id": [ids[i] for i in FLAG_SCORE],
                          "score": list(FLAG_SCORE.values()), "flagged": [i in FLAGGED for i in FLAG_SCORE],
                          "reason": ["r"] * len(FLAG_SCORE)})
    runs["flags"] = h.id
    return store, ids, runs


def test_noise_truth_marks_changed_traces_per_kind(tiny) -> None:
    store, ids, _ = tiny
    truth = noise_truth(store, "tiny")
    assert truth is not None and truth.sample_ids == ids
    assert truth.kinds() == ["dynamic", "static", "overall"]
    assert np.flatnonzero(truth.positives["dynamic"]).tolist() == [2, 3, 9]
    assert np.flatnonzero(truth.positives["static"]).tolist() == [5, 6]
    assert np.flatnonzero(truth.positives["overall"]).tolist() == [2, 3, 5, 6, 9]
    assert np.flatnonzero(truth.unaffected).tolist() == [0, 1, 4, 7, 8]
    assert np.flatnonzero(truth.compared("static")).tolist() == [0, 1, 4, 5, 6, 7, 8]
    assert noise_truth(store, "plain") is None and noise_truth(store, None) is None


def test_evidence_scores_are_aligned_with_nan_where_missing(tiny) -> None:
    store, ids, runs = tiny
    scores = evidence_scores(store, runs, ids)
    assert list(scores) == ["random", "loss", "combined"]
    assert math.isnan(scores["loss"][1]) and scores["loss"][2] == pytest.approx(0.9)  # stored as float32
    assert math.isnan(scores["combined"][0]) and scores["combined"][5] == pytest.approx(0.95)
    flagged, score = flags_scores(store, runs["flags"], ids)
    assert np.flatnonzero(flagged).tolist() == sorted(FLAGGED)
    assert np.array_equal(score, scores["combined"], equal_nan=True)
    empty = flags_scores(store, runs["flags"], [])
    assert empty[0].shape == empty[1].shape == (0,)


def test_roc_points_area_matches_sklearn(tiny) -> None:
    store, ids, runs = tiny
    truth = noise_truth(store, "tiny")
    scores = evidence_scores(store, runs, ids)
    for kind in truth.kinds():
        for name, sc in scores.items():
            fpr, tpr, auc = roc_points(truth, kind, sc)
            keep = truth.compared(kind) & np.isfinite(sc)
            assert auc == pytest.approx(roc_auc_score(truth.positives[kind][keep], sc[keep])), (kind, name)
            assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    # by hand: dynamic positives 0.9, 0.5, 0.8 against negatives 0.1, 0.5, 0.3, 0.6 (sample 1 has no
    # loss and is left out); 0.5 ties 0.5 (half) -> (4 + 4 + 2.5) / 12
    assert roc_points(truth, "dynamic", scores["loss"])[2] == pytest.approx(10.5 / 12)
    # thinning keeps both ends and the area of the whole curve
    fpr, tpr, auc = roc_points(truth, "overall", scores["random"], max_points=1)
    assert (fpr[0], fpr[-1], tpr[-1]) == (0, 1, 1) and len(fpr) < len(roc_points(truth, "overall", scores["random"])[0])
    assert auc == roc_points(truth, "overall", scores["random"])[2]


def test_roc_points_of_one_class_is_empty(tiny) -> None:
    store, ids, _ = tiny
    truth = noise_truth(store, "tiny")
    only_positives = np.where(truth.positives["static"], 1.0, np.nan)
    fpr, tpr, auc = roc_points(truth, "static", only_positives)
    assert fpr.size == tpr.size == 0 and math.isnan(auc)
    fpr, tpr, auc = roc_points(truth, "static", np.full(len(ids), np.nan))
    assert fpr.size == 0 and math.isnan(auc)


def test_detection_table_counts_by_hand(tiny) -> None:
    store, ids, runs = tiny
    truth = noise_truth(store, "tiny")
    scores = evidence_scores(store, runs, ids)
    flagged = {"combined": flags_scores(store, runs["flags"], ids)[0],
               "loss": np.isin(np.arange(10), [2, 5, 9]),
               "unscored": np.zeros(10, dtype=bool)}
    table = detection_table(truth, scores, flagged)
    assert list(table) == ["dynamic", "static", "overall"]
    # (kind, method): hits, n_flagged, n_positive; flags of the other kind are left out of a kind's counts
    expected = {("dynamic", "combined"): (2, 3, 3), ("static", "combined"): (1, 2, 2), ("overall", "combined"): (3, 4, 5),
                ("dynamic", "loss"): (2, 2, 3), ("static", "loss"): (1, 1, 2), ("overall", "loss"): (3, 3, 5),
                ("dynamic", "unscored"): (0, 0, 3)}
    for (kind, method), (hits, n_flagged, n_positive) in expected.items():
        row = table[kind][method]
        assert (row["hits"], row["n_flagged"], row["n_positive"]) == (hits, n_flagged, n_positive), (kind, method)
        precision = hits / n_flagged if n_flagged else math.nan  # nothing flagged: no precision
        for key in ("precision", "precision_at_budget"):
            assert row[key] == pytest.approx(precision, nan_ok=True), (kind, method, key)
        for key in ("recall", "recall_at_budget"):
            assert row[key] == pytest.approx(hits / n_positive), (kind, method, key)
    assert math.isnan(table["dynamic"]["unscored"]["auroc"])
    # the table ranks samples without a score last (sample 1, a negative, counts below every
    # positive) where the ROC curve leaves them out: (10.5 + 3) / 15 against 10.5 / 12
    assert table["dynamic"]["loss"]["auroc"] == pytest.approx(13.5 / 15)
