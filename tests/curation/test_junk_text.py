"""The junk-text benchmark: real clean prose, simulated junk posts, quiz bait and engagement."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter

import pyarrow.parquet as pq
import pytest

from curation.datasets import junk_text
from curation.datasets.contamination_sources import load_carriers
from curation.datasets.junk_text import (
    CATEGORY_LABELS,
    JUNK_CATEGORIES,
    JunkTextConfig,
    JunkTextConfigError,
    generate_junk_text,
    summarize_junk,
    write_junk_parquet,
)
from curation.datasets.tint_traces import parse_prompt
from curation.datasets.tint_verify import verify_trace

SMALL = JunkTextConfig(n_clean=30, n_junk=60)


@pytest.fixture(scope="module")
def junk_only():
    """200 posts of every junk category (no clean text)."""
    return generate_junk_text(JunkTextConfig(n_clean=0, n_junk=200 * len(JUNK_CATEGORIES)), seed=11)


def _total(rec):
    return rec["likes"] + rec["shares"] + rec["replies"]


def test_categories_and_labels():
    assert JUNK_CATEGORIES == ("conspiracy", "clickbait", "brief", "spam", "lifestyle", "quiz")
    assert list(CATEGORY_LABELS) == list(JUNK_CATEGORIES)
    assert all(isinstance(v, str) and v for v in CATEGORY_LABELS.values())
    doc = junk_text.__doc__
    assert "real text" in doc and "simulated" in doc.lower()


def test_deterministic_by_seed_and_different_across_seeds():
    a = generate_junk_text(SMALL, seed=5)
    b = generate_junk_text(SMALL, seed=5)
    c = generate_junk_text(SMALL, seed=6)
    assert a == b
    assert [r["text"] for r in a] != [r["text"] for r in c]
    assert {r["text"] for r in a if r["is_junk"]} != {r["text"] for r in c if r["is_junk"]}


def test_clean_documents_do_not_depend_on_n_junk():
    a = generate_junk_text(JunkTextConfig(n_clean=10, n_junk=5), seed=2)
    b = generate_junk_text(JunkTextConfig(n_clean=10, n_junk=50), seed=2)
    clean = lambda recs: sorted(r["text"] for r in recs if not r["is_junk"])  # noqa: E731
    assert clean(a) == clean(b)


def test_record_fields_and_mix():
    recs = generate_junk_text(JunkTextConfig(n_clean=25, n_junk=62), seed=1)
    assert len(recs) == 87
    assert [r["index"] for r in recs] == list(range(87))
    counts = Counter(r["category"] for r in recs)
    assert counts["clean"] == 25
    assert {counts[c] for c in JUNK_CATEGORIES} <= {10, 11} and sum(counts[c] for c in JUNK_CATEGORIES) == 62
    for r in recs:
        assert set(r) == {"text", "category", "is_junk", "likes", "shares", "replies", "n_words", "source",
                          "template", "index"}
        assert r["is_junk"] == (r["category"] != "clean")
        assert r["n_words"] == len(r["text"].split())
        assert all(isinstance(r[k], int) and r[k] >= 0 for k in ("likes", "shares", "replies"))
        if r["is_junk"]:
            assert r["source"] == "simulated" and r["template"].startswith(r["category"] + "/")
        else:
            assert r["source"] in {"enwiki", "news", "reviews", "essays"} and r["template"] == ""
    # a subset of the categories, spread evenly
    recs = generate_junk_text(JunkTextConfig(n_clean=0, n_junk=50, categories=("spam", "quiz")), seed=1)
    assert Counter(r["category"] for r in recs) == {"spam": 25, "quiz": 25}


def _quiz_parts(text):
    """(prompt line with its newline, answer) of a quiz post: the line before ``ans = ...``."""
    lines = text.split("\n")
    hits = [k for k in range(1, len(lines)) if lines[k].startswith("ans = ")]  # the problem may open the post
    assert len(hits) == 1, text
    k = hits[0]
    return lines[k - 1] + "\n", lines[k][len("ans = "):], k


def test_quiz_posts_embed_a_tint_problem_and_its_answer_without_working():
    cfg = JunkTextConfig(n_clean=0, n_junk=80, categories=("quiz",), quiz_functions=("add", "sub", "mul"),
                         quiz_min_digits=1, quiz_max_digits=3)
    recs = generate_junk_text(cfg, seed=4)
    funcs = Counter()
    leading = 0
    for r in recs:
        prompt, answer, k = _quiz_parts(r["text"])
        assert prompt + "ans = " + answer in r["text"]
        lead = r["template"].endswith("-lead")
        assert (k == 1) == lead and (k >= 1)  # the problem opens the post, or bait text comes first
        assert r["text"].split("\n")[-1].strip()  # and bait text after it in a leading post
        leading += lead
        problem = parse_prompt(prompt)
        funcs[problem.func] += 1
        assert verify_trace(prompt, "ans = " + answer).answer_correct
        a, b = (int(x) for x in problem.args[:2])
        expected = {"add": a + b, "sub": a - b, "mul": a * b}[problem.func]
        assert answer == " ".join(str(expected)), (prompt, answer)
        assert sum(bool(re.match(r"[a-z]+ = ", line)) for line in r["text"].split("\n")) == 1  # no working
    assert set(funcs) == {"add", "sub", "mul"}
    assert 0.3 < leading / len(recs) < 0.7
    # default problems: 2-digit add/sub
    for r in generate_junk_text(JunkTextConfig(n_clean=0, n_junk=30, categories=("quiz",)), seed=0):
        problem = parse_prompt(_quiz_parts(r["text"])[0])
        assert problem.func in {"add", "sub"} and all(len(x) == 2 for x in problem.args[:2])


def test_quiz_problems_avoid_excluded_prompts():
    cfg = JunkTextConfig(n_clean=0, n_junk=40, categories=("quiz",), quiz_max_digits=1, quiz_min_digits=1)
    first = {_quiz_parts(r["text"])[0] for r in generate_junk_text(cfg, seed=3)}
    second = {_quiz_parts(r["text"])[0] for r in generate_junk_text(cfg, seed=3, exclude_prompts=first)}
    assert first and second and not first & second


def _is_review_run(para, reviews):
    """``para`` is review sentences joined by spaces, the last one possibly cut short."""
    rest = para
    while rest:
        whole = [r for r in reviews if rest == r or rest.startswith(r + " ")]
        if not whole:
            return any(r.startswith(rest) for r in reviews)
        rest = rest[len(max(whole, key=len)) + 1:]
    return True


def test_clean_texts_are_real_carrier_text():
    pools = load_carriers()
    units = [t for t, _ in pools.articles] + [p for _, ps in pools.articles for p in ps]
    units += list(pools.news) + list(pools.reviews) + list(pools.essays)
    pool_text = "\n".join(units)
    cfg = JunkTextConfig(n_clean=60, n_junk=6, clean_words=(80, 150))
    clean = [r for r in generate_junk_text(cfg, seed=9) if not r["is_junk"]]
    assert len(clean) == 60 and len({r["source"] for r in clean}) >= 2
    for r in clean:
        assert 80 <= r["n_words"] <= 150
        for para in r["text"].split("\n\n"):
            assert para.strip() == para and para
            if r["source"] == "reviews":  # review sentences grouped into paragraphs
                assert _is_review_run(para, pools.reviews), para
            else:
                assert para in pool_text, para


@pytest.mark.parametrize("overlap", [0.0, 0.15, 0.4])
def test_engagement_overlap_and_popularity(overlap):
    cfg = JunkTextConfig(n_clean=200, n_junk=200, engagement_overlap=overlap, clean_words=(20, 40))
    recs = generate_junk_text(cfg, seed=2)
    junk_pop = sum(_total(r) > 500 for r in recs if r["is_junk"]) / 200
    clean_pop = sum(_total(r) > 500 for r in recs if not r["is_junk"]) / 200
    assert junk_pop == pytest.approx(1 - overlap, abs=0.01)
    assert clean_pop == pytest.approx(overlap, abs=0.01)
    totals = sorted(_total(r) for r in recs if r["is_junk"] and _total(r) > 500)
    assert totals[-1] > 10 * 500  # heavy tail: a few posts go viral
    summary = summarize_junk(recs, popular_threshold=500)
    assert summary["share_popular"]["clean"] == pytest.approx(clean_pop)


def test_popular_threshold_is_used():
    cfg = JunkTextConfig(n_clean=50, n_junk=50, popular_threshold=40, engagement_overlap=0.2, clean_words=(20, 40))
    recs = generate_junk_text(cfg, seed=0)
    assert sum(_total(r) > 40 for r in recs if r["is_junk"]) == 40
    assert sum(_total(r) > 40 for r in recs if not r["is_junk"]) == 10


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"n_clean": -1}, "n_clean"),
        ({"n_junk": 1.5}, "n_junk"),
        ({"n_clean": 0, "n_junk": 0}, "n_junk"),
        ({"categories": ("spam", "memes")}, "categories"),
        ({"categories": ()}, "categories"),
        ({"categories": ("spam", "spam")}, "categories"),
        ({"categories": "spam"}, "categories"),
        ({"clean_words": (100, 50)}, "clean_words"),
        ({"clean_words": (0, 50)}, "clean_words"),
        ({"quiz_functions": ("pow",)}, "quiz_functions"),
        ({"quiz_functions": ()}, "quiz_functions"),
        ({"quiz_min_digits": 3}, "quiz_min_digits"),
        ({"quiz_max_digits": 0}, "quiz_max_digits"),
        ({"popular_threshold": -1}, "popular_threshold"),
        ({"popular_threshold": True}, "popular_threshold"),
        ({"engagement_overlap": 1.5}, "engagement_overlap"),
    ],
)
def test_config_validation_names_the_parameter(kwargs, param):
    with pytest.raises(JunkTextConfigError) as info:
        JunkTextConfig(**kwargs)
    assert info.value.param == param
    assert param in str(info.value)
    assert isinstance(info.value, ValueError)


def test_config_is_frozen_and_lists_become_tuples():
    cfg = JunkTextConfig(categories=["spam", "brief"], clean_words=[10, 20])
    assert cfg.categories == ("spam", "brief") and cfg.clean_words == (10, 20)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.n_junk = 5  # type: ignore[misc]
    with pytest.raises(JunkTextConfigError, match="seed"):
        generate_junk_text(SMALL, seed="x")  # type: ignore[arg-type]


def test_junk_is_diverse(junk_only):
    for cat in JUNK_CATEGORIES:
        recs = [r for r in junk_only if r["category"] == cat]
        assert len(recs) == 200
        assert len({r["text"] for r in recs}) / 200 > 0.8, cat
        templates = Counter(r["template"] for r in recs)
        assert len(templates) >= 15, (cat, len(templates))
        assert templates.most_common(1)[0][1] <= 40, (cat, templates.most_common(3))
        vocab = {w.lower() for r in recs for w in r["text"].split()}
        assert len(vocab) >= (100 if cat == "brief" else 250), (cat, len(vocab))
    texts = [r["text"] for r in junk_only]
    assert sum("#" in t for t in texts) > 0.2 * len(texts)
    assert sum(re.search(r"(^|\s)@\w", t) is not None for t in texts) > 0.03 * len(texts)
    assert sum(re.search(r"\b(bit\.ly|tinyurl\.com|t\.co|cutt\.ly|rb\.gy)/\w{4,}", t) is not None for t in texts) > 20
    assert sum(re.search(r"\b[A-Z]{4,}\b", t) is not None for t in texts) > 0.1 * len(texts)
    assert sum(re.search(r"[\U0001F300-\U0001FAFF]", t) is not None for t in texts) > 0.3 * len(texts)


def test_junk_lengths(junk_only):
    words = {c: [r["n_words"] for r in junk_only if r["category"] == c] for c in JUNK_CATEGORIES}
    assert max(words["brief"]) < 15 and sum(words["brief"]) / 200 < 6
    assert max(words["lifestyle"]) < 30
    for cat in ("conspiracy", "clickbait"):
        short = sum(w < 30 for w in words[cat]) / 200
        assert 0.6 < short < 0.95, (cat, short)
        assert max(words[cat]) <= 90
    assert any(w > 30 for w in words["spam"])
    spam = [r["text"] for r in junk_only if r["category"] == "spam"]
    repetitive = [t for t in spam if max(Counter(t.split()).values()) >= 3 or
                  max(Counter(t.split("\n")).values()) >= 2]
    assert len(repetitive) > 40


def test_write_junk_parquet_round_trips(tmp_path):
    recs = generate_junk_text(SMALL, seed=8)
    path = write_junk_parquet(recs, tmp_path / "junk.parquet")
    assert path == tmp_path / "junk.parquet"
    table = pq.read_table(path)
    assert str(table.schema.field("likes").type) == "int64"
    assert table.to_pylist() == recs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.parquet"]
    write_junk_parquet(recs[:5], path)  # overwrite in place
    assert pq.read_table(path).num_rows == 5


def test_summarize_junk():
    recs = generate_junk_text(SMALL, seed=8)
    s = summarize_junk(recs)
    assert s["n"] == 90 and s["junk_ratio"] == pytest.approx(60 / 90)
    assert list(s["count"]) == ["clean", *JUNK_CATEGORIES]
    assert s["count"]["clean"] == 30 and sum(s["count"].values()) == 90
    for cat, n in s["count"].items():
        rs = [r for r in recs if r["category"] == cat]
        assert n == len(rs)
        assert s["mean_words"][cat] == pytest.approx(sum(r["n_words"] for r in rs) / n)
        assert s["share_popular"][cat] == pytest.approx(sum(_total(r) > 500 for r in rs) / n)
    assert s["mean_words"]["clean"] > 3 * s["mean_words"]["brief"]
