"""N-gram contamination evidence: normalisation, hashing, matching, the store index and benchmark items.

Checked against independent references: the lm-eval janitor (normalisation and document-level
13-gram detection, with the legitimate differences tested explicitly), per-window hashing, and a
brute-force O(n*m) aligned-run search. Store tests use real DuckDB/Parquet stores.
"""

from __future__ import annotations

import random
import string
from itertools import count
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lm_eval.decontamination.janitor import Janitor, word_ngrams_indices

import filters.contamination.ngrams as ngrams_mod
import stores
from filters.contamination.items import ContaminationInputError, read_items, train_fields
from filters.contamination.matching import aligned_runs, match_pair
from filters.contamination.ngrams import NgramSettings, build_index, ngram_evidence
from filters.contamination.normalize import (
    WordHasher,
    batch_ngram_hashes,
    masked_words_fast,
    ngram_hashes,
    normalise_word,
    word_tokens,
)
from stores.curate import curate
from stores.ingest import ingest
from tests.helpers import write_jsonl

QUESTION = ("Émile bought 24 oranges at the market on Tuesday and shared 7 of them with each of his "
            "three cousins before lunch.")
ANSWER = "He kept the remaining 3 oranges for the long walk home through the quiet village."
ITEM = f"{QUESTION}\n{ANSWER}"
P = ITEM.split()  # the item's 37 raw pieces

_files = count()


def _ingest(store: stores.Store, tmp_path: Path, name: str, rows: list[dict], **kw) -> None:
    ingest(store, write_jsonl(tmp_path / f"{name}-{next(_files)}.jsonl", rows), name, **kw)


def _filler(rng: random.Random, n: int) -> str:
    """Random consonant-vowel words that never occur in the item."""
    item_words = {w.lower() for w in P}
    out: list[str] = []
    while len(out) < n:
        w = "".join(rng.choice("bcdfghjklmnpqrstvwxz") + rng.choice("aeiou") for _ in range(3))
        if w not in item_words:
            out.append(w)
    return " ".join(out)


# ---------------------------------------------------------------------- 1. normalisation
ASCII_CASES = [
    "Hello, World!  It's 3:45 p.m. -- time\tto GO.\nNew line",
    " -- leading and trailing -- ",
    "MiXeD CaSe... with ellipses... and (parens) [brackets] {braces}",
    "e.g. i.e. U.S.A. $100 50% #hashtag @user a+b=c x - y",
    "\t\ttabs\tand\nnewlines\r\nwindows\x0bvt\x0cff",
    "under_score back\\slash quote\"s `tick` ~tilde^ caret|pipe",
    "!!! ??? ... ,,, --",
    "",
    "   \n\t ",
]


@pytest.mark.parametrize("text", ASCII_CASES)
def test_word_tokens_equal_janitor_normalisation(text):
    assert word_tokens(text).exact == Janitor().normalize_string(text).split()


def test_punctuation_only_pieces_disappear():
    t = word_tokens("alpha -- beta ... gamma")
    assert t.exact == t.masked == ["alpha", "beta", "gamma"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_word_tokens_equal_janitor_on_random_ascii(text):
    assert word_tokens(text).exact == Janitor().normalize_string(text).split()


_TRICKY = list(" \t\n\r\x0b\x0c\x1c\x85\u00a0\u2003\u3000-.,!'\"09AbÉéσΣßẞİı٣٤٥½²")


@settings(max_examples=800, deadline=None)
@given(st.text(alphabet=st.one_of(st.sampled_from(_TRICKY), st.characters(exclude_categories=["Cs"]))))
def test_fast_path_and_spans_agree_with_word_tokens(text):
    t = word_tokens(text)
    assert masked_words_fast(text) == t.masked
    assert len(t.exact) == len(t.masked) == len(t.starts) == len(t.ends)
    pieces = [(i, j) for i, j in zip(t.starts.tolist(), t.ends.tolist(), strict=True)]
    assert pieces == sorted(pieces)
    for tok, masked, (a, b) in zip(t.exact, t.masked, pieces, strict=True):
        raw = text[a:b]
        assert raw and not any(c.isspace() for c in raw)          # one raw piece ...
        assert a == 0 or text[a - 1].isspace()                     # ... maximal on the left
        assert b == len(text) or text[b].isspace()                 # ... and on the right
        assert normalise_word(raw) == tok
        assert not any(c in "123456789" for c in masked)          # every ASCII digit run reads 0
    # every raw piece not kept normalises to nothing
    kept = {a for a, _ in pieces}
    start = 0
    for piece in text.split():
        pos = text.index(piece, start)
        if pos not in kept:
            assert normalise_word(piece) == ""
        start = pos + len(piece)


def test_spans_and_digit_masking():
    text = "  Janet has 17 red-apples;\n\tshe ate 2.5 -- of them "
    t = word_tokens(text)
    assert t.exact == ["janet", "has", "17", "redapples", "she", "ate", "25", "of", "them"]
    assert t.masked == ["janet", "has", "0", "redapples", "she", "ate", "0", "of", "them"]
    assert [text[a:b] for a, b in zip(t.starts, t.ends, strict=True)] == [
        "Janet", "has", "17", "red-apples;", "she", "ate", "2.5", "of", "them"]
    assert text[slice(*t.span(3, 4))] == "red-apples;\n\tshe"


# ---------------------------------------------------------------------- 2. hashing
def _poly_reference(word_hashes: np.ndarray, n: int) -> list[int]:
    """sum(h[j+i] * P^(n-1-i)) mod 2^64 for every window, in Python integers."""
    p, mod = 0x9E3779B97F4A7C15, 1 << 64
    out = []
    for j in range(len(word_hashes) - n + 1):
        acc = 0
        for w in word_hashes[j : j + n].tolist():
            acc = (acc * p + w) % mod
        out.append(acc)
    return out


@pytest.mark.parametrize("n", [1, 2, 5, 8, 13])
def test_ngram_hashes_equal_per_window_hashing(n):
    words = random.Random(n).choices(["a", "b", "c", "d", "the", "7"], k=40)
    wh = WordHasher()(words)
    got = ngram_hashes(wh, n)
    assert got.dtype == np.uint64 and len(got) == len(words) - n + 1
    assert [int(ngram_hashes(wh[j : j + n], n)[0]) for j in range(len(got))] == got.tolist()
    assert _poly_reference(wh, n) == got.tolist()
    # equal windows hash equal, and the hash depends on order
    for i in range(len(got)):
        for j in range(len(got)):
            assert (got[i] == got[j]) == (words[i : i + n] == words[j : j + n])
    assert len(ngram_hashes(wh[: n - 1], n)) == 0


def test_word_hasher_is_stable():
    a = WordHasher()(["x", "y", "x", "é", "z"] * 3)
    b = WordHasher()(["x", "y", "x", "é", "z"] * 3)
    assert a.tolist() == b.tolist() and a[0] == a[2] and a[0] != a[1]


def _per_doc(docs, n):
    hasher = WordHasher()
    d, p, h = [], [], []
    for i, doc in enumerate(docs):
        hs = ngram_hashes(hasher(doc), n)
        d += [i] * len(hs)
        p += list(range(len(hs)))
        h += hs.tolist()
    return d, p, h


def test_batch_hashes_equal_per_document_with_empty_and_short_docs():
    rng = random.Random(0)
    vocab = ["a", "b", "c"]
    docs = [[], rng.choices(vocab, k=20), ["a"] * 7, [], rng.choices(vocab, k=8), ["b"],
            rng.choices(vocab, k=9), []]
    doc, pos, hashes = batch_ngram_hashes(docs, 8, WordHasher())
    assert (doc.tolist(), pos.tolist(), hashes.tolist()) == _per_doc(docs, 8)
    assert set(doc.tolist()) == {1, 4, 6}
    assert batch_ngram_hashes([[], []], 8, WordHasher())[2].size == 0
    assert batch_ngram_hashes([["a"] * 3, ["a"] * 3], 4, WordHasher())[2].size == 0  # 6 words, no window


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["a", "b", "c", "7"]), max_size=12), max_size=6),
       st.integers(1, 5))
def test_batch_hashes_property(docs, n):
    doc, pos, hashes = batch_ngram_hashes(docs, n, WordHasher())
    assert (doc.tolist(), pos.tolist(), hashes.tolist()) == _per_doc(docs, n)


# ---------------------------------------------------------------------- 3. matching
def _words(seed: int, n: int) -> list[str]:
    return _filler(random.Random(seed), n).split()


def test_verbatim_copy():
    doc_text = f"{_filler(random.Random(1), 30)} {ITEM} {_filler(random.Random(2), 30)}"
    item, doc = word_tokens(ITEM), word_tokens(doc_text)
    m = match_pair(item, doc, 8)
    assert (m.longest, m.longest_exact, m.hits, m.coverage) == (len(item), len(item), len(item) - 7, 1.0)
    assert doc_text[slice(*doc.span(m.best.d0, m.best.d1))] == ITEM
    assert ITEM[slice(*item.span(m.best.i0, m.best.i1))] == ITEM


def test_renumbered_copy_matches_masked_but_not_exact():
    changed = ITEM.replace("24", "31").replace(" 7 ", " 9 ")
    doc = word_tokens(f"{_filler(random.Random(3), 20)} {changed} {_filler(random.Random(4), 20)}")
    item = word_tokens(ITEM)
    m = match_pair(item, doc, 8)
    assert m.longest == len(item) and m.coverage == 1.0
    # exact runs: 'oranges .. shared' (8 words) and 'of them .. village' (25 words)
    assert m.longest_exact == len(item) - 12 == 25


def _fragments():
    """Item of five 9-word fragments with 3-word gaps (57 words), all distinct words."""
    words = _words(10, 57)
    frags = [words[i * 12 : i * 12 + 9] for i in range(5)]
    gaps = [words[i * 12 + 9 : i * 12 + 12] for i in range(4)]
    return frags, gaps


def test_fragments_with_substituted_words_coverage_uses_skip_budget():
    frags, gaps = _fragments()
    item_words = [w for i, f in enumerate(frags) for w in f + (gaps[i] if i < 4 else [])]
    other = _words(11, 12)
    doc_words = [w for i, f in enumerate(frags) for w in f + (other[3 * i : 3 * i + 3] if i < 4 else [])]
    item = word_tokens(" ".join(item_words))
    doc = word_tokens(f"{_filler(random.Random(12), 15)} {' '.join(doc_words)} zzz")
    m = match_pair(item, doc, 8, skip=4)
    assert m.longest == 9 < 13 and m.hits == 10 >= 8
    assert m.coverage == 1.0
    assert match_pair(item, doc, 8, skip=3).coverage == 1.0   # gaps are exactly 3 tokens
    assert match_pair(item, doc, 8, skip=2).coverage == 0.0
    assert match_pair(item, doc, 8, skip=0).coverage == 0.0   # 9-token runs < min_run 10


def test_fragments_with_inserted_words_hit_but_no_coverage():
    """Insertions shift the alignment: the skip budget (substitutions, Llama 2) does not bridge them."""
    frags, _ = _fragments()
    other = _words(13, 12)
    item = word_tokens(" ".join(w for f in frags for w in f))
    doc = word_tokens(" ".join(w for i, f in enumerate(frags)
                               for w in f + (other[3 * i : 3 * i + 3] if i < 4 else [])))
    m = match_pair(item, doc, 8, skip=4)
    assert m.longest == 9 and m.hits == 10
    assert len({r.d0 - r.i0 for r in m.runs}) == 5   # five alignments
    assert m.coverage == 0.0 == match_pair(item, doc, 8, skip=0).coverage


def test_unrelated_text_has_no_runs():
    m = match_pair(word_tokens(ITEM), word_tokens(_filler(random.Random(5), 200)), 8)
    assert (m.longest, m.longest_exact, m.hits, m.coverage, m.best, m.runs) == (0, 0, 0, 0.0, None, [])


def test_hits_count_distinct_item_kgrams():
    phrase = _words(20, 8)
    item = word_tokens(" ".join(phrase * 8))            # one 8-gram, repeated 8 times
    doc = word_tokens(f"{_filler(random.Random(21), 20)} {' '.join(phrase)} {_filler(random.Random(22), 20)}")
    m = match_pair(item, doc, 8)
    assert m.longest == 8
    assert m.hits == 1   # one distinct item 8-gram occurs in the document (got 8: absolute rule fires)


def _brute_runs(a: list[str], b: list[str], k: int) -> set[tuple[int, int, int, int]]:
    ga = [tuple(a[i : i + k]) for i in range(len(a) - k + 1)]
    gb = [tuple(b[j : j + k]) for j in range(len(b) - k + 1)]
    runs = set()
    for i in range(len(ga)):
        for j in range(len(gb)):
            if ga[i] == gb[j] and not (i and j and ga[i - 1] == gb[j - 1]):
                e = 0
                while i + e + 1 < len(ga) and j + e + 1 < len(gb) and ga[i + e + 1] == gb[j + e + 1]:
                    e += 1
                runs.add((i, i + e + k - 1, j, j + e + k - 1))
    return runs


@pytest.mark.parametrize("seed", range(8))
def test_aligned_runs_equal_brute_force(seed):
    rng = random.Random(seed)
    vocab = ["a", "b", "c"][: 2 + seed % 2]
    a = rng.choices(vocab, k=rng.randint(0, 30))
    b = rng.choices(vocab, k=rng.randint(0, 60))
    hasher = WordHasher()
    for k in (1, 2, 3, 5):
        got = aligned_runs(ngram_hashes(hasher(a), k), ngram_hashes(hasher(b), k), k)
        tuples = [(r.i0, r.i1, r.d0, r.d1) for r in got]
        assert len(tuples) == len(set(tuples))
        assert set(tuples) == _brute_runs(a, b, k), (seed, k)
        for r in got:
            assert a[r.i0 : r.i1 + 1] == b[r.d0 : r.d1 + 1] and r.length == r.i1 - r.i0 + 1


# ---------------------------------------------------------------------- 4. agreement with the janitor
def _piece(a: int, b: int, sep: str = " ") -> str:
    return sep.join(P[a:b])


def _janitor_docs() -> tuple[dict[str, str], set[str], set[str]]:
    """(name -> middle text, names dirty for both, names dirty only for us)."""
    upper = " ".join(w.upper() + ("," if i % 3 == 0 else "") for i, w in enumerate(P[3:16]))
    wrapped = "".join(w + ("\n" if i % 2 else "\t") for i, w in enumerate(P[20:34]))
    both = {
        "verbatim": ITEM, "q13": _piece(1, 14), "a13": _piece(24, 37), "span_qa": _piece(16, 29),
        "upper_punct": f"({upper}!", "wrapped": wrapped, "quoted": f'"{_piece(10, 23)}".',
        "dash_long": f"{_piece(2, 5)} -- {_piece(5, 20)}",
    }
    neither = {
        "q12": _piece(1, 13), "a12": _piece(24, 36), "span12": _piece(16, 28),
        "two12": f"{_piece(0, 12)} mango {_piece(13, 25)}", "reversed": " ".join(reversed(P)),
        "changed_word": f"{_piece(1, 7)} grocery {_piece(8, 14)}",
        **{f"filler{i}": "" for i in range(15)},
    }
    ours_only = {  # legitimate differences
        "dash_short": f"{_piece(14, 21)} -- {_piece(21, 28)}",        # punctuation-only piece
        "renumbered": _piece(1, 16).replace("24", "31").replace(" 7 ", " 9 "),  # digits masked
        "lower_accent": f"émile {_piece(1, 13)}",                    # non-ASCII lowercased
    }
    rng = random.Random(7)
    docs = {name: f"{_filler(rng, 40)} {mid} {_filler(rng, 40)}"
            for name, mid in {**both, **neither, **ours_only}.items()}
    return docs, set(both), set(ours_only)


def _janitor_dirty(jan: Janitor, doc: str) -> bool:
    return any(jan.normalize_string(g) in jan.dirt_ngrams for g, _ in word_ngrams_indices(doc, jan.ngram_n))


def test_document_level_agreement_with_janitor(store, tmp_path):
    docs, both, ours_only = _janitor_docs()
    _ingest(store, tmp_path, "train", [{"name": k, "text": v} for k, v in docs.items()])
    _ingest(store, tmp_path, "bench", [{"question": QUESTION, "answer": ANSWER}])
    items, fields = read_items(store, "bench"), train_fields(store, "train")
    assert len(items) == 1 and items[0].text == ITEM
    ev = ngram_evidence(store, "train", fields, items, build_index(store, "train", fields=fields),
                        NgramSettings())
    assert ev.skipped == []

    jan = Janitor(ngram_n=13)
    jan.register_contaminant_python(ITEM)
    janitor_set = {name for name, text in docs.items() if _janitor_dirty(jan, text)}
    for text in docs.values():  # the replication agrees with the janitor's own cleaning
        assert (jan.clean_python(text) != [text]) == _janitor_dirty(jan, text)
    assert janitor_set == both

    name_of = dict(store.read_samples("train", columns=["sample_id", "name"]).iter_rows())
    n_item = len(word_tokens(ITEM))
    rows = {name_of[r["sample_id"]]: r for r in ev.rows if r["method"] == "ngram"}
    longest = {name: round(r["score"] * n_item) for name, r in rows.items()}
    ours = {name for name, r in rows.items() if r["hit"] and longest[name] >= 13}
    assert ours == both | ours_only
    assert ours - janitor_set == ours_only

    # the differences, one by one
    assert "numbers differ (exact run 8, 13 digit-free words in one run)" in rows["renumbered"]["detail"]
    dash_doc = docs["dash_short"]
    assert " -- " in dash_doc[rows["dash_short"]["doc_start"] : rows["dash_short"]["doc_end"]]
    assert longest["dash_short"] == 14 and longest["lower_accent"] == 13
    assert Janitor().normalize_string("Émile") != Janitor().normalize_string("émile")
    # 12 copied words in two pieces: no 13-word run, but the absolute-hit rule fires (10 >= 8)
    assert rows["two12"]["hit"] and longest["two12"] == 12 and "10 shared 8-grams" in rows["two12"]["detail"]
    for name in ("q12", "a12", "span12", "changed_word"):
        assert name not in rows or not rows[name]["hit"]
    # ngram row spans point at the matched text
    r = rows["verbatim"]
    assert docs["verbatim"][r["doc_start"] : r["doc_end"]] == ITEM
    assert (r["item_start"], r["item_end"]) == (0, len(ITEM))
    cov = {name_of[r["sample_id"]]: r for r in ev.rows if r["method"] == "coverage"}
    assert cov["verbatim"]["hit"] and cov["verbatim"]["score"] == 1.0


# ---------------------------------------------------------------------- 5. the index in the store
def _train_rows(seed: int, n: int = 12) -> list[dict]:
    rng = random.Random(seed)
    return [{"text": _filler(rng, 30 + i)} for i in range(n)]


def _index_rows(store: stores.Store, run_id: str) -> list[tuple]:
    """The index rows of one run (its shards: the table has no run_id column)."""
    paths = store.shard_paths("ngram_index", run_id)
    return pl.read_parquet(paths).sort(["ordinal", "hash"]).rows() if paths else []


def test_index_is_reused_and_rebuilt_for_changed_data(store, tmp_path):
    rows = _train_rows(0)
    _ingest(store, tmp_path, "train", rows)
    short = "the quick brown fox jumps over the lazy sleeping dog near water"  # 12 words
    _ingest(store, tmp_path, "bench", [{"question": QUESTION, "answer": ANSWER}, {"question": short}])
    first = build_index(store, "train", fields=["text"])
    assert not first.reused and first.n_documents == 12 and first.bytes > 0
    again = build_index(store, "train", fields=["text"])
    assert again.reused and again.run_id == first.run_id and again.n_documents == 0
    n_words = sum(len(r["text"].split()) for r in rows)
    assert len(_index_rows(store, first.run_id)) == n_words - 12 * 7
    assert build_index(store, "train", fields=["text"], k=9).run_id != first.run_id
    items = read_items(store, "bench")
    assert ngram_evidence(store, "train", ["text"], items, first, NgramSettings()).rows == []

    rows[3]["text"] += " " + ITEM
    rows[5]["text"] += " " + " ".join(short.split()[1:11])  # 10 of its 12 words: 3 shared 8-grams
    _ingest(store, tmp_path, "train", rows, replace=True)
    fresh = build_index(store, "train", fields=["text"])
    assert not fresh.reused and fresh.run_id != first.run_id
    assert build_index(store, "train", fields=["text"]).run_id == fresh.run_id
    ev = ngram_evidence(store, "train", ["text"], items, fresh, NgramSettings())
    text_of = {it.item_id: it.question for it in items}
    got = {(text_of[r["item_id"]], r["method"]): (r["hit"], round(r["score"], 3)) for r in ev.rows}
    assert got == {(QUESTION, "ngram"): (True, 1.0), (QUESTION, "coverage"): (True, 1.0),
                   (short, "ngram"): (False, 0.833), (short, "coverage"): (True, 0.833)}


def test_killed_index_run_resumes_missing_shards_only(store, tmp_path, monkeypatch):
    rows = _train_rows(1)
    _ingest(store, tmp_path, "train", rows)
    real, calls = ngrams_mod.batch_ngram_hashes, []

    def failing(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed while indexing shard 1")
        return real(*args, **kw)

    monkeypatch.setattr(ngrams_mod, "batch_ngram_hashes", failing)
    with pytest.raises(RuntimeError, match="shard 1"):
        build_index(store, "train", fields=["text"], batch_rows=4)
    runs = store.sql("SELECT run_id, status FROM runs WHERE kind = 'ngram_index'").rows()
    assert len(runs) == 1 and runs[0][1] != "finished"
    run_id = runs[0][0]
    assert store.completed_shards("ngram_index", run_id) == {0}
    assert store.shard_paths("ngram_index", run_id) == []          # nothing visible yet
    shard0 = store.data_dir / "ngram_index" / f"run={run_id}" / "part-00000.parquet"
    before = shard0.stat().st_mtime_ns, shard0.stat().st_ino

    calls.clear()
    monkeypatch.setattr(ngrams_mod, "batch_ngram_hashes", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    resumed = build_index(store, "train", fields=["text"], batch_rows=4)
    assert resumed.run_id == run_id and not resumed.reused
    assert len(calls) == 2 and resumed.n_documents == 8               # shards 1 and 2 only
    assert store.completed_shards("ngram_index", run_id) == {0, 1, 2} and len(store.shard_paths("ngram_index", run_id)) == 3
    assert (shard0.stat().st_mtime_ns, shard0.stat().st_ino) == before
    monkeypatch.undo()

    other = stores.open(tmp_path / "other")
    _ingest(other, tmp_path, "train", rows)
    clean = build_index(other, "train", fields=["text"], batch_rows=4)
    assert clean.run_id == run_id
    got = _index_rows(store, run_id)
    assert got == _index_rows(other, clean.run_id)
    assert len(got) == sum(len(r["text"].split()) - 7 for r in rows)


# ---------------------------------------------------------------------- 6. benchmark items
def test_benchmark_without_question_field(store, tmp_path):
    _ingest(store, tmp_path, "bench", [{"body": "what is two plus two", "extra": 3}])
    with pytest.raises(ContaminationInputError) as e:
        read_items(store, "bench")
    assert all(w in str(e.value) for w in ("'bench'", "question", "available fields: body, extra"))


def test_empty_benchmark(store, tmp_path):
    _ingest(store, tmp_path, "bench", [{"question": QUESTION, "answer": ANSWER}])
    curate(store, "empty", "bench", flag_runs=[], where="false")
    with pytest.raises(ContaminationInputError, match="'empty' is empty"):
        read_items(store, "empty")
    _ingest(store, tmp_path, "blank", [{"question": "", "answer": " "}, {"question": None, "answer": ""}])
    with pytest.raises(ContaminationInputError, match="'blank'.*empty"):
        read_items(store, "blank")


def test_non_text_question_field(store, tmp_path):
    _ingest(store, tmp_path, "bench", [{"question": 5, "answer": "x"}, {"question": 7, "answer": "y"}])
    with pytest.raises(ContaminationInputError) as e:
        read_items(store, "bench")
    assert "'question'" in str(e.value) and "BIGINT" in str(e.value) and "'bench'" in str(e.value)
    with pytest.raises(ContaminationInputError, match="'nope'.*available fields: question, answer"):
        read_items(store, "bench", question_field="nope")


def test_explicit_question_and_answer_fields(store, tmp_path):
    rows = [{"q": QUESTION, "a": ANSWER, "question": 1, "answer": "decoy"}]
    _ingest(store, tmp_path, "bench", rows)
    items = read_items(store, "bench", question_field="q", answer_field="a")
    assert [(it.question, it.answer, it.text) for it in items] == [(QUESTION, ANSWER, ITEM)]
    assert items[0].key == f"bench:{items[0].item_id}" and items[0].benchmark == "bench"
    only_q = read_items(store, "bench", question_field="q", answer_field=None)
    assert only_q[0].answer == "decoy"   # the default answer field is still picked
    with pytest.raises(ContaminationInputError, match="'question' \\(question\\) is BIGINT"):
        read_items(store, "bench")
    _ingest(store, tmp_path, "pc", [{"prompt": "what is  the answer", "completion": "forty two"}])
    assert read_items(store, "pc")[0].text == "what is  the answer\nforty two"


def test_only_ascii_punctuation_is_deleted():
    assert word_tokens("a — b « c » d").exact == ["a", "—", "b", "«", "c", "»", "d"]
    assert set(string.punctuation).isdisjoint("".join(word_tokens(string.printable).exact))
