"""M1 engagement degree: the paper's short-and-popular rule as flags, a ranking score, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import stores
from curation.steps.records import ingest_records
from filters.base import rank_percentile
from filters.junk.engagement import EngagementFilter, engagement_rule, engagement_scores

TEXT = {"text_field": "text"}
LONG = ("The council published its annual report on the state of the roads, with a section on the cost of "
        "repairs, the number of complaints received, and the plan for resurfacing the main routes over the next "
        "three years, together with a map of the worst affected streets and a timetable for the work.")

POSTS = [  # text, likes, shares, replies; the paper's junk is short (< 30 words) and popular (> 500)
    ("You won't believe what this cat did next!!", 900, 300, 40),     # short, popular: junk
    ("lol same", 450, 30, 30),                                          # short, 510 > 500: junk
    ("omg so true", 300, 100, 100),                                     # short, exactly 500: not popular
    (LONG, 5000, 2000, 800),                                            # popular but long
    (LONG + " Residents may comment until June.", 3, 0, 1),             # long, unpopular: the control
    ("Quiet post nobody saw", 2, 0, 0),                                 # short, unpopular
]


def _store(tmp_path: Path, rows: list[dict]) -> stores.Store:
    store = stores.open(tmp_path / "s")
    ingest_records(store, {"posts": rows}, config={"generator": "test"}, roles=TEXT)
    return store


def test_scores_rank_popular_short_posts_first() -> None:
    pop = np.array([900.0, 10.0, 800.0, 5.0])
    words = np.array([5.0, 6.0, 200.0, 300.0])
    s = engagement_scores(pop, words)
    np.testing.assert_allclose(s, (rank_percentile(pop) + rank_percentile(-words)) / 2)
    assert s[0] == 1.0 and s[3] == 0.0 and s[1] == s[2] == 0.5
    assert np.isnan(engagement_scores(np.array([np.nan, 1.0]), np.array([3.0, 4.0]))[0])
    rule = engagement_rule(np.array([501, 500, 501, np.nan]), np.array([29, 29, 30, 5]))
    assert rule.tolist() == [True, False, False, False]  # popularity > 500 and words < 30, both strict
    with pytest.raises(ValueError, match="4 popularity values for 3 lengths"):
        engagement_scores(np.ones(4), np.ones(3))


def test_filter_applies_the_paper_rule(tmp_path: Path) -> None:
    rows = [{"text": t, "likes": a, "shares": b, "replies": c, "n_words": len(t.split())} for t, a, b, c in POSTS]
    store = _store(tmp_path, rows)
    frun = EngagementFilter().run(store, "posts")
    flags = store.read_flags(frun.run_id)
    by_text = dict(zip(store.read_samples("posts")["sample_id"].to_list(), [p[0] for p in POSTS], strict=True))
    got = {by_text[s]: (f, r, sc) for s, f, r, sc in zip(flags["sample_id"], flags["flagged"], flags["reason"],
                                                          flags["score"], strict=True)}
    assert [got[p[0]][0] for p in POSTS] == [True, True, False, False, False, False]
    assert got[POSTS[0][0]][1] == "8 words < 30, popularity 1,240 > 500 (likes+shares+replies); flagged: short and popular (M1 junk)"
    assert got[POSTS[2][0]][1] == "3 words < 30, popularity 500 <= 500 (likes+shares+replies); kept"
    assert got[LONG][1].startswith(f"{len(LONG.split())} words >= 30, popularity 7,800 > 500")
    assert got["lol same"][2] == pytest.approx(0.8) == max(v[2] for v in got.values())  # shortest, 3rd most popular
    assert got[POSTS[4][0]][2] == min(v[2] for v in got.values())  # the long unpopular control last
    config = store.sql("SELECT config FROM runs WHERE run_id = ?", [frun.run_id])["config"][0]
    assert "words < 30 and popularity > 500" in config


def test_named_fields_word_count_fallback_and_unknown_popularity(tmp_path: Path) -> None:
    rows = [{"text": t, "upvotes": a, "retweets": None if i == 0 else b} for i, (t, a, b, _) in enumerate(POSTS)]
    store = _store(tmp_path, rows)
    m = EngagementFilter().measure(store, "posts")  # defaults: retweets, upvotes; length from the text
    assert m.fields == ["retweets", "upvotes"] and m.length_source == "words in text"
    assert m.n_words.tolist() == [len(p[0].split()) for p in POSTS]
    assert np.isnan(m.popularity[0]) and not m.flagged[0]  # a missing count is unknown, not zero
    only = EngagementFilter(["upvotes"], max_words=10, min_popularity=400).measure(store, "posts")
    assert only.flagged.tolist() == [True, True, False, False, False, False]  # upvotes 900, 450 > 400


def test_errors_name_the_dataset_and_fields(tmp_path: Path) -> None:
    store = _store(tmp_path, [{"text": t, "views": 3} for t, *_ in POSTS])
    with pytest.raises(ValueError, match=r"dataset 'posts' has no popularity field: expected one of likes, shares, "
                                         r"replies, retweets, upvotes, comments"):
        EngagementFilter().run(store, "posts")
    with pytest.raises(ValueError, match=r"dataset 'posts' has no field\(s\) likes \(its fields: text, views\)"):
        EngagementFilter(["views", "likes"]).run(store, "posts")
    with pytest.raises(ValueError, match="dataset 'posts' has no length field 'n_tokens'"):
        EngagementFilter(["views"], length_field="n_tokens").run(store, "posts")
    with pytest.raises(ValueError, match="popularity_fields is empty"):
        EngagementFilter([])
