"""Packing documents into training rows, and the perplexity baseline on packed-style text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import stores
from attribution.baselines import mean_token_nll, perplexity_scores
from attribution.data import CompletionDataset, Samples
from curation.steps.packing import pack_documents
from curation.steps.tokenizer import train_bpe_tokenizer

TEXTS = ["the cat sat on the mat.", "a dog ran far away from home today", "ok", "lol same " * 20,
         "the mat was red and the cat was grey."]


@pytest.fixture(scope="module")
def tok():
    return train_bpe_tokenizer(TEXTS * 5, 300)


def test_rows_hold_whole_documents_in_order_each_ended_by_eos(tok) -> None:
    rows = pack_documents(TEXTS, tok, 16)
    eos = tok.eos_token_id
    tokens = [t for r in range(len(rows)) for t in rows.input_ids[r][rows.attention_mask[r].bool()].tolist()]
    expected = [t for text in TEXTS for t in tok(text, add_special_tokens=False)["input_ids"] + [eos]]
    assert tokens == expected  # nothing lost, duplicated or reordered
    assert torch.equal(rows.labels == -100, rows.attention_mask == 0)  # loss on every real token, none on padding
    for r in range(len(rows)):  # a short document never straddles a row end: rows after the first start a document
        n = int(rows.attention_mask[r].sum())
        assert n > 0 and rows.input_ids[r, n - 1] == eos or n == 16
    # a document longer than a row is cut into row-sized pieces
    long_ids = tok(TEXTS[3], add_special_tokens=False)["input_ids"]
    assert len(long_ids) > 16 and any(rows.input_ids[r].tolist() == long_ids[:16] for r in range(len(rows)))


def test_short_documents_fill_rows(tok) -> None:
    rows = pack_documents(["ok"] * 40, tok, 12)
    per_doc = len(tok("ok", add_special_tokens=False)["input_ids"]) + 1
    assert len(rows) == -(-40 // (12 // per_doc))
    assert int(rows.attention_mask.sum()) == 40 * per_doc
    with pytest.raises(ValueError, match="length"):
        pack_documents(["ok"], tok, 1)


def test_perplexity_is_mean_token_nll_and_written_once(tmp_path: Path, tok) -> None:
    from curation.steps.train import LMConfig, build_gpt2

    model = build_gpt2(tok, LMConfig(n_layer=1, n_embd=16, n_head=2, max_length=32), seed=0).eval()
    texts = ["the cat sat on the mat.", "ok", "a dog ran far away"]
    data = CompletionDataset([""] * 3, texts, tok, max_length=32)
    got = mean_token_nll(model, data)
    for i, text in enumerate(texts):  # direct: mean next-token cross-entropy over the text and its eos
        ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1]
        assert got[i] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, ids[0, 1:])), rel=1e-5)
    store = stores.open(tmp_path / "s", create=True)
    samples = Samples(data, ["a", "b", "c"], "docs")
    run = perplexity_scores(store, model, samples)
    df = store.sql("SELECT sample_id, method, score FROM self_scores WHERE run_id = ? ORDER BY sample_id", [run.run_id])
    assert df["method"].to_list() == ["perplexity"] * 3
    assert np.allclose(df["score"].to_numpy(), got, rtol=1e-5)
    assert perplexity_scores(store, model, samples).shards_computed == 0  # a repeat reads nothing new


def test_no_documents_no_rows(tok) -> None:
    rows = pack_documents([], tok, 8)
    assert len(rows) == 0 and rows.input_ids.shape == (0, 8)
