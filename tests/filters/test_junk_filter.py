"""The combined junk filter (rules, engagement, classifier, score runs) and the junk-ratio report."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

import stores
from curation.steps.records import ingest_records
from filters.base import Budget, Flags, rank_percentile
from filters.junk.classifier import ClassifierFilter, JunkClassifier
from filters.junk.engagement import engagement_rule, engagement_scores
from filters.junk.filter import JunkFilter, Threshold, reason_categories
from filters.junk.report import curated_ratio, format_junk_ratio, junk_ratio
from filters.junk.rules import category, rule_verdicts
from tests.filters.test_junk_classifier import junk_corpus

TEXT = {"text_field": "text"}
#: The tiny dataset the junk ratio is checked on by hand.
TINY = ["clean", "clean", "clean", "clickbait", "clickbait", "spam", "brief", "clean"]


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch):
    def refuse(*args, **kwargs):
        raise OSError("network access during a junk check")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="module")
def junk_store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A labelled training set, and posts with categories, engagement counts and a perplexity run."""
    tmp = tmp_path_factory.mktemp("junk")
    store = stores.open(tmp / "s")
    train_texts, train_cats = junk_corpus(n_clean=20, n_per=8, seed=0)
    texts, cats = junk_corpus(n_clean=12, n_per=4, seed=1)
    rng = np.random.default_rng(5)
    posts = []
    for t, c in zip(texts, cats, strict=True):
        popular = c in ("clickbait", "brief", "lifestyle") and rng.random() < 0.7
        likes = int(rng.integers(400, 5000)) if popular else int(rng.integers(0, 200))
        posts.append({"text": t, "category": c, "likes": likes, "shares": likes // 4, "replies": int(rng.integers(0, 30)),
                      "n_words": len(t.split())})
    ingest_records(store, {"train": [{"text": t, "category": c} for t, c in zip(train_texts, train_cats, strict=True)],
                           "posts": posts, "plain": [{"text": t} for t in texts],
                           "tiny": [{"text": f"post number {i}", "category": c} for i, c in enumerate(TINY)]},
                   config={"generator": "test"}, roles=TEXT)
    df = store.read_samples("posts")
    ids = df["sample_id"].to_list()
    perplexity = rng.normal(20.0, 2.0, size=len(ids))
    perplexity[3] = 95.0  # one outlier, 3+ robust sds above the rest
    assert ids.count(ids[0]) == 1 and ids.count(ids[3]) == 1  # (short junk posts can repeat: same text, same id)
    scored: dict[str, float] = {}  # one score per id (short junk posts can repeat); the first post has none
    for s, v in zip(ids[1:], perplexity[1:], strict=True):
        scored.setdefault(s, float(np.float32(v)))
    with store.run("test-evidence") as run:
        run.write("self_scores", {"sample_id": list(scored), "method": ["perplexity"] * len(scored),
                                  "score": list(scored.values())}, shard=0)
    return {"store": store, "ids": ids, "df": df, "texts": df["text"].to_list(), "run": run.id,
            "perplexity": np.array([scored.get(s, np.nan) for s in ids]),
            "train": (train_texts, train_cats)}


def test_threshold_rules() -> None:
    assert Threshold.of(3) == Threshold(3.0, "value") and Threshold.of(("z", 2.5)) == Threshold(2.5, "robust_z")
    x = np.array([1.0, 2.0, 3.0, 4.0, 100.0, np.nan])
    z = Threshold.of(("z", 3.0)).robust_z(x)  # median 3, MAD 1
    np.testing.assert_allclose(z[:5], (x[:5] - 3.0) / 1.4826)
    assert Threshold.of(("z", 3.0)).mask(x).tolist() == [False, False, False, False, True, False]
    assert Threshold.of(4.0).mask(x).tolist() == [False, False, False, True, True, False]
    assert Threshold.of(("z", 3.0)).mask(np.array([5.0, 5.0, 5.0, 6.0])).tolist() == [False, False, False, True]  # MAD 0
    assert Threshold.of(("z", 3.0)).describe() == "robust z > 3" and Threshold.of(2).describe() == ">= 2"
    with pytest.raises(ValueError, match="threshold kind must be one of value, robust_z"):
        Threshold.of(("quantile", 0.9))


def test_any_flags_the_union_with_every_evidence_in_the_reason(junk_store: dict, no_network) -> None:
    store, ids, df, texts = junk_store["store"], junk_store["ids"], junk_store["df"], junk_store["texts"]
    clf = ClassifierFilter("train")
    f = JunkFilter(classifier=clf, self_scores={"perplexity": (junk_store["run"], ("z", 3.0))})
    frun = f.run(store, "posts")
    flags = store.read_flags(frun.run_id)
    assert flags["sample_id"].to_list() == ids and frun.flags.filter == "junk"
    # each evidence recomputed on its own
    verdicts = rule_verdicts(texts)
    n_rules = np.array([sum(v[i] is not None for v in verdicts.values()) for i in range(len(ids))], float)
    pop = (df["likes"] + df["shares"] + df["replies"]).to_numpy().astype(float)
    words = df["n_words"].to_numpy().astype(float)
    eng_flag = engagement_rule(pop, words)
    proba = clf.evaluate(store, "posts").score
    ppl = junk_store["perplexity"]
    finite = ppl[np.isfinite(ppl)]
    med = np.median(finite)
    ppl_flag = np.isfinite(ppl) & ((ppl - med) / (1.4826 * np.median(np.abs(finite - med))) > 3.0)
    assert ppl_flag.sum() == 1 and ppl_flag[3]
    expected = (n_rules >= 1) | eng_flag | (proba >= 0.5) | ppl_flag
    assert eng_flag.any() and (proba >= 0.5).any()
    assert flags["flagged"].to_list() == expected.tolist()
    score = np.nanmax(np.vstack([rank_percentile(n_rules), rank_percentile(engagement_scores(pop, words)), rank_percentile(proba),
                                 rank_percentile(ppl)]), axis=0)
    np.testing.assert_allclose(flags["score"].to_numpy(), score)
    reasons = flags["reason"].to_list()
    cats = df["category"].to_list()
    for i, r in enumerate(reasons):
        if not expected[i]:
            assert r.startswith("kept: no evidence flags it; rules: ") and "classifier: P(junk)" in r
            continue
        assert r.startswith("junk [")
        assert ("rules: " in r) == (n_rules[i] >= 1) and ("engagement " in r) == bool(eng_flag[i])
        assert ("classifier: P(junk)" in r) == bool(proba[i] >= 0.5) and ("perplexity " in r) == bool(ppl_flag[i])
        if n_rules[i] >= 1:  # the rule categories are named in the head of the reason
            for v in verdicts.values():
                if v[i] is not None:
                    assert category(v[i]) in reason_categories(r)
        if eng_flag[i]:
            assert "short and popular" in reason_categories(r) and "popularity" in r
    assert "robust z" in reasons[3] and "(robust z > 3)" in reasons[3]
    quiz = [r for r, c, p in zip(reasons, cats, proba, strict=True) if c == "quiz" and p >= 0.5]
    assert quiz and all("quiz" in reason_categories(r) and "top n-grams" in r for r in quiz)
    config = json.loads(store.sql("SELECT config FROM runs WHERE run_id = ?", [frun.run_id])["config"][0])["settings"]
    assert config["combine"] == "any" and config["self_scores"]["perplexity"]["threshold"] == "robust z > 3"
    assert [e["name"] for e in config["evidences_used"]] == ["rules", "engagement", "classifier", "perplexity"]
    assert config["classifier"]["train_dataset"] == "train"


def test_mean_flags_a_budget_and_names_the_evidences(junk_store: dict) -> None:
    store, texts = junk_store["store"], junk_store["texts"]
    train_texts, train_cats = junk_store["train"]
    clf = JunkClassifier().fit(train_texts, [c != "clean" for c in train_cats], train_cats)
    f = JunkFilter(rules=["gopher_repetition"], engagement=False, classifier=clf,
                   self_scores={"perplexity": (junk_store["run"], 30.0)}, combine="mean", budget=Budget(fraction=0.25))
    flags = f.evaluate(store, "posts")
    n = len(texts)
    assert flags.n_flagged == round(0.25 * n)
    rep = np.array([v is not None for v in rule_verdicts(texts, ["gopher_repetition"])["gopher_repetition"]], float)
    mean = np.nanmean(np.vstack([rank_percentile(rep), rank_percentile(clf.predict_proba(texts)),
                                 rank_percentile(junk_store["perplexity"])]), axis=0)
    np.testing.assert_allclose(flags.score, mean)
    assert set(np.flatnonzero(flags.flagged)) == set(np.argsort(-mean, kind="stable")[: flags.n_flagged])
    for r, flagged in zip(flags.reason, flags.flagged, strict=True):
        assert r.startswith("junk [" if flagged else "kept: ") and "mean evidence percentile" in r
        assert "rules: " in r and "classifier: P(junk)" in r and "perplexity" in r and "engagement" not in r
    assert [e.name for e in flags.evidence] == ["rules", "classifier", "perplexity"]
    assert f.config()["budget"] == "top 25.0%"


def test_settings_and_missing_evidence_are_refused(junk_store: dict) -> None:
    store = junk_store["store"]
    with pytest.raises(ValueError, match="combine must be one of any, mean"):
        JunkFilter(combine="max")
    with pytest.raises(ValueError, match="a budget needs combine='mean'"):
        JunkFilter(budget=Budget(fraction=0.1))
    with pytest.raises(ValueError, match="unknown rule set"):
        JunkFilter(rules=["magic"])
    with pytest.raises(ValueError, match="clash with the built-in evidences"):
        JunkFilter(self_scores={"rules": (junk_store["run"], 1.0)})
    with pytest.raises(ValueError, match="not fitted"):
        JunkFilter(classifier=JunkClassifier())
    with pytest.raises(ValueError, match="dataset 'plain' has no popularity field"):
        JunkFilter(rules=False, engagement=True).evaluate(store, "plain")
    with pytest.raises(ValueError, match="no junk evidence to use on dataset 'plain'"):
        JunkFilter(rules=False).evaluate(store, "plain")  # engagement is skipped: no popularity fields


# --------------------------------------------------------------------------- junk ratio
def _flags_run(store: stores.Store, ids: list[str], flagged: list[bool], reasons: list[str]) -> str:
    flags = Flags("junk", ids, np.arange(len(ids), dtype=float), np.array(flagged), reasons)
    with store.run("filter", config={"filter": "junk"}, dataset="tiny") as run:
        run.write("flags", flags.table(), shard=0)
    return run.id


def test_junk_ratio_by_hand(junk_store: dict) -> None:
    store = junk_store["store"]
    ids = store.read_samples("tiny")["sample_id"].to_list()
    flagged = [False, True, False, True, True, True, False, False]
    reasons = ["kept", "junk [uncategorised]: flagged by perplexity 90",
               "kept", "junk [clickbait, extremely brief]: flagged by ...", "junk [clickbait]: flagged by ...",
               "rejected by 1 of 4 rule sets: gopher_repetition: dup_line_frac (spam or repetitive); flagged", "kept"]
    run_id = _flags_run(store, ids[:7], flagged[:7], reasons)  # the last sample is not in the run: kept

    truth = junk_ratio(store, "tiny")
    assert truth["flags"] is None and truth["curated"] is None
    assert truth["truth"]["n_junk"] == 4 and truth["truth"]["junk_share"] == 0.5
    assert truth["truth"]["by_category"]["clickbait"] == {"n": 2, "share": 0.25}

    d = junk_ratio(store, "tiny", run_id)
    json.dumps(d)  # plain JSON
    assert d["n_samples"] == 8
    fl = d["flags"]
    assert fl["n_flagged"] == 4 and fl["flagged_share"] == 0.5 and fl["filter"] == "junk"
    assert fl["by_reason_category"] == {"clickbait": {"n": 2, "share": 0.25}, "extremely brief": {"n": 1, "share": 0.125},
                                        "spam or repetitive": {"n": 1, "share": 0.125},
                                        "uncategorised": {"n": 1, "share": 0.125}}
    assert fl["by_true_category"]["clean"] == {"n": 4, "n_flagged": 1, "flagged_share": 0.25}
    assert fl["by_true_category"]["brief"] == {"n": 1, "n_flagged": 0, "flagged_share": 0.0}
    assert fl["precision"] == 0.75 and fl["recall"] == 0.75  # 3 of 4 flagged are junk; 3 of 4 junk flagged
    cur = d["curated"]
    assert cur["n_samples"] == 4 and cur["n_removed"] == 4
    assert cur["truth"]["n_junk"] == 1 and cur["truth"]["junk_share"] == 0.25  # only the brief post is left
    assert cur["truth"]["by_category"] == {"brief": {"n": 1, "share": 0.25}, "clean": {"n": 3, "share": 0.75}}
    assert curated_ratio(store, "tiny", run_id) == cur["truth"]

    table = format_junk_ratio(d)
    assert "junk ratio of dataset 'tiny': 8 samples" in table
    assert f"flagged by junk run {run_id}: 4 (50.0%); precision 75.0%, recall 75.0%" in table
    line = next(x for x in table.splitlines() if x.startswith("clickbait"))
    assert line.split() == ["clickbait", "2", "(25.0%)", "2", "of", "2", "(100%)", "0", "(0.0%)"]
    junk_line = next(x for x in table.splitlines() if x.startswith("junk (all categories)"))
    assert "4 (50.0%)" in junk_line and "1 (25.0%)" in junk_line
    assert "  uncategorised" in table

    with pytest.raises(ValueError, match="dataset 'tiny' has no category field 'label' and no flags run"):
        junk_ratio(store, "tiny", category_field="label")
    with pytest.raises(ValueError, match="dataset 'tiny' has no category field 'label'"):
        curated_ratio(store, "tiny", run_id, category_field="label")
    only_flags = junk_ratio(store, "tiny", run_id, category_field=None)
    assert only_flags["truth"] is None and only_flags["curated"]["truth"] is None and "precision" not in only_flags["flags"]
    assert "flagged by reason category" in format_junk_ratio(only_flags)
