"""M2 junk evidence: a small local junk classifier (TF-IDF n-grams + logistic regression).

The paper's M2 split labels text JUNK vs HIGH-QUALITY with an LLM judge; no model can be
downloaded here, so :class:`JunkClassifier` is trained locally on a labelled dataset: TF-IDF of
word 1-2 grams and character 2-5 grams (``char_wb``, robust to spelling and emoji noise),
sublinear tf, ``min_df=2``, and a class-balanced logistic regression. It is deterministic (lbfgs,
no sampling), explains each score by the n-grams that push the text toward junk most
(:meth:`JunkClassifier.top_features`), and, given the junk categories, names the most likely one.

A classifier trained on one generator's junk can just learn that generator: the specs ask for
the score to be tested on junk categories held out of training, which
:func:`leave_one_category_out` does (AUROC of each held-out category vs clean, next to the
in-distribution AUROC). :class:`ClassifierFilter` trains on a labelled store dataset and flags
another dataset's samples whose junk probability reaches a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

import stores

from ..base import Budget, Evidence, Filter, Flags
from .engagement import dataset_fields, sample_texts

#: The ground-truth label of clean text in a category field.
CLEAN = "clean"


class JunkClassifier:
    """TF-IDF (word 1-2 grams + char_wb 2-5 grams) + balanced logistic regression: P(junk | text).

    ``C`` is the inverse regularisation strength; ``min_df`` drops n-grams seen in fewer training
    texts (so one text's oddities are not learned). With ``categories`` given to :meth:`fit`, a
    multinomial model over the junk categories (trained on the junk texts only) names the most
    likely category of a text (:meth:`predict_category`). ``blas_threads`` caps the BLAS threads
    while fitting (1 by default: on these small sparse problems extra threads only contend, and a
    multinomial fit on busy cores ran 30x slower with them).
    """

    def __init__(self, *, C: float = 4.0, min_df: int = 2, max_iter: int = 2000, seed: int = 0,
                 blas_threads: int | None = 1):
        self.C = C
        self.min_df = min_df
        self.max_iter = max_iter
        self.seed = seed
        self.blas_threads = blas_threads
        self.features: Any = None
        self.model: Any = None
        self.category_model: Any = None
        self._names: np.ndarray | None = None

    def _vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import FeatureUnion

        return FeatureUnion([
            ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=self.min_df)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=self.min_df)),
        ])

    def _model(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, class_weight="balanced", max_iter=self.max_iter, random_state=self.seed)

    def fit(self, texts: Sequence[str], is_junk: Sequence[bool] | np.ndarray,
            categories: Sequence[str] | None = None) -> JunkClassifier:
        """Train on ``texts`` labelled junk (True) or clean (False); optionally their junk categories."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.blas_threads):
            return self._fit(texts, np.asarray(is_junk, dtype=bool), categories)

    def _fit(self, texts: Sequence[str], y: np.ndarray, categories: Sequence[str] | None) -> JunkClassifier:
        if len(y) != len(texts):
            raise ValueError(f"{len(texts)} texts for {len(y)} labels")
        if y.all() or not y.any():
            raise ValueError(f"the training texts are all {'junk' if y.all() else 'clean'}: need both classes")
        self.features = self._vectorizer()
        try:
            x = self.features.fit_transform(list(texts))
        except ValueError as exc:  # every n-gram below min_df
            raise ValueError(f"no n-gram occurs in {self.min_df}+ of the {len(texts)} training texts ({exc})") from exc
        self.model = self._model().fit(x, y)
        self._names = None
        self.category_model = None
        if categories is not None:
            cats = np.asarray([str(c) for c in categories])
            if len(cats) != len(y):
                raise ValueError(f"{len(cats)} categories for {len(y)} texts")
            if len(set(cats[y])) >= 2:
                self.category_model = self._model().fit(x[np.flatnonzero(y)], cats[y])
        return self

    def _check(self) -> None:
        if self.model is None:
            raise RuntimeError("the junk classifier is not fitted: call fit(texts, is_junk) first")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability that each text is junk."""
        self._check()
        return self.model.predict_proba(self.features.transform(list(texts)))[:, 1]

    def predict_category(self, texts: Sequence[str]) -> list[str | None]:
        """The most likely junk category of each text (None when fitted without categories)."""
        self._check()
        if self.category_model is None:
            return [None] * len(texts)
        return [str(c) for c in self.category_model.predict(self.features.transform(list(texts)))]

    def top_features(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` n-grams of ``text`` pushing it toward junk most: (``word 'click here'``, contribution).

        The contribution is the n-gram's TF-IDF weight times its coefficient (its share of the
        logit); only positive contributions are listed.
        """
        return self.top_features_many([text], k)[0]

    def top_features_many(self, texts: Sequence[str], k: int = 3) -> list[list[tuple[str, float]]]:
        """:meth:`top_features` of each text, vectorising them once."""
        self._check()
        if self._names is None:
            self._names = np.asarray(self.features.get_feature_names_out())
        x = self.features.transform(list(texts)).tocsr()
        coef = self.model.coef_[0]
        out = []
        for r in range(x.shape[0]):
            idx = x.indices[x.indptr[r]:x.indptr[r + 1]]
            contrib = x.data[x.indptr[r]:x.indptr[r + 1]] * coef[idx]
            top = []
            for j in np.argsort(-contrib, kind="stable")[:k]:
                if contrib[j] <= 0:
                    break
                kind, _, gram = str(self._names[idx[j]]).partition("__")
                top.append((f"{kind} {gram!r}", float(contrib[j])))
            out.append(top)
        return out


def _auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, scores))


def leave_one_category_out(texts: Sequence[str], categories: Sequence[str], *, clean: str = CLEAN,
                           test_texts: Sequence[str] | None = None, test_categories: Sequence[str] | None = None,
                           seed: int = 0, **classifier: Any) -> dict[str, dict]:
    """Does the classifier find junk of a kind it never saw? AUROC per held-out junk category.

    For each junk category ``c`` (every category but ``clean``), a :class:`JunkClassifier`
    (``classifier`` are its settings) is trained on the clean texts and every junk category
    except ``c``, and scored on the test set: ``held_out_auroc`` is the AUROC of ``c``'s junk vs
    the clean texts. ``in_distribution_auroc`` is the same for one classifier trained on all
    categories. The test set is ``test_texts``/``test_categories``, else a seeded 50% split of
    each category. Returns ``{category: {held_out_auroc, in_distribution_auroc, n_train, n_test_junk,
    n_test_clean}}``.
    """
    cats = np.asarray([str(c) for c in categories])
    texts = list(texts)
    if len(cats) != len(texts):
        raise ValueError(f"{len(texts)} texts for {len(cats)} categories")
    if test_texts is None:
        if test_categories is not None:
            raise ValueError("test_categories given without test_texts")
        rng = np.random.default_rng(seed)
        test = np.zeros(len(cats), dtype=bool)
        for c in sorted(set(cats)):
            idx = rng.permutation(np.flatnonzero(cats == c))
            test[idx[: len(idx) // 2]] = True
        train_texts = [t for t, s in zip(texts, test, strict=True) if not s]
        train_cats, test_cats = cats[~test], cats[test]
        test_list = [t for t, s in zip(texts, test, strict=True) if s]
    else:
        if test_categories is None or len(test_categories) != len(test_texts):
            raise ValueError("test_texts need test_categories of the same length")
        train_texts, train_cats = texts, cats
        test_list, test_cats = list(test_texts), np.asarray([str(c) for c in test_categories])
    if clean not in set(train_cats) or clean not in set(test_cats):
        raise ValueError(f"no {clean!r} texts in the {'training' if clean not in set(train_cats) else 'test'} set")
    junk_cats = sorted(set(cats) - {clean})
    if not junk_cats:
        raise ValueError(f"no junk category: every text is {clean!r}")

    is_clean_test = test_cats == clean
    full = JunkClassifier(seed=seed, **classifier).fit(train_texts, train_cats != clean)
    p_full = full.predict_proba(test_list)
    out: dict[str, dict] = {}
    for c in junk_cats:
        keep = train_cats != c
        sub = JunkClassifier(seed=seed, **classifier).fit(
            [t for t, k in zip(train_texts, keep, strict=True) if k], train_cats[keep] != clean)
        rows = is_clean_test | (test_cats == c)
        p = sub.predict_proba([t for t, r in zip(test_list, rows, strict=True) if r])
        positive = test_cats[rows] == c
        out[c] = {"held_out_auroc": _auroc(p, positive), "in_distribution_auroc": _auroc(p_full[rows], positive),
                  "n_train": int(keep.sum()), "n_test_junk": int(positive.sum()), "n_test_clean": int((~positive).sum())}
    return out


def junk_labels(df: pl.DataFrame, dataset: str, label_field: str = "category", clean: str = CLEAN
                ) -> tuple[np.ndarray, list[str] | None]:
    """Junk (True) / clean per sample of a labelled dataset, and the category names when known.

    ``label_field`` is a category (junk = anything but ``clean``) or a bool field; without it, a
    bool ``is_junk`` field is used. Errors name the dataset and the field.
    """
    field = label_field if label_field in df.columns else "is_junk" if "is_junk" in df.columns else None
    if field is None:
        raise ValueError(f"dataset {dataset!r} has no label field {label_field!r} (nor a bool is_junk field) to "
                         f"train the junk classifier on; its fields: {', '.join(dataset_fields(df))}")
    col = df[field]
    if col.null_count():
        raise ValueError(f"dataset {dataset!r}: {col.null_count()} sample(s) have no {field!r} label")
    if col.dtype == pl.Boolean:
        y, cats = col.to_numpy().astype(bool), None
    else:
        cats = col.cast(pl.String).to_list()
        y = np.array([c != clean for c in cats])
    if y.all() or not y.any():
        raise ValueError(f"dataset {dataset!r} field {field!r} has a single class "
                         f"({'junk' if y.all() else clean!r} only): the junk classifier needs clean and junk samples")
    return y, cats


class ClassifierFilter(Filter):
    """Flags samples the local junk classifier scores at ``threshold`` or more (P(junk)).

    The classifier is trained on ``train_dataset`` (labelled by ``label_field``; see
    :func:`junk_labels`) and scores the evaluated dataset; scoring the training set itself gives
    in-sample (optimistic) probabilities. Each reason gives the probability, the n-grams pushing
    the text toward junk most, and the most likely junk category when the labels name categories.
    """

    name = "junk_classifier"

    def __init__(self, train_dataset: str, *, label_field: str = "category", clean: str = CLEAN,
                 threshold: float = 0.5, C: float = 4.0, min_df: int = 2, top_k: int = 3, seed: int = 0):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}")
        super().__init__(Budget(fraction=None, threshold=threshold))
        self.train_dataset = train_dataset
        self.label_field = label_field
        self.clean = clean
        self.threshold = threshold
        self.C = C
        self.min_df = min_df
        self.top_k = top_k
        self.seed = seed

    def fit(self, store: stores.Store) -> JunkClassifier:
        """The classifier trained on ``train_dataset``."""
        df = store.read_samples(self.train_dataset)
        y, cats = junk_labels(df, self.train_dataset, self.label_field, self.clean)
        return JunkClassifier(C=self.C, min_df=self.min_df, seed=self.seed).fit(
            sample_texts(df, self.train_dataset), y, cats)

    def explain(self, top: list[tuple[str, float]], p: float, category: str | None, flagged: bool) -> str:
        """A sample's reason: probability vs threshold, top junk n-grams, likely category."""
        feats = ", ".join(f"{name} ({w:+.2f})" for name, w in top) or "none"
        cat = f"; likely category {category}" if category else ""
        verdict = "flagged" if flagged else "kept"
        return f"junk probability {p:.2f} ({'>=' if flagged else '<'} {self.threshold:g}){cat}; top junk n-grams: {feats}; {verdict}"

    def score(self, store: stores.Store, dataset: str, df: pl.DataFrame | None = None) -> ClassifierScores:
        """Train on ``train_dataset``, then score every sample of ``dataset`` (``df``: its samples, if read)."""
        clf = self.fit(store)
        df = store.read_samples(dataset) if df is None else df
        return ClassifierScores.of(clf, sample_texts(df, dataset), self.top_k)

    def evaluate(self, store: stores.Store, dataset: str) -> Flags:
        """Train, score ``dataset``, flag P(junk) >= threshold, and explain each sample."""
        df = store.read_samples(dataset)
        s = self.score(store, dataset, df)
        ids = df["sample_id"].to_list()
        flagged = self.budget.select(s.probability)
        reasons = [self.explain(s.top[i], float(s.probability[i]), s.category[i] if flagged[i] else None,
                                bool(flagged[i])) for i in range(len(ids))]
        ev = Evidence("junk_probability", ids, s.probability, source=f"classifier trained on {self.train_dataset}",
                      unit="P(junk)")
        return Flags(self.name, ids, s.probability, flagged, reasons, [ev])


@dataclass
class ClassifierScores:
    """A fitted classifier's verdict on some texts: P(junk), likely category, top junk n-grams."""

    probability: np.ndarray
    category: list[str | None]
    top: list[list[tuple[str, float]]]

    @classmethod
    def of(cls, clf: JunkClassifier, texts: Sequence[str], top_k: int = 3) -> ClassifierScores:
        """Score ``texts`` with ``clf``."""
        return cls(clf.predict_proba(texts), clf.predict_category(texts), clf.top_features_many(texts, top_k))


__all__ = ["CLEAN", "ClassifierFilter", "ClassifierScores", "JunkClassifier", "junk_labels", "leave_one_category_out"]
