"""The filter interface and the noisy-CoT filter on evidence written into a real store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import stores
from filters import Budget, Evidence, Filter, NoisyCoTFilter
from filters.evidence import query_push_evidence
from filters.noisy_cot import combine_ranks, reason_category
from stores.ingest import ingest
from tests.helpers import write_jsonl

N = 200


@pytest.fixture()
def planted(tmp_path: Path):
    """A dataset of 200 traces, 20 'bad' ones, and evidence runs in which the bad ones stand out."""
    store = stores.open(tmp_path / "s")
    rows = [{"prompt": f"p{i}", "completion": f"c{i}", "bad": i % 10 == 0} for i in range(N)]
    ingest(store, write_jsonl(tmp_path / "d.jsonl", rows), "traces")
    df = store.read_samples("traces", columns=["sample_id", "bad"])
    ids, bad = df["sample_id"].to_list(), df["bad"].to_numpy()
    rng = np.random.default_rng(0)
    runs = {}
    for method, shift in (("self_ekfac", 3.0), ("loss", 1.0)):
        with store.run("test-evidence") as run:
            run.write("self_scores", {"sample_id": ids, "method": [method] * N,
                                      "score": rng.normal(size=N) + shift * bad}, shard=0)
        runs[method] = run.id
    queries = [f"q{j}" for j in range(5)]
    with store.run("test-scores") as run:
        scores = rng.normal(size=(N, 5)) + 2.0 * bad[:, None]
        run.write("scores", {"behaviour": ["wrong"] * (N * 5), "query_id": queries * N,
                             "sample_id": np.repeat(ids, 5).tolist(), "score": scores.reshape(-1)}, shard=0)
    runs["scores"] = run.id
    return store, ids, bad, runs


def _auroc(score: np.ndarray, truth: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(truth, score))


def test_noisy_cot_filter_combines_evidence_and_explains(planted) -> None:
    store, ids, bad, runs = planted
    f = NoisyCoTFilter(self_influence_run=runs["self_ekfac"], loss_run=runs["loss"], query_run=runs["scores"],
                       weights={"self_influence": 1.0, "loss": 1.0}, budget=Budget(fraction=0.1))
    res = f.run(store, "traces", seed=0)
    flags = store.read_flags(res.run_id).sort("sample_id")
    assert flags.height == N and flags["flagged"].sum() == 20
    truth = dict(zip(ids, bad, strict=True))
    order = flags["sample_id"].to_list()
    assert _auroc(flags["score"].to_numpy(), np.array([truth[s] for s in order])) > 0.95
    reason = flags.filter(flagged=True)["reason"][0]
    assert "self-influence in top" in reason and "x median" in reason and "push on failing answers in" in reason
    assert "flagged at top 10.0%" in reason
    cfg = store.get_run(res.run_id)["config"]
    assert cfg["filter"] == "noisy_cot" and {e["source"] for e in cfg["evidence"]} == set(runs.values())
    # the flags drive curation, with the reason in the audit trail
    from stores.curate import curate

    cur = curate(store, "clean", "traces", flag_runs=[res.run_id])
    assert cur.n_dropped == 20
    audit = store.sql("SELECT reason FROM curated_drops WHERE curated = 'clean'")
    assert audit.height == 20 and all("combined rank" in r for r in audit["reason"])


def test_default_weights_score_loss_and_explain_the_rest(planted) -> None:
    store, ids, bad, runs = planted
    f = NoisyCoTFilter(self_influence_run=runs["self_ekfac"], loss_run=runs["loss"], query_run=runs["scores"],
                       budget=Budget(fraction=0.1))
    flags = f.evaluate(store, "traces")
    loss = store.read_self_scores(runs["loss"])
    by_id = dict(zip(loss["sample_id"].to_list(), loss["score"].to_list(), strict=True))
    top = {ids[i] for i in np.argsort([-by_id[s] for s in ids])[:20]}
    assert {s for s, fl in zip(flags.sample_ids, flags.flagged, strict=True) if fl} == top  # loss alone ranks
    assert "self-influence in" in flags.reason[0] and "push on failing answers in" in flags.reason[0]
    assert flags.reason[0].startswith("completion loss")  # the only evidence that scores leads
    alone = NoisyCoTFilter(self_influence_run=runs["self_ekfac"], budget=Budget(fraction=0.1)).evaluate(store, "traces")
    assert alone.n_flagged == 20  # evidence given alone scores, whatever its default weight


def test_single_evidence_and_threshold_budget(planted) -> None:
    store, ids, bad, runs = planted
    f = NoisyCoTFilter(loss_run=runs["loss"], budget=Budget(fraction=None, threshold=0.95))
    flags = f.evaluate(store, "traces")
    assert flags.n_flagged == int((flags.score >= 0.95).sum()) > 0
    assert "self-influence" not in flags.reason[0] and "x median" in flags.reason[0]
    with pytest.raises(ValueError, match="at least one"):
        NoisyCoTFilter()
    with pytest.raises(stores.StoreError, match="no finished self_scores"):
        NoisyCoTFilter(loss_run="nope").evaluate(store, "traces")


def test_budget_and_rank_combination() -> None:
    assert Budget(fraction=0.25).select(np.array([0.1, 0.9, np.nan, 0.5])).tolist() == [False, True, False, False]
    assert Budget(fraction=0.25).select(np.array([0.1, 0.9, np.nan, np.inf])).tolist() == [False, False, False, True]
    assert Budget(fraction=None, threshold=0.5).select(np.array([0.4, 0.5, np.nan])).tolist() == [False, True, False]
    with pytest.raises(ValueError):
        Budget(fraction=1.5)
    with pytest.raises(ValueError):
        Budget(fraction=0.1, threshold=0.2)
    combined = combine_ranks({"a": np.array([0.0, 1.0, np.nan]), "b": np.array([1.0, 1.0, 0.5])}, {"a": 1, "b": 3})
    np.testing.assert_allclose(combined, [0.75, 1.0, 0.5])


def test_a_custom_filter_in_a_few_lines(planted) -> None:
    store, ids, bad, runs = planted

    class Suffix(Filter):
        name = "suffix_zero"

        def evaluate(self, store, dataset):
            df = store.read_samples(dataset, columns=["sample_id", "completion"])
            values = df["completion"].str.ends_with("0").cast(float).to_numpy()
            ev = Evidence("ends_in_zero", df["sample_id"].to_list(), values, source="samples")
            return self.flags_from_score(ev.sample_ids, ev.values, [ev])

    res = Suffix(Budget(fraction=0.1)).run(store, "traces")
    flagged = store.sql("SELECT count(*) AS n FROM flags f JOIN samples s USING (sample_id) "
                        "WHERE f.run_id = ? AND f.flagged AND s.bad", [res.run_id])
    assert flagged["n"][0] == 20  # completions c0, c10, ... are exactly the planted ones


def test_reasons_say_only_what_is_true(planted) -> None:
    """No "pushes the wrong answer on 0 of 5 failing queries (top 2% pusher)": the per-query count
    is named only when it is positive, and then it is the true count; ranks say top or bottom."""
    store, ids, bad, runs = planted
    f = NoisyCoTFilter(self_influence_run=runs["self_ekfac"], loss_run=runs["loss"], query_run=runs["scores"],
                       weights={"self_influence": 1.0, "loss": 1.0}, budget=Budget(fraction=0.1))
    flags = f.evaluate(store, "traces")
    counts = query_push_evidence(store, runs["scores"], f.top_fraction)[1]
    assert any(counts[s] == 0 for s in ids) and any(counts[s] > 0 for s in ids)  # both cases are exercised
    for sid, reason in zip(flags.sample_ids, flags.reason, strict=True):
        assert " 0 of " not in reason and "top 0.0%" not in reason and "top 100%" not in reason, reason
        if counts[sid]:
            assert f"among the top 2% of pushers of the wrong answer on {counts[sid]} of 5 failing queries" in reason
        else:
            assert "failing queries" not in reason and "pusher" not in reason, reason
    # the scoring evidence that ranks a trace highest leads its reason (and names its category)
    pct = {e.name: e.percentile(ids) for e in f.gather(store)[0]}
    for i, reason in enumerate(flags.reason):
        lead = "self-influence" if pct["self_influence"][i] > pct["loss"][i] else "completion loss"
        if pct["self_influence"][i] != pct["loss"][i]:
            assert reason.startswith(lead), reason
    cats = {reason_category(r) for r, fl in zip(flags.reason, flags.flagged, strict=True) if fl}
    assert cats <= {"high self-influence", "high completion loss"} and cats
    assert {reason_category(r) for r, fl in zip(flags.reason, flags.flagged, strict=True) if not fl} == {"kept"}


def test_reason_texts_leave_scores_and_flags_unchanged(planted) -> None:
    """The reasons are text only: the score is the weighted rank mean and the flags its top 10%."""
    store, ids, bad, runs = planted
    f = NoisyCoTFilter(self_influence_run=runs["self_ekfac"], loss_run=runs["loss"], query_run=runs["scores"],
                       weights={"self_influence": 1.0, "loss": 1.0, "query_push": 0.5}, budget=Budget(fraction=0.1))
    flags = f.evaluate(store, "traces")
    evidence = f.gather(store)[0]
    expected = combine_ranks({e.name: e.percentile(ids) for e in evidence}, f.weights)
    np.testing.assert_allclose(flags.score, expected)
    assert flags.flagged.tolist() == Budget(fraction=0.1).select(expected).tolist()


@pytest.mark.parametrize(("reason", "category"), [
    ("completion loss 9.5x median; self-influence in top 3% (rank 85 of 3,000); combined rank 1.000, "
     "flagged at top 30.0%", "high completion loss"),
    ("self-influence in top 0.1% (rank 1 of 3,000); completion loss 8.9x median; combined rank 0.999, "
     "flagged at top 10.0%", "high self-influence"),
    ("push on failing answers in top 1% (rank 3 of 3,000), among the top 2% of pushers of the wrong answer on "
     "4 of 100 failing queries; combined rank 0.999, flagged at top 10.0%", "pushes failing answers"),
    ("completion loss 0.8x median; combined rank 0.310, kept at top 10.0%", "kept"),
    # SelfScoreFilter reasons start with the evidence's name
    ("random 0.9993 (rank 2 of 3,000, percentile 99.9%); flagged at top 50.0%", "random"),
    ("loss 3.2 nats, 4.1x median (rank 7 of 3,000, percentile 99.8%); flagged at top 10.0%", "high completion loss"),
    ("self_influence 1.8e+05, 9.1x median (rank 1 of 3,000, percentile 100.0%); flagged at top 10.0%",
     "high self-influence"),
    ("no loss score in run baseline-loss-1; kept", "kept"),
    ("grad_norm 12.5 (rank 1 of 10, percentile 100.0%); flagged at top 10.0%", "grad norm"),
    ("", "other"),
])
def test_reason_category(reason: str, category: str) -> None:
    assert reason_category(reason) == category
