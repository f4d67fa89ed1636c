"""Flag expansion: from a few known-bad (poisoned) training samples to the rest, on real evidence runs.

The fixture poisons 10% of 300 digits (a trigger square, relabelled to 0), stores them as a
tabular dataset, trains the toolkit's MLP on them and computes every evidence run with
:func:`attribution.expansion.expansion_evidence` for 10 of the 30 poisoned samples. Measured on
this machine: at a 10% budget the ``similarity`` evidence finds all 20 unknown poisoned samples,
a random draw 1 of 20 (seeds 0-2).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import stores
from attribution.config import EngineConfig
from attribution.data import Samples, tabular_samples
from attribution.expansion import EVIDENCE, check_known, expansion_evidence, known_bad_behaviour
from attribution.models import MLP
from attribution.tasks import ClassifierTask
from curation.actions.recipes import MLPRecipe
from curation.datasets.manipulations import poison
from curation.steps.records import ingest_records
from filters.base import Budget
from filters.expansion import ExpansionFilter, _leave_one_out_max, _leave_one_out_mean
from tests.helpers import fast_gc

N, N_KNOWN = 300, 10
FEATURES = [f"p{j}" for j in range(64)]


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory: pytest.TempPathFactory) -> dict:
    x, y = load_digits(return_X_y=True)
    xp, yp, mask = poison(x[:N] / 16.0, y[:N], 0.1, 0, seed=0)
    rows = [{**{f: float(v) for f, v in zip(FEATURES, xi, strict=True)}, "label": int(yi), "row": i}
            for i, (xi, yi) in enumerate(zip(xp, yp, strict=True))]
    store = stores.open(tmp_path_factory.mktemp("expansion") / "st", create=True)
    ingest_records(store, {"digits": rows}, config={"test": "expansion"}, roles={})
    train, _ = tabular_samples(store, "digits", FEATURES, "label")
    samples = store.read_samples("digits", columns=["sample_id", "row"])
    row_of = dict(zip(samples["sample_id"].to_list(), samples["row"].to_list(), strict=True))
    bad = mask[[row_of[s] for s in train.ids]]
    bad_ids = [s for s, b in zip(train.ids, bad, strict=True) if b]
    recipe = MLPRecipe(64, (32,), 10, epochs=20)
    model = recipe.fit(recipe.fresh(0), train.data, 0)
    known = bad_ids[:N_KNOWN]
    runs_before = store.sql("SELECT count(*) AS n FROM runs WHERE kind <> 'filter'")["n"][0]
    t0 = time.perf_counter()
    with fast_gc():
        ev = expansion_evidence(store, model, ClassifierTask(), train, known, config=EngineConfig(batch_size=100))
    first = time.perf_counter() - t0
    return {"store": store, "train": train, "model": model, "known": known, "unknown": set(bad_ids[N_KNOWN:]),
            "ev": ev, "first_seconds": first, "runs_before": runs_before}


def _recall(flags, known: list[str], unknown: set[str]) -> float:
    new = {s for s, f in zip(flags.sample_ids, flags.flagged, strict=True) if f and s not in known}
    return len(new & unknown) / len(unknown)


# ---------------------------------------------------------------------------------------- leave-one-out
def _brute_mean(pairs: np.ndarray, known: np.ndarray) -> np.ndarray:
    out = np.full(pairs.shape[1], np.nan)
    for j in range(pairs.shape[1]):
        rows = [k for k in range(pairs.shape[0]) if known[k] != j]
        if rows:
            out[j] = np.mean([pairs[k, j] for k in rows])
    return out


def _brute_max(pairs: np.ndarray, known: np.ndarray) -> np.ndarray:
    out = np.full(pairs.shape[1], np.nan)
    for j in range(pairs.shape[1]):
        rows = [k for k in range(pairs.shape[0]) if known[k] != j]
        if rows:
            out[j] = max(pairs[k, j] for k in rows)
    return out


@pytest.mark.parametrize("k,n,seed", [(1, 6, 0), (2, 5, 1), (4, 12, 2), (7, 30, 3), (5, 5, 4)])
def test_leave_one_out_mean_and_max_match_a_loop(k: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pairs = rng.normal(size=(k, n))
    known = rng.choice(n, size=k, replace=False)
    before = pairs.copy()
    np.testing.assert_allclose(_leave_one_out_mean(pairs, known), _brute_mean(pairs, known), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(_leave_one_out_max(pairs, known), _brute_max(pairs, known))
    np.testing.assert_array_equal(pairs, before)  # the input is not changed
    if k == 1:  # the only known sample has no other to compare with
        assert np.isnan(_leave_one_out_mean(pairs, known)[known[0]])
        assert np.isnan(_leave_one_out_max(pairs, known)[known[0]])


def test_leave_one_out_leaves_out_only_the_own_pair() -> None:
    # known sample 0 is column 0, known sample 1 is column 2; column 1 is a new sample
    pairs = np.array([[100.0, 1.0, 3.0],
                      [5.0, 2.0, 100.0]])
    known = np.array([0, 2])
    np.testing.assert_array_equal(_leave_one_out_mean(pairs, known), [5.0, 1.5, 3.0])
    np.testing.assert_array_equal(_leave_one_out_max(pairs, known), [5.0, 2.0, 3.0])


# ---------------------------------------------------------------------------------------- the filter
def test_similarity_finds_the_unknown_poison_far_better_than_random(poisoned: dict) -> None:
    store, known, unknown = poisoned["store"], poisoned["known"], poisoned["unknown"]
    budget = Budget(fraction=0.1)
    sim = ExpansionFilter(known, poisoned["ev"].runs, combine=["similarity"], budget=budget).evaluate(store, "digits")
    randoms = [ExpansionFilter(known, poisoned["ev"].runs, combine=["random"], budget=Budget(fraction=0.1),
                               seed=seed).evaluate(store, "digits") for seed in range(5)]
    assert sim.n_flagged == 30 and all(r.n_flagged == 30 for r in randoms)  # the same budget: 10% of 300
    recall = _recall(sim, known, unknown)
    random_recall = max(_recall(r, known, unknown) for r in randoms)
    print(f"similarity recall {recall:.2f}, best random recall {random_recall:.2f}")
    assert recall >= 0.6
    assert recall >= random_recall + 0.4


def test_known_bad_samples_are_always_flagged_as_known(poisoned: dict) -> None:
    store, known = poisoned["store"], poisoned["known"]
    for combine in (["similarity"], ["random"], ["loss", "representation"]):
        flags = ExpansionFilter(known, poisoned["ev"].runs, combine=combine,
                                budget=Budget(fraction=0.0)).evaluate(store, "digits")
        flagged = {s for s, f in zip(flags.sample_ids, flags.flagged, strict=True) if f}
        assert flagged == set(known), combine  # a zero budget flags the known-bad samples only
        reasons = dict(zip(flags.sample_ids, flags.reason, strict=True))
        assert all(reasons[s].startswith("known bad") for s in known)
        assert not any(r.startswith("known bad") for s, r in reasons.items() if s not in known)


def test_reasons_of_new_flags_name_the_most_similar_known_bad_sample(poisoned: dict) -> None:
    store, known = poisoned["store"], poisoned["known"]
    filt = ExpansionFilter(known, poisoned["ev"].runs, combine=["similarity"], budget=Budget(fraction=0.1))
    flags = filt.evaluate(store, "digits")
    cos = filt.evidence_values(store, flags.sample_ids)[1]["similarity"]  # (known x samples)
    new = [i for i, s in enumerate(flags.sample_ids) if flags.flagged[i] and s not in known]
    assert len(new) == 20
    for i in new:
        reason = flags.reason[i]
        top = known[int(np.argmax(cos[:, i]))]
        assert f"resembles {top} (" in reason and "by similarity" in reason, reason
        assert reason.endswith("flagged at top 10.0%")
    kept = [i for i in range(len(flags.sample_ids)) if not flags.flagged[i]]
    assert kept and all("resembles" not in flags.reason[i] and "; kept at top 10.0%" in flags.reason[i] for i in kept)


def test_evidence_runs_are_consistent_cosines(poisoned: dict) -> None:
    """score(k, t) / sqrt(self(k) self(t)) is a cosine: within [-1, 1] before clipping, 1 on the diagonal."""
    store, known, train = poisoned["store"], poisoned["known"], poisoned["train"]
    runs = poisoned["ev"].runs
    ids = train.ids
    scores = store.read_scores(runs["influence"])
    assert scores.height == len(known) * len(ids)
    own = store.read_self_scores(runs["self_influence"])
    self_of = dict(zip(own["sample_id"].to_list(), own["score"].to_list(), strict=True))
    assert all(v > 0 for v in self_of.values())
    cos = np.array([s / np.sqrt(self_of[q] * self_of[t]) for q, t, s in
                    zip(scores["query_id"], scores["sample_id"], scores["score"], strict=True)])
    assert np.abs(cos).max() <= 1 + 1e-3
    diagonal = [c for c, q, t in zip(cos, scores["query_id"], scores["sample_id"], strict=True) if q == t]
    np.testing.assert_allclose(diagonal, 1.0, atol=1e-3)
    filt = ExpansionFilter(known, runs, combine=["similarity", "influence", "representation", "loss", "random"],
                           budget=Budget(fraction=0.1))
    values, matrices = filt.evidence_values(store, ids)
    assert set(values) == {"similarity", "influence", "representation", "loss", "random"}
    for name, slack in (("similarity", 0.0), ("representation", 1e-6)):  # float32 cosines of representations
        assert np.isfinite(values[name]).all()
        assert values[name].min() >= -1.0 - slack and values[name].max() <= 1.0 + slack
        assert matrices[name].min() >= -1.0 - slack and matrices[name].max() <= 1.0 + slack
    # the evidence a filter reads is the run's: influence is the leave-one-out mean of the scores
    where = {s: i for i, s in enumerate(ids)}
    pairs = np.zeros((len(known), len(ids)))
    qi = {q: i for i, q in enumerate(known)}
    for q, t, s in zip(scores["query_id"], scores["sample_id"], scores["score"], strict=True):
        pairs[qi[q], where[t]] = s
    np.testing.assert_allclose(values["influence"], _brute_mean(pairs, np.array([where[k] for k in known])),
                               rtol=1e-6)


def test_auto_budget_flags_at_the_known_bad_quantile(poisoned: dict) -> None:
    store, known = poisoned["store"], poisoned["known"]
    filt = ExpansionFilter(known, poisoned["ev"].runs, combine=["similarity"], quantile=0.0)
    flags = filt.evaluate(store, "digits")
    is_known = np.isin(flags.sample_ids, known)
    assert filt.budget.threshold == pytest.approx(flags.score[is_known].min())
    np.testing.assert_array_equal(flags.flagged, is_known | (flags.score >= filt.budget.threshold))
    assert flags.n_flagged > len(known)
    assert _recall(flags, known, poisoned["unknown"]) >= 0.5
    assert filt.config()["budget"] == "auto" and filt.config()["threshold"] == filt.budget.threshold
    stricter = ExpansionFilter(known, poisoned["ev"].runs, combine=["similarity"], quantile=0.75).evaluate(store, "digits")
    assert stricter.n_flagged <= flags.n_flagged


def test_run_writes_the_flags_to_the_store(poisoned: dict) -> None:
    store, known = poisoned["store"], poisoned["known"]
    frun = ExpansionFilter(known, poisoned["ev"].runs, combine=["similarity"],
                           budget=Budget(fraction=0.1)).run(store, "digits")
    stored = store.read_flags(frun.run_id)
    assert stored.height == N
    assert int(stored["flagged"].sum()) == frun.flags.n_flagged == 30
    assert set(stored.filter(stored["flagged"])["sample_id"].to_list()) == \
        {s for s, f in zip(frun.flags.sample_ids, frun.flags.flagged, strict=True) if f}
    assert set(stored["filter"].to_list()) == {"expansion"}
    config = store.get_run(frun.run_id)["config"]
    assert config["n_flagged"] == 30 and config["settings"]["known_ids"] == known
    assert poisoned["ev"].runs["self_influence"] in str(config["evidence"])


def test_filter_input_errors(poisoned: dict) -> None:
    store, known, runs = poisoned["store"], poisoned["known"], poisoned["ev"].runs
    with pytest.raises(ValueError, match="at least 2 known-bad"):
        ExpansionFilter(known[:1], runs, combine=["similarity"])
    ExpansionFilter(known[:1], runs, combine=["similarity"], budget=Budget(fraction=0.1))  # fine with a budget
    with pytest.raises(ValueError, match="at least 2 known-bad"):  # duplicates count once
        ExpansionFilter([known[0], known[0]], runs, combine=["similarity"])
    with pytest.raises(ValueError, match="unknown evidence gradnorm"):
        ExpansionFilter(known, runs, combine=["similarity", "gradnorm"])
    with pytest.raises(ValueError, match="none given"):
        ExpansionFilter(known, runs, combine=[])
    with pytest.raises(ValueError, match="needs the evidence run.*self_influence"):
        ExpansionFilter(known, {"influence": runs["influence"]}, combine=["similarity"])
    with pytest.raises(ValueError, match="needs the evidence run.*representation"):
        ExpansionFilter(known, {k: v for k, v in runs.items() if k != "representation"}, combine=["representation"])
    with pytest.raises(ValueError, match="empty"):
        ExpansionFilter([], runs, combine=["similarity"], budget=Budget(fraction=0.1))
    with pytest.raises(ValueError, match="quantile"):
        ExpansionFilter(known, runs, combine=["similarity"], quantile=1.5)
    ExpansionFilter(known, {}, combine=["random"])  # random needs no run
    other = [s for s in poisoned["train"].ids if s not in known][:3]
    with pytest.raises(ValueError, match=f"lacks scores against known-bad sample '{other[0]}'"):
        ExpansionFilter(known + other, runs, combine=["influence"]).evaluate(store, "digits")
    with pytest.raises(ValueError, match="not in the dataset, e.g. 'nope'"):
        ExpansionFilter([*known, "nope"], runs, combine=["similarity"]).evaluate(store, "digits")


# ---------------------------------------------------------------------------------------- the evidence
def test_evidence_runs_exist_and_a_repeat_reuses_them(poisoned: dict) -> None:
    store, ev = poisoned["store"], poisoned["ev"]
    assert set(ev.runs) == set(EVIDENCE)
    assert all(store.run_finished(r) for r in ev.runs.values())
    assert ev.behaviour == known_bad_behaviour(poisoned["known"]) == known_bad_behaviour(poisoned["known"][::-1])
    assert store.behaviour(ev.behaviour)["query_ids"] == poisoned["known"]
    n_runs = store.sql("SELECT count(*) AS n FROM runs WHERE kind <> 'filter'")["n"][0]
    assert n_runs == poisoned["runs_before"] + len(EVIDENCE)
    t0 = time.perf_counter()
    with fast_gc():
        again = expansion_evidence(store, poisoned["model"], ClassifierTask(), poisoned["train"],
                                   poisoned["known"], config=EngineConfig(batch_size=100))
    second = time.perf_counter() - t0
    assert again.runs == ev.runs
    assert store.sql("SELECT count(*) AS n FROM runs WHERE kind <> 'filter'")["n"][0] == n_runs  # nothing new was computed
    print(f"first {poisoned['first_seconds']:.2f} s, repeat {second:.2f} s")
    assert second < poisoned["first_seconds"]


def test_evidence_input_errors(poisoned: dict) -> None:
    store, model, train, known = poisoned["store"], poisoned["model"], poisoned["train"], poisoned["known"]
    with pytest.raises(ValueError, match="1 known-bad id.*'digits', e.g. 'not-a-sample'"):
        expansion_evidence(store, model, ClassifierTask(), train, [*known, "not-a-sample"])
    with pytest.raises(ValueError, match="empty"):
        expansion_evidence(store, model, ClassifierTask(), train, [])
    with pytest.raises(ValueError, match="unknown evidence gradients"):
        expansion_evidence(store, model, ClassifierTask(), train, known, evidence=("influence", "gradients"))
    with pytest.raises(ValueError, match="store dataset"):
        expansion_evidence(store, model, ClassifierTask(), Samples(train.data, train.ids), known)
    assert check_known(train, [train.ids[5], train.ids[2]]) == [5, 2]


def _tiny_store(path: Path, features: list[str]) -> tuple[stores.Store, Samples]:
    store = stores.open(path, create=True)
    rows = [{**{f: float((i + j) % 3) for j, f in enumerate(features)}, "label": i % 2, "row": i} for i in range(12)]
    ingest_records(store, {"tiny": rows}, config={"test": "tiny"}, roles={})
    return store, tabular_samples(store, "tiny", features, "label")[0]


def test_expansion_evidence_leaves_the_model_unchanged(tmp_path: Path) -> None:
    store, train = _tiny_store(tmp_path / "st", ["a", "b"])
    torch.manual_seed(0)
    small = MLP(2, [3], 2).eval()
    before = {k: v.clone() for k, v in small.state_dict().items()}
    with fast_gc():
        ev = expansion_evidence(store, small, ClassifierTask(), train, train.ids[:2], evidence=("influence", "loss"))
    assert set(ev.runs) == {"influence", "loss"}
    assert store.read_scores(ev.runs["influence"]).height == 2 * 12
    assert list(small.state_dict()) == list(before)  # not wrapped by kronfluence
    assert all(torch.equal(small.state_dict()[k], v) for k, v in before.items())


def test_expansion_evidence_on_a_one_feature_dataset(tmp_path: Path) -> None:
    store, train = _tiny_store(tmp_path / "st", ["a"])
    torch.manual_seed(0)
    with fast_gc():
        ev = expansion_evidence(store, MLP(1, [3], 2).eval(), ClassifierTask(), train, train.ids[:2],
                                evidence=("influence",))
    assert store.read_scores(ev.runs["influence"]).height == 2 * 12


def test_given_ids_are_flagged_and_calibrate_while_every_known_id_is_a_reference(poisoned: dict) -> None:
    store, known, ev = poisoned["store"], poisoned["known"], poisoned["ev"]
    given = known[:4]
    flags = ExpansionFilter(known, ev.runs, combine=["similarity"], given_ids=given, quantile=0.5).evaluate(store, "digits")
    reason = dict(zip(flags.sample_ids, flags.reason, strict=True))
    flagged = dict(zip(flags.sample_ids, flags.flagged, strict=True))
    score = dict(zip(flags.sample_ids, flags.score, strict=True))
    assert all(flagged[g] and reason[g].startswith("known bad") for g in given)
    threshold = float(np.quantile([score[g] for g in given], 0.5))  # calibrated on the given samples only
    others = [s for s in flags.sample_ids if s not in given]
    assert all(flagged[s] == (score[s] >= threshold) for s in others)
    assert not any(reason[s].startswith("known bad") for s in known[4:])
    with pytest.raises(ValueError, match="subset of known_ids"):
        ExpansionFilter(known[:3], ev.runs, combine=["similarity"], given_ids=[known[5]])
    with pytest.raises(ValueError, match="at least 2 given"):
        ExpansionFilter(known, ev.runs, combine=["similarity"], given_ids=known[:1])


def test_input_evidence_reads_the_first_layer_and_finds_the_trigger(poisoned: dict) -> None:
    store, train, model, known = poisoned["store"], poisoned["train"], poisoned["model"], poisoned["known"]
    with fast_gc():
        ev = expansion_evidence(store, model, ClassifierTask(), train, known, evidence=("input",))
    run = store.get_run(ev.runs["input"])
    assert run["config"]["layer"].startswith("input of the first Linear") and run["config"]["same_label_only"]
    flags = ExpansionFilter(known, ev.runs, combine=["input"], budget=Budget(fraction=0.1)).evaluate(store, "digits")
    assert _recall(flags, known, poisoned["unknown"]) >= 0.6  # raw pixels carry the trigger patch
