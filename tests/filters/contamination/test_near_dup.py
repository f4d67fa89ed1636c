"""Near-duplicate evidence: MinHash LSH over document windows, confirmed by exact Jaccard."""

from __future__ import annotations

import json
import os
import random
import re
import string
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from scipy.optimize import brentq

from filters.contamination.near_dup import (
    NEAR_DUP_SCHEMA,
    NearDupIndex,
    NearDupSettings,
    approx_threshold,
    candidate_probability,
    lsh_threshold,
    near_duplicate_table,
    normalise_words,
    word_spans,
)

ROOT = Path(__file__).resolve().parents[3]
SUFFIXES = "bar cen dol fir gun hal jor kel mon pix quor rab sel tam ulm vex wen yor zig bex"
VOCAB = [f"{a}{b}" for a in "ka lo mi nu pe ri so tu va ze".split() for b in SUFFIXES.split()]
ITEM = (
    "Marta packs 48 boxes of pears on Monday; on Tuesday she packs half as many boxes, and on "
    "Wednesday three more than on Tuesday. Each box holds 12 pears. How many pears did Marta "
    "pack in the three days? Answer: she packed 48 + 24 + 27 = 99 boxes, so 99 x 12 = 1188 pears."
)


def words(n: int, seed: int) -> list[str]:
    """``n`` random filler words (a vocabulary disjoint from the item's words)."""
    rng = random.Random(seed)
    return rng.choices(VOCAB, k=n)


def embed(item: str, n: int, seed: int, at: float = 0.5) -> tuple[str, int]:
    """An ``n``-word filler document with ``item`` inserted at fraction ``at``, and its offset."""
    w = words(n, seed)
    head = " ".join(w[: int(n * at)]) + " "
    return head + item + " " + " ".join(w[int(n * at) :]), len(head)


def brute_shingles(text: str, k: int = 5) -> set[str]:
    """Word k-gram set computed independently of the module: lowercase, punctuation removed."""
    w = re.sub("[" + re.escape(string.punctuation) + "]", "", text.lower()).split()
    return {" ".join(w[i : i + k]) for i in range(len(w) - k + 1)}


def brute_jaccard(a: str, b: str, k: int = 5) -> float:
    sa, sb = brute_shingles(a, k), brute_shingles(b, k)
    return len(sa & sb) / len(sa | sb)


def change_words(text: str, positions: list[int]) -> str:
    """``text`` with the words at ``positions`` replaced by filler words."""
    w = text.split()
    for p in positions:
        w[p] = "zulu" + str(p)
    return " ".join(w)


def test_verbatim_item_in_the_middle_of_a_long_document_is_found_with_its_span() -> None:
    doc, at = embed(ITEM, 3000, seed=1)
    index = NearDupIndex([("gsm-1", ITEM), ("other", " ".join(words(60, seed=99)))])
    found = list(index.match([("doc-a", doc)]))
    assert [(m.item_id, m.sample_id) for m in found] == [("gsm-1", "doc-a")]
    m = found[0]
    assert m.score == 1.0
    assert (m.doc_start, m.doc_end) == (at, at + len(ITEM))
    assert doc[m.doc_start : m.doc_end] == ITEM
    assert (m.item_start, m.item_end) == (0, len(ITEM))
    assert "jaccard 1.00 over 5-word shingles" in m.detail


def test_exact_jaccard_confirmation_matches_a_brute_force_jaccard() -> None:
    near = change_words(ITEM, [9, 40])  # two words changed: up to 10 of 53 shingles lost
    doc, _ = embed(near, 2000, seed=2, at=0.3)
    (m,) = NearDupIndex([("gsm-1", ITEM)]).match([("doc-b", doc)])
    expected = brute_jaccard(ITEM, doc[m.doc_start : m.doc_end])
    assert m.score == pytest.approx(expected, abs=1e-12)
    assert 0.6 < m.score < 1.0
    # the reported span is the best one: one word more or less on either side is no better
    pieces = [(x.start(), x.end()) for x in re.finditer(r"\S+", doc)]
    first = next(i for i, p in enumerate(pieces) if p[0] == m.doc_start)
    last = next(i for i, p in enumerate(pieces) if p[1] == m.doc_end)
    for f, la in ((first - 1, last), (first + 1, last), (first, last - 1), (first, last + 1)):
        assert brute_jaccard(ITEM, doc[pieces[f][0] : pieces[la][1]]) <= m.score + 1e-12


def test_a_near_duplicate_with_a_few_words_changed_is_found() -> None:
    near = change_words(ITEM, [5, 30, 50])
    doc, at = embed(near, 1500, seed=3, at=0.8)
    found = list(NearDupIndex([("gsm-1", ITEM)]).match([("doc-c", doc)]))
    assert len(found) == 1 and 0.5 <= found[0].score < 1.0
    assert abs(found[0].doc_start - at) < 40 and abs(found[0].doc_end - (at + len(near))) < 40


def test_unrelated_and_short_phrase_documents_are_not_found() -> None:
    item_words = ITEM.split()
    unrelated = " ".join(words(3000, seed=4))
    phrase = " ".join(words(500, seed=5) + item_words[10:14] + words(500, seed=6))  # 4 shared words
    index = NearDupIndex([("gsm-1", ITEM)], NearDupSettings(threshold=0.01))
    assert list(index.match([("unrelated", unrelated), ("phrase", phrase)])) == []
    # control: the same check does see a 12-word phrase (some shingles shared) at this threshold
    short_item = " ".join(item_words[10:22])
    index = NearDupIndex([("short", short_item)], NearDupSettings(threshold=0.01))
    doc = " ".join(words(500, seed=5) + item_words[10:22] + words(500, seed=6))
    assert [m.item_id for m in index.match([("phrase12", doc)])] == ["short"]


def test_lsh_candidate_probability_formula_and_threshold() -> None:
    b, r = 14, 8
    root = brentq(lambda s: candidate_probability(s, b, r) - 0.5, 0.01, 0.99, xtol=1e-12)
    assert lsh_threshold(b, r) == pytest.approx(root, abs=1e-9)
    assert root == pytest.approx(0.6847, abs=1e-4)  # where P(candidate) = 1/2
    assert approx_threshold(b, r) == pytest.approx(0.72, abs=0.002)  # the (1/b)^(1/r) rule of thumb
    assert candidate_probability(approx_threshold(b, r), b, r) == pytest.approx(0.6457, abs=1e-3)
    assert candidate_probability(0.3, b, r) < 1e-3 and candidate_probability(0.9, b, r) > 0.999


@pytest.mark.parametrize("library", ["rensa", "datasketch"])
def test_candidate_rate_follows_the_formula(library: str) -> None:
    """Pairs of exact Jaccard 81/119 = 0.68 (one word-set each, one window each) become candidates
    at the rate 1 - (1 - s^8)^14 = 0.48; confirmation at threshold 0.01 keeps every candidate."""
    n, shared, pairs = 100, 81, 300
    items, docs = [], []
    for i in range(pairs):
        toks = [f"t{i}x{j}" for j in range(n)]
        items.append((f"i{i}", " ".join(toks)))
        docs.append((f"d{i}", " ".join(toks[:shared] + [f"u{i}x{j}" for j in range(n - shared)])))
    s = shared / (2 * n - shared)
    settings = NearDupSettings(shingle_words=1, threshold=0.01, library=library, seed=3)
    found = {(m.item_id, m.sample_id) for m in NearDupIndex(items, settings).match(docs)}
    assert found <= {(f"i{i}", f"d{i}") for i in range(pairs)}
    p = candidate_probability(s, 14, 8)
    sd = (pairs * p * (1 - p)) ** 0.5
    assert abs(len(found) - pairs * p) < 4 * sd, (len(found), pairs * p)


def test_deterministic_by_seed_also_across_processes() -> None:
    items = [("gsm-1", ITEM), ("gsm-2", change_words(ITEM, [1, 2, 3]))]
    docs = [
        (f"d{i}", embed(change_words(ITEM, [7 * i % 50, 11 * i % 50]), 400, seed=i)[0])
        for i in range(30)
    ]
    first = list(NearDupIndex(items, NearDupSettings(seed=7)).match(docs, batch_size=4))
    again = list(NearDupIndex(items, NearDupSettings(seed=7)).match(docs, batch_size=4))
    assert first == again and first
    code = (
        "import json, sys; from dataclasses import asdict; "
        "from filters.contamination.near_dup import NearDupIndex, NearDupSettings; "
        "items, docs = json.load(sys.stdin); "
        "print(json.dumps([asdict(m) for m in NearDupIndex([tuple(i) for i in items], "
        "NearDupSettings(seed=7)).match([tuple(d) for d in docs], batch_size=4)]))"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps([items, docs]),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out) == [m.__dict__ for m in first]


def test_streams_a_generator_in_batches() -> None:
    consumed = []

    def docs():
        for i in range(12):
            consumed.append(i)
            yield (f"d{i}", embed(ITEM, 300, seed=i)[0] if i in (1, 9) else " ".join(words(300, i)))

    done: list[int] = []
    stream = NearDupIndex([("gsm-1", ITEM)]).match(docs(), batch_size=3, progress=done.append)
    first = next(stream)
    assert first.sample_id == "d1" and len(consumed) == 3  # the first batch only
    assert [m.sample_id for m in stream] == ["d9"] and done == [3, 3, 3, 3]


def test_paraphrase_mode_catches_a_reordered_copy_that_shingles_miss() -> None:
    sentences = re.split(r"(?<=[.?]) ", ITEM)
    reordered = " ".join(reversed(sentences))  # same content words, 5-grams broken at the seams
    shuffled = " ".join(random.Random(0).sample(ITEM.split(), len(ITEM.split())))
    docs = [
        ("reordered", embed(reordered, 2000, seed=7)[0]),
        ("shuffled", embed(shuffled, 2000, 8)[0]),
    ]
    exact = {m.sample_id for m in NearDupIndex([("gsm-1", ITEM)]).match(docs)}
    para = NearDupIndex([("gsm-1", ITEM)], NearDupSettings(shingle_words=1, stopwords=True))
    found = {m.sample_id: m for m in para.match(docs)}
    assert "shuffled" not in exact and set(found) == {"reordered", "shuffled"}
    assert "content words (stopwords removed)" in found["shuffled"].detail


def test_short_items_are_skipped_and_bad_input_is_named() -> None:
    index = NearDupIndex([("ok", ITEM), ("tiny", "What is 2 + 2?"), ("empty", "")])
    assert index.skipped == ["tiny", "empty"] and len(index) == 1
    with pytest.raises(ValueError, match="duplicate item_id 'ok'"):
        NearDupIndex([("ok", ITEM), ("ok", ITEM)])
    with pytest.raises(ValueError, match="threshold"):
        NearDupSettings(threshold=0).validate()
    with pytest.raises(ValueError, match="library"):
        NearDupIndex([("ok", ITEM)], NearDupSettings(library="faiss"))
    with pytest.raises(TypeError, match="document 1"):
        list(index.match([("a", "x"), ("b", None)]))


def test_table_and_datasketch_backend_agree_on_an_embedded_item() -> None:
    doc, at = embed(ITEM, 2000, seed=11, at=0.1)
    other = " ".join(words(2000, seed=12))
    docs = [("a", other), ("b", doc), ("c", other)]
    tables = {
        lib: near_duplicate_table(
            NearDupIndex([("gsm-1", ITEM)], NearDupSettings(library=lib)), docs, batch_size=2
        )
        for lib in ("rensa", "datasketch")
    }
    t = tables["rensa"]
    assert t.schema == NEAR_DUP_SCHEMA and t.schema.field("doc_start").type == pa.int32()
    assert t.to_pylist()[0]["sample_id"] == "b" and t.num_rows == 1
    assert t.select(["item_id", "sample_id", "score", "doc_start", "doc_end"]).equals(
        tables["datasketch"].select(["item_id", "sample_id", "score", "doc_start", "doc_end"])
    )
    assert t["doc_start"][0].as_py() == at


def test_window_words_setting_and_normalisation() -> None:
    assert normalise_words("Hello, WORLD!  it's -- Ünïcode\u00a0x") == [
        "hello",
        "world",
        "its",
        "ünïcode",
        "x",
    ]
    tricky = "A\x1cb ΟΔΟΣ. İstanbul a_b 3.5\u2028(x) \u200b ... ¿Qué?"
    assert word_spans(tricky)[0] == normalise_words(tricky)  # the span path sees the same words
    doc, at = embed(ITEM, 3000, seed=13)
    index = NearDupIndex([("gsm-1", ITEM)], NearDupSettings(window_words=80))
    assert [(c.window, c.stride) for c in index.window_classes] == [(76, 19)]
    (m,) = index.match([("d", doc)])
    assert m.score == 1.0 and (m.doc_start, m.doc_end) == (at, at + len(ITEM))
