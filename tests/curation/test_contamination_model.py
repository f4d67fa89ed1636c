"""Model evidence of contamination on tiny data: BPE tokenizer, membership run, influence rows.

A corpus of a few dozen random-word documents, one benchmark item planted verbatim in several
of them (each copy with its own footer, so each is a distinct sample), and a tiny GPT-2
trained on it: the planted documents must be the item's top pushers, well above the rest.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import stores
from curation.pipelines.contamination.model_evidence import (
    AnswerQueries,
    corpus_chunks,
    influence_evidence,
    membership_evidence,
    pull_normalised,
    robust_z,
    train_corpus_model,
    z_threshold,
)
from curation.steps.records import ingest_records
from curation.steps.tokenizer import bpe_tokenizer_for, train_bpe_tokenizer
from curation.steps.train import LMConfig
from filters.contamination.items import BenchmarkItem, read_items

WORDS = ("river stone market garden winter copper lantern meadow harbor violet engine quiet "
         "silver forest candle thunder orbit pepper marble saddle canyon velvet ember "
         "falcon").split()
PLANTED_COPIES = 4
LM = LMConfig(n_layer=2, n_embd=64, n_head=2, steps=300, batch_size=16, lr=3e-3, max_length=64)
TEXT = {"text_field": "text"}
QA = {"prompt_field": "question", "completion_field": "answer"}


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


def _corpus(seed: int = 0) -> tuple[list[dict], list[dict], list[dict]]:
    """Training documents, benchmark items (the first planted), held-out items never planted."""
    rng = random.Random(seed)
    items = [{"id": f"item{i}", "question": _sentence(rng, 8)[:-1] + "?",
              "answer": _sentence(rng, 10)} for i in range(12)]
    docs = [{"id": f"doc{i}",
             "text": " ".join(_sentence(rng, rng.randint(6, 14)) for _ in range(7))}
            for i in range(36)]
    q, a = items[0]["question"], items[0]["answer"]
    docs += [{"id": f"planted{c}", "text": f"{q}\n{a}\nExercise sheet {c + 1}."}
             for c in range(PLANTED_COPIES)]
    return docs, items[:3], items[3:]


def _planted_id(store: stores.Store) -> str:
    question = _corpus()[1][0]["question"]
    return next(it.item_id for it in read_items(store, "bench") if it.question == question)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A store with the corpus and the items, its BPE tokenizer and a GPT-2 trained on it."""
    store = stores.open(tmp_path_factory.mktemp("model-evidence") / "store")
    docs, items, held_out = _corpus()
    ingest_records(store, {"corpus": docs}, config={"generator": "test"}, roles=TEXT)
    ingest_records(store, {"bench": items, "unseen": held_out}, config={"generator": "test"},
                   roles=QA)
    tok = bpe_tokenizer_for(store, "corpus", vocab_size=400)
    folder = train_corpus_model(store, "corpus", tok, LM, seed=0)
    ids = store.read_samples("corpus", ["sample_id", "id"])
    doc_of = dict(zip(ids["sample_id"], ids["id"], strict=True))
    return {"store": store, "tok": tok, "folder": folder, "doc_of": doc_of}


# ---------------------------------------------------------------------- tokenizer
def test_bpe_tokenizer_is_deterministic_and_round_trips():
    texts = [f"{w} {v}, number {i}; déjà vu {i * 7}"
             for i, (w, v) in enumerate(zip(WORDS, WORDS[3:], strict=False))] * 5
    a, b = train_bpe_tokenizer(texts, 300), train_bpe_tokenizer(texts, 300)
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    other = train_bpe_tokenizer(texts, 320)
    assert other.backend_tokenizer.to_str() != a.backend_tokenizer.to_str()
    assert (a.pad_token_id, a.unk_token_id, a.eos_token_id) == (0, 1, 2)
    for text in (texts[0], "unseen 数字 and\ttabs\n", "def f(x):\n    return x"):
        assert a.decode(a(text)["input_ids"]) == text
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe_tokenizer(texts, 100)


def test_bpe_tokenizer_for_caches_by_content(store: stores.Store):
    docs, _, _ = _corpus()
    ingest_records(store, {"a": docs, "b": docs, "c": docs[:10]}, config={"generator": "test"},
                   roles=TEXT)
    first = bpe_tokenizer_for(store, "a", vocab_size=300)
    folders = sorted(store.artifact_dir("tokenizers").iterdir())
    assert len(folders) == 1 and not folders[0].name.startswith(".")
    stamp = (folders[0] / "tokenizer.json").stat().st_mtime_ns
    again = bpe_tokenizer_for(store, "b", vocab_size=300)  # same content, other name: reused
    assert (folders[0] / "tokenizer.json").stat().st_mtime_ns == stamp
    assert again.get_vocab() == first.get_vocab()
    assert len(list(store.artifact_dir("tokenizers").iterdir())) == 1
    bpe_tokenizer_for(store, "c", vocab_size=300)  # other content: a new tokenizer
    bpe_tokenizer_for(store, "a", vocab_size=320)  # other settings: a new tokenizer
    assert len(list(store.artifact_dir("tokenizers").iterdir())) == 3


# ---------------------------------------------------------------------- windows, queries, z
def test_corpus_chunks_cover_every_document_within_the_context(trained):
    store, tok = trained["store"], trained["tok"]
    name = corpus_chunks(store, "corpus", tok, LM.max_length)
    assert corpus_chunks(store, "corpus", tok, LM.max_length) == name  # found again
    chunks = store.read_samples(name, ["text", "doc", "chunk", "start", "end"])
    docs = store.read_samples("corpus", ["sample_id", "text"])
    assert chunks.height > docs.height  # the documents are longer than one window
    for sid, text in zip(docs["sample_id"], docs["text"], strict=True):
        mine = chunks.filter(chunks["doc"] == sid).sort("chunk")
        assert "".join(mine["text"]) == text
        assert mine["start"].to_list() == [0, *mine["end"].to_list()[:-1]]
    assert max(len(tok(t)["input_ids"]) for t in chunks["text"]) <= LM.max_length - 1


def test_answer_queries_measure_the_answer_and_keep_the_end_of_a_long_question(trained):
    tok = trained["tok"]
    long_q = " ".join(WORDS * 4) + "?"
    items = [BenchmarkItem("b", "1", "river stone?", "quiet meadow."),
             BenchmarkItem("b", "2", long_q, "silver forest.")]
    data = AnswerQueries(items, tok, 32)
    short, long_ = data[0], data[1]
    answer = tok("quiet meadow.", add_special_tokens=False)["input_ids"]
    n_q = len(tok("river stone?\n", add_special_tokens=False)["input_ids"])
    assert short["labels"][n_q:n_q + len(answer)].tolist() == answer
    assert (short["labels"][:n_q] == -100).all()
    assert (short["labels"][n_q + len(answer):] == -100).all()
    assert long_["attention_mask"].sum() == 32  # the context filled, the question cut on the left
    kept = tok.decode(long_["input_ids"][long_["labels"] == -100].tolist())
    assert kept.endswith("falcon?\n") and not kept.startswith("river")
    assert tok.decode(long_["input_ids"][long_["labels"] != -100].tolist()) == "silver forest."


def test_robust_z_pull_and_threshold():
    s = np.array([[1.0, 2.0, 3.0, 4.0, 100.0], [5.0, 5.0, 5.0, 5.0, 5.0]])
    z = robust_z(s)
    assert z[0, 2] == 0 and z[0, 4] == pytest.approx(97 / 1.4826)
    assert (z[1] == 0).all()
    assert robust_z(np.array([0.0, 0.0, 0.0, 1.0]))[3] > 0  # MAD 0: mean absolute deviation
    t = z_threshold([1.0, 3.5, 2.0])
    assert t > 3.5 and not (np.array([1.0, 3.5, 2.0]) >= t).any()
    np.testing.assert_allclose(pull_normalised(np.array([[3.0, 1.0], [4.0, 0.0]])),
                               [[0.75, 0.0], [4 / 3, 0.0]])


# ---------------------------------------------------------------------- membership
def test_membership_run_calibrated_on_known_nonmembers(trained):
    store = trained["store"]
    items = read_items(store, "bench") + read_items(store, "unseen")
    reference = [it.key for it in items if it.benchmark == "unseen"]
    ev = membership_evidence(store, trained["folder"], items, reference=reference)
    run = store.sql("SELECT kind, status FROM runs WHERE run_id = ?", [ev.run_id])
    assert run.row(0) == ("membership", "finished")
    rows = store.read_self_scores(ev.run_id)
    assert rows.height == 4 * len(items) and set(rows["sample_id"]) == {it.key for it in items}
    for method, cal in ev.calibrations.items():
        flagged_ref = [k for k in ev.flagged[method] if k in reference]
        assert len(flagged_ref) <= 0.05 * len(reference), method
        assert cal.n_reference == len(reference)
    planted = f"bench:{_planted_id(store)}"  # seen PLANTED_COPIES times: the likeliest member
    loss = dict(zip(ev.keys, ev.scores["loss"], strict=True))
    assert loss[planted] > max(loss[k] for k in reference)
    assert planted in ev.flagged["loss"]
    again = membership_evidence(store, trained["folder"], items, reference=reference)
    assert again.reused and again.run_id == ev.run_id
    np.testing.assert_allclose(again.scores["loss"], ev.scores["loss"], rtol=1e-6)
    with pytest.raises(ValueError, match="reference"):
        membership_evidence(store, trained["folder"], items[:3], reference=reference)


# ---------------------------------------------------------------------- influence
def test_influence_rows_put_the_planted_documents_on_top(trained):
    store, doc_of = trained["store"], trained["doc_of"]
    top_k = PLANTED_COPIES + 2
    ev = influence_evidence(store, trained["folder"], "corpus", ["bench"], top_k=top_k, z_min=3.0)
    assert not ev.reused and ev.n_rows == 3 * top_k
    rows = store.sql("SELECT * FROM contamination_matches WHERE run_id = ? "
                     "ORDER BY item_id, score DESC", [ev.run_id])
    assert set(rows["method"]) == {"influence"}
    items = {it.item_id: it for it in read_items(store, "bench")}
    planted = _planted_id(store)
    mine = rows.filter(rows["item_id"] == planted)
    names = [doc_of[s] for s in mine["sample_id"]]
    assert names[0].startswith("planted")  # the top pusher is a planted copy
    z = mine["score"].to_list()
    planted_z = [v for n, v in zip(names, z, strict=True) if n.startswith("planted")]
    other_z = [v for n, v in zip(names, z, strict=True) if not n.startswith("planted")]
    assert len(planted_z) >= PLANTED_COPIES - 1 and min(planted_z) > max(other_z)
    assert mine["hit"][0] and mine["detail"][0].startswith("rank 1 of")
    it = items[planted]
    assert (mine["item_start"][0], mine["item_end"][0]) == (len(it.question) + 1, len(it.text))
    assert (mine["doc_end"] > mine["doc_start"]).all()
    for item_id in set(items) - {planted}:  # the never-planted items: nothing stands out as much
        assert rows.filter(rows["item_id"] == item_id)["score"][0] < mine["score"][0]
    again = influence_evidence(store, trained["folder"], "corpus", ["bench"], top_k=top_k,
                               z_min=3.0)
    assert again.reused and again.run_id == ev.run_id and again.n_rows == ev.n_rows
    runs = store.sql("SELECT count(*) AS n FROM runs WHERE run_id LIKE 'contamination_influence-%'")
    assert runs["n"][0] == 1
    stricter = influence_evidence(store, trained["folder"], "corpus", ["bench"], top_k=top_k,
                                  z_min=1e9)  # a new rule on the same engine scores
    assert stricter.run_id != ev.run_id and stricter.scores_run == ev.scores_run
    assert stricter.n_hits == 0
    config = store.sql("SELECT config FROM runs WHERE run_id = ?", [ev.run_id])["config"][0]
    assert '"normalise": false' in config  # 3 items: too few to estimate a window's pull
    with pytest.raises(ValueError, match="top_k"):
        influence_evidence(store, trained["folder"], "corpus", ["bench"], top_k=0)


def test_pull_normalised_influence_keeps_the_planted_copies_apart(trained):
    """With a dozen items each window's pull is estimated: the copies still stand out, alone."""
    store, doc_of = trained["store"], trained["doc_of"]
    ev = influence_evidence(store, trained["folder"], "corpus", ["bench", "unseen"],
                            top_k=PLANTED_COPIES + 2, z_min=10.0, normalise=True)
    rows = store.sql("SELECT item_id, sample_id, score, hit, detail FROM contamination_matches "
                     "WHERE run_id = ?", [ev.run_id])
    planted = _planted_id(store)
    is_copy = np.array([doc_of[s].startswith("planted") and i == planted
                        for i, s in zip(rows["item_id"], rows["sample_id"], strict=True)])
    copies, others = rows.filter(is_copy), rows.filter(~is_copy)
    assert copies.height == PLANTED_COPIES and copies["hit"].all()
    assert copies["score"].min() > others["score"].max() and not others["hit"].any()
    assert "normalised" in copies["detail"][0]
