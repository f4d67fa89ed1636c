"""The local junk classifier (M2): deterministic scores, reasons, held-out categories, the store filter."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import stores
from curation.steps.records import ingest_records
from filters.junk.classifier import (
    ClassifierFilter,
    JunkClassifier,
    junk_labels,
    leave_one_category_out,
)

TEXT = {"text_field": "text"}

# clean prose: template sentences about town business; conspiracy posts are the same prose with
# claims added as clauses, so only their vocabulary gives them away
NOUNS = ["committee", "council", "museum", "library", "hospital", "school board", "farm cooperative", "railway company",
         "water authority", "university", "court", "planning office"]
PLACES = ["the north", "the town centre", "the valley", "the old port", "the eastern district", "the county"]
VERBS = ["reviewed", "repaired", "measured", "published", "extended", "approved", "postponed", "inspected", "funded"]
OBJECTS = ["the budget for next year", "the old bridge", "the new timetable", "the report on flooding",
           "the plans for a cycle lane", "the study of wheat yields", "the opening hours", "the school meals contract"]
WHENS = ["on Tuesday", "last winter", "this spring", "after a long debate", "in a public meeting", "earlier this month"]
JUNK_SENTENCES = {
    "conspiracy": ["but they do not want you to know the real reason", "as part of a secret cover-up by the elites",
                   "because the shadow cabal ordered it", "and the mainstream media will never report the truth",
                   "to hide what is really in the water", "so wake up and ask who profits from the lies"],
    "clickbait": ["You won't believe what happened next!!", "Number 7 will SHOCK you", "Doctors HATE this one trick",
                  "This changes everything, watch till the end", "What she did next left everyone speechless"],
    "brief": ["lol same", "omg so true", "this!!", "mood", "cant even rn"],
    "spam": ["BUY NOW limited offer click here", "FREE followers click the link in bio",
             "cheap pills best price order today", "WIN a free phone click here now"],
    "lifestyle": ["Just landed in Dubai first class again #blessed", "New Lambo day, living my best life #luxury",
                  "Brunch on the yacht with the girls #richlife", "Another designer bag haul, sorry not sorry #goals"],
    "quiz": ["Which pizza topping are you? Take the quiz!", "Only geniuses can solve this riddle, comment your answer",
             "Guess the celebrity from their baby photo, answers below", "Tag a friend who would fail this quiz"],
}


def junk_corpus(n_clean: int = 40, n_per: int = 16, seed: int = 0) -> tuple[list[str], list[str]]:
    """Small realistic texts and their categories: clean prose (4-6 sentences), and six junk categories.

    Conspiracy posts read like the clean prose (4-5 sentences, two carrying a claim), so only their
    vocabulary gives them away; the other junk is short, hype or repetitive.
    """
    rng = np.random.default_rng(seed)
    texts, cats = [], []

    def sentence(claim: str | None = None) -> str:
        s = f"The {rng.choice(NOUNS)} in {rng.choice(PLACES)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(WHENS)}"
        return s + (f", {claim}." if claim else ".")

    for _ in range(n_clean):
        texts.append(" ".join(sentence() for _ in range(rng.integers(4, 7))))
        cats.append("clean")
    for cat, pool in JUNK_SENTENCES.items():
        for _ in range(n_per):
            if cat == "conspiracy":
                k = int(rng.integers(4, 6))
                claims = set(rng.choice(k, size=2, replace=False).tolist())
                text = " ".join(sentence(str(rng.choice(pool)) if i in claims else None) for i in range(k))
            elif cat == "spam":
                text = " ".join([pool[rng.integers(len(pool))]] * int(rng.integers(2, 5)))
            else:
                text = " ".join(rng.choice(pool, size=int(rng.integers(1, 3)), replace=False))
            texts.append(text)
            cats.append(cat)
    return texts, cats


def pairwise_auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """AUROC by definition: P(score of a positive > score of a negative), ties counting half."""
    pos, neg = scores[positive], scores[~positive]
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg)))


def test_classifier_separates_junk_and_explains_it() -> None:
    texts, cats = junk_corpus(seed=0)
    y = np.array([c != "clean" for c in cats])
    clf = JunkClassifier().fit(texts, y, cats)
    test_texts, test_cats = junk_corpus(seed=1)
    p = clf.predict_proba(test_texts)
    assert p.shape == (len(test_texts),) and np.all((p >= 0) & (p <= 1))
    assert roc_auc_score([c != "clean" for c in test_cats], p) > 0.95
    again = JunkClassifier().fit(texts, y, cats).predict_proba(test_texts)
    np.testing.assert_array_equal(p, again)  # deterministic
    top = clf.top_features("You won't believe what happened next!! Doctors HATE this one trick", k=3)
    assert 1 <= len(top) <= 3 and all(w > 0 for _, w in top)
    assert [w for _, w in top] == sorted((w for _, w in top), reverse=True)
    assert all(name.startswith(("word '", "char '")) for name, _ in top)
    assert clf.predict_category(["Which pizza topping are you? Take the quiz!"]) == ["quiz"]
    assert JunkClassifier().fit(texts, y).predict_category(["x"]) == [None]
    with pytest.raises(ValueError, match="need both classes"):
        JunkClassifier().fit(texts[:5], [False] * 5)
    with pytest.raises(RuntimeError, match="not fitted"):
        JunkClassifier().predict_proba(["x"])


def test_leave_one_category_out_matches_sklearn_and_exposes_distinctive_category() -> None:
    texts, cats = junk_corpus(seed=0)
    test_texts, test_cats = junk_corpus(n_clean=30, n_per=12, seed=1)
    res = leave_one_category_out(texts, cats, test_texts=test_texts, test_categories=test_cats)
    assert sorted(res) == sorted(set(cats) - {"clean"})
    # the held-out AUROC of conspiracy, recomputed with sklearn and by definition
    tc, c = np.array(test_cats), np.array(cats)
    keep = c != "conspiracy"
    sub = JunkClassifier().fit([t for t, k in zip(texts, keep, strict=True) if k], c[keep] != "clean")
    rows = (tc == "clean") | (tc == "conspiracy")
    p = sub.predict_proba([t for t, r in zip(test_texts, rows, strict=True) if r])
    positive = tc[rows] == "conspiracy"
    assert res["conspiracy"]["held_out_auroc"] == pytest.approx(roc_auc_score(positive, p))
    assert res["conspiracy"]["held_out_auroc"] == pytest.approx(pairwise_auroc(p, positive))
    assert res["conspiracy"]["n_test_junk"] == 12 and res["conspiracy"]["n_test_clean"] == 30
    assert res["conspiracy"]["n_train"] == len(texts) - 16
    # conspiracy reads like the clean prose but for its vocabulary: unseen, it is missed
    assert res["conspiracy"]["in_distribution_auroc"] > 0.95
    assert res["conspiracy"]["held_out_auroc"] < res["conspiracy"]["in_distribution_auroc"] - 0.15
    assert all(res[c]["held_out_auroc"] > 0.95 for c in ("clickbait", "spam", "quiz"))  # hype junk generalises
    # the seeded 50% split: half of each category on each side
    small, small_cats = junk_corpus(n_clean=20, n_per=6, seed=2)
    split = leave_one_category_out(small, small_cats, seed=3)
    assert split["quiz"]["n_test_junk"] == 3 and split["quiz"]["n_test_clean"] == 10
    assert split["quiz"]["n_train"] == len(small) // 2 - 3  # the training half, less its quiz texts
    with pytest.raises(ValueError, match="no 'clean' texts"):
        leave_one_category_out(texts[40:], cats[40:])


@pytest.fixture(scope="module")
def labelled_store(tmp_path_factory: pytest.TempPathFactory) -> stores.Store:
    """Datasets labelled by category (train, target), by a bool is_junk (flags), and all clean (allclean)."""
    store = stores.open(tmp_path_factory.mktemp("clf") / "s")
    train, target = junk_corpus(n_clean=20, n_per=8, seed=0), junk_corpus(n_clean=20, n_per=6, seed=1)
    records = {
        "train": [{"text": t, "category": c} for t, c in zip(*train, strict=True)],
        "target": [{"text": t, "category": c} for t, c in zip(*target, strict=True)],
        "flags": [{"text": t, "is_junk": c != "clean"} for t, c in zip(*train, strict=True)],
        "allclean": [{"text": t, "category": "clean"} for t in train[0][:10]],
    }
    ingest_records(store, records, config={"generator": "test"}, roles=TEXT)
    return store


def test_classifier_filter_flags_with_reasons(labelled_store: stores.Store) -> None:
    store = labelled_store
    frun = ClassifierFilter("train", threshold=0.5).run(store, "target")
    flags = store.read_flags(frun.run_id)
    samples = store.read_samples("target")
    cat = dict(zip(samples["sample_id"].to_list(), samples["category"].to_list(), strict=True))
    flagged = dict(zip(flags["sample_id"].to_list(), flags["flagged"].to_list(), strict=True))
    truth = np.array([cat[s] != "clean" for s in flags["sample_id"]])
    assert roc_auc_score(truth, flags["score"].to_numpy()) > 0.95
    assert np.array_equal(flags["flagged"].to_numpy(), flags["score"].to_numpy() >= 0.5)
    assert not any(flagged[s] for s in cat if cat[s] == "clean")
    quiz = next(r for s, r in zip(flags["sample_id"], flags["reason"], strict=True) if cat[s] == "quiz" and flagged[s])
    assert quiz.startswith("junk probability ") and "likely category quiz" in quiz and "top junk n-grams: " in quiz
    assert quiz.endswith("; flagged")


def test_classifier_filter_labels_and_their_errors(labelled_store: stores.Store) -> None:
    store = labelled_store
    y, names = junk_labels(store.read_samples("flags"), "flags")  # falls back to a bool is_junk field
    assert names is None and y.sum() == 6 * 8
    assert ClassifierFilter("flags").fit(store).category_model is None
    with pytest.raises(ValueError, match=r"dataset 'train' has no label field 'label' \(nor a bool is_junk field\) "
                                         r"to train the junk classifier on; its fields: text, category"):
        ClassifierFilter("train", label_field="label").fit(store)
    with pytest.raises(ValueError, match="dataset 'allclean' field 'category' has a single class"):
        ClassifierFilter("allclean").evaluate(store, "train")
    with pytest.raises(ValueError, match="threshold must be a probability"):
        ClassifierFilter("train", threshold=2.0)
