"""Membership scores on tiny causal LMs: exact formulas, batching, metrics, memorisation, the store."""

from __future__ import annotations

import math
import random
import zlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from attribution.data import char_tokenizer
from attribution.membership import (
    MEMBERSHIP_METHODS,
    auroc,
    calibrate,
    membership_scores,
    tpr_at_fpr,
    write_membership_run,
)

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 ?:."
N_MEMBERS = 12


def _item(rng: random.Random) -> str:
    """A generated benchmark item: a question and its answer, random words and digits."""
    word = lambda n: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))  # noqa: E731
    return f"q: {word(rng.randint(3, 6))} {word(3)} {rng.randint(1, 999)}? a: {word(rng.randint(2, 7))}."


def _tokenizer():
    tok = char_tokenizer(ALPHABET)
    tok.pad_token = None  # like GPT-2's: the scores must not need one
    return tok


def _gpt2(tok, seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=64, n_layer=2, n_head=2,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    return GPT2LMHeadModel(cfg)


@pytest.fixture(scope="module")
def trained() -> dict:
    """A tiny GPT-2 trained to memorise ``N_MEMBERS`` items; unseen items from the same generator."""
    rng = random.Random(0)
    members = [_item(rng) for _ in range(N_MEMBERS)]
    nonmembers = [_item(rng) for _ in range(N_MEMBERS)]
    tok = _tokenizer()
    model = _gpt2(tok)
    ids = [tok(t)["input_ids"] for t in members]
    width = max(map(len, ids))
    x = torch.tensor([s + [0] * (width - len(s)) for s in ids])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in ids])
    labels = x.masked_fill(mask == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for _ in range(150):
        opt.zero_grad()
        model(input_ids=x, attention_mask=mask, labels=labels).loss.backward()
        opt.step()
    return {"model": model.eval(), "tok": tok, "members": members, "nonmembers": nonmembers}


def _reference(model, tok, text: str, k: float = 0.2, max_length: int = 512) -> dict[str, float]:
    """Each score recomputed for one text, in float64 with explicit sums over the vocabulary."""
    ids = tok(text)["input_ids"]
    truncated = len(ids) > max_length
    ids = ids[:max_length]
    if len(ids) < 2:
        return dict.fromkeys(MEMBERSHIP_METHODS, math.nan)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double().numpy()
    token_lp, z = [], []
    for t in range(1, len(ids)):
        row = logits[t - 1]
        log_norm = row.max() + math.log(sum(math.exp(v - row.max()) for v in row))
        logp = [v - log_norm for v in row]
        p = [math.exp(v) for v in logp]
        mu = sum(p[v] * logp[v] for v in range(len(p)))
        var = sum(p[v] * (logp[v] - mu) ** 2 for v in range(len(p)))
        token_lp.append(logp[ids[t]])
        z.append((logp[ids[t]] - mu) / math.sqrt(var))
    count = max(1, int(k * len(token_lp) + 1e-9))
    scored = tok.decode(ids, skip_special_tokens=True) if truncated else text
    nll_total = -sum(token_lp)
    return {  # larger = more likely a member: minus the NLLs
        "loss": -nll_total / len(token_lp),
        "zlib": -(nll_total / len(token_lp)) / len(zlib.compress(scored.encode("utf-8"))),
        "min_k": sum(sorted(token_lp)[:count]) / count,
        "min_k_pp": sum(sorted(z)[:count]) / count,
    }


def test_scores_equal_a_per_text_recomputation(trained: dict) -> None:
    model, tok = trained["model"], trained["tok"]
    texts = trained["members"][:4] + trained["nonmembers"][:4] + ["ab", "z", ""]
    got = membership_scores(model, tok, texts, batch_size=4)
    assert set(got) == set(MEMBERSHIP_METHODS)
    for i, text in enumerate(texts):
        want = _reference(model, tok, text)
        for m in MEMBERSHIP_METHODS:
            if math.isnan(want[m]):
                assert math.isnan(got[m][i]), (m, text)
            else:
                assert got[m][i] == pytest.approx(want[m], rel=1e-5, abs=1e-5), (m, text)
    # the four scores really differ (no method silently aliases another)
    finite = [got[m][:8] for m in MEMBERSHIP_METHODS]
    for a in range(4):
        for b in range(a + 1, 4):
            assert not np.allclose(finite[a], finite[b])


def test_truncation_to_max_length(trained: dict) -> None:
    model, tok = trained["model"], trained["tok"]
    long_text = " ".join(trained["nonmembers"][:3])  # > 40 characters = tokens
    got = membership_scores(model, tok, [long_text, long_text[:20]], max_length=20)
    want = _reference(model, tok, long_text, max_length=20)
    for m in MEMBERSHIP_METHODS:
        assert got[m][0] == pytest.approx(want[m], rel=1e-5, abs=1e-5), m
        assert got[m][0] == pytest.approx(got[m][1], rel=1e-5, abs=1e-5), m  # same 20 tokens scored


class Bigram(nn.Module):
    """A causal LM whose next-token log-probs depend only on the previous token: known exactly."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = nn.Parameter(table)

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=self.table[input_ids])


def test_min_k_and_min_k_pp_on_known_log_probs() -> None:
    tok = _tokenizer()
    vocab = len(tok)
    ids = tok("abcdefghijk")["input_ids"]  # 11 tokens, 10 predictions
    table = torch.tensor(np.random.default_rng(0).normal(size=(vocab, vocab)) * 2.0)  # logits[prev, next]
    model = Bigram(table.float())
    got = membership_scores(model, tok, ["abcdefghijk"], methods=("min_k", "min_k_pp", "loss"), k=0.2)
    logp = torch.log_softmax(table, -1)
    token_lp = np.array([logp[a, b].item() for a, b in zip(ids[:-1], ids[1:], strict=True)])
    # k = 0.2 of 10 predictions: the mean of the 2 smallest log-probs
    assert got["min_k"][0] == pytest.approx(np.sort(token_lp)[:2].mean(), abs=1e-5)
    assert got["loss"][0] == pytest.approx(token_lp.mean(), abs=1e-5)
    p = logp.exp()
    mu = (p * logp).sum(-1)
    sigma = ((p * (logp - mu[:, None]) ** 2).sum(-1)).sqrt()
    z = np.array([((logp[a, b] - mu[a]) / sigma[a]).item() for a, b in zip(ids[:-1], ids[1:], strict=True)])
    assert got["min_k_pp"][0] == pytest.approx(np.sort(z)[:2].mean(), abs=1e-5)
    # k = 1 averages every token: min_k is then the loss score
    whole = membership_scores(model, tok, ["abcdefghijk"], methods=("min_k",), k=1.0)
    assert whole["min_k"][0] == pytest.approx(token_lp.mean(), abs=1e-5)


def test_batched_equals_one_at_a_time_whatever_padding_side(trained: dict) -> None:
    model, tok = trained["model"], trained["tok"]
    texts = trained["nonmembers"] + trained["members"][:5] + ["q", "", "q: a"] + [" ".join(trained["members"])]
    done: list[int] = []
    one = membership_scores(model, tok, texts, batch_size=1, max_length=48, progress=done.append)
    assert sum(done) == len(texts)
    tok.padding_side = "left"
    try:
        many = membership_scores(model, tok, texts, batch_size=7, max_length=48)
    finally:
        tok.padding_side = "right"
    for m in MEMBERSHIP_METHODS:
        assert np.isnan(one[m]).tolist() == np.isnan(many[m]).tolist()
        np.testing.assert_allclose(many[m], one[m], rtol=0, atol=1e-5, equal_nan=True, err_msg=m)
    assert np.isnan(one["loss"]).sum() == 2  # "q" and "": fewer than 2 tokens


def test_dropout_is_off_and_the_mode_is_restored(trained: dict) -> None:
    tok = trained["tok"]
    cfg = _gpt2(tok).config
    cfg.resid_pdrop = cfg.embd_pdrop = cfg.attn_pdrop = 0.5
    model = GPT2LMHeadModel(cfg).train()  # heavy dropout, in train mode
    texts = trained["members"][:3]
    a = membership_scores(model, tok, texts)
    b = membership_scores(model, tok, texts)
    for m in MEMBERSHIP_METHODS:
        np.testing.assert_array_equal(a[m], b[m])
    assert model.training


def test_bad_arguments_are_named(trained: dict) -> None:
    model, tok = trained["model"], trained["tok"]
    with pytest.raises(ValueError, match="unknown membership method.*'ppl'"):
        membership_scores(model, tok, ["ab"], methods=("loss", "ppl"))
    with pytest.raises(ValueError, match="0 < k <= 1"):
        membership_scores(model, tok, ["ab"], k=0.0)
    with pytest.raises(TypeError, match=r"texts\[1\] is NoneType"):
        membership_scores(model, tok, ["ab", None])  # type: ignore[list-item]
    assert membership_scores(model, tok, [])["loss"].shape == (0,)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_and_tpr_at_fpr_agree_with_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pos = np.round(rng.normal(0.7, 1.0, 60), 1)  # rounding makes many ties, within and across classes
    neg = np.round(rng.normal(0.0, 1.0, 80), 1)
    y = np.r_[np.ones(pos.size), np.zeros(neg.size)]
    s = np.r_[pos, neg]
    assert auroc(pos, neg) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    fpr_curve, tpr_curve, _ = roc_curve(y, s, drop_intermediate=False)
    for target in (0.0, 0.01, 0.05, 0.1, 0.5, 1.0):
        want = tpr_curve[fpr_curve <= target + 1e-12].max()
        assert tpr_at_fpr(pos, neg, target) == pytest.approx(want, abs=1e-12), target
    # NaN (unscorable texts) is dropped
    assert auroc(np.r_[pos, np.nan], np.r_[np.nan, neg]) == pytest.approx(roc_auc_score(y, s))


def test_calibrate_keeps_the_false_positive_rate_and_is_tight() -> None:
    rng = np.random.default_rng(3)
    for ref in (rng.normal(size=200), np.round(rng.normal(size=200), 1), rng.normal(size=7)):
        cal = calibrate(ref, fpr=0.05, method="loss")
        assert (cal.method, cal.fpr, cal.n_reference) == ("loss", 0.05, ref.size)
        assert (ref > cal.threshold).mean() <= 0.05
        assert cal.is_member(ref).mean() <= 0.05
        lower = ref[ref < cal.threshold]  # the next lower threshold would flag too many
        if lower.size:
            assert (ref > lower.max()).mean() > 0.05
    assert calibrate(np.array([1.0, 2.0]), fpr=1.0).threshold == -math.inf
    with pytest.raises(ValueError, match="no scores"):
        calibrate(np.array([np.nan]))


def test_a_memorised_item_scores_as_a_member(trained: dict) -> None:
    model, tok = trained["model"], trained["tok"]
    members, nonmembers = trained["members"], trained["nonmembers"]
    got = membership_scores(model, tok, members + nonmembers, batch_size=8)
    n = len(members)
    results = {m: auroc(got[m][:n], got[m][n:]) for m in MEMBERSHIP_METHODS}
    assert results["loss"] > 0.9, results
    for m in MEMBERSHIP_METHODS:
        assert results[m] > 0.8, results
    assert tpr_at_fpr(got["loss"][:n], got["loss"][n:], 0.1) > 0.5


def test_write_membership_run_is_readable_with_sql(store) -> None:
    ids = ["s1", "s2", "s3"]
    scores = {"loss": np.array([-1.5, -2.0, np.nan]), "min_k": np.array([-3.0, -4.5, np.nan])}
    rid = write_membership_run(store, "model-abc", ids, scores, dataset="bench",
                               config={"k": 0.2, "max_length": 512}, seed=7)
    rows = store.sql("SELECT * FROM self_scores WHERE run_id=? ORDER BY method, sample_id", [rid])
    assert rows["sample_id"].to_list() == ids + ids
    assert rows["method"].to_list() == ["loss"] * 3 + ["min_k"] * 3
    got = rows["score"].to_numpy()
    np.testing.assert_allclose(got, [-1.5, -2.0, np.nan, -3.0, -4.5, np.nan], equal_nan=True)
    run = store.sql("SELECT kind, status, dataset, model_fingerprint, seed, config FROM runs WHERE run_id=?", [rid])
    assert run.row(0)[:5] == ("membership", "finished", "bench", "model-abc", 7)
    assert '"methods": ["loss", "min_k"]' in run["config"][0] and '"k": 0.2' in run["config"][0]


def test_write_membership_run_checks_before_starting(store) -> None:
    before = store.sql("SELECT count(*) AS n FROM runs")["n"][0]
    with pytest.raises(ValueError, match=r"scores\['loss'\] has 2 values but there are 3"):
        write_membership_run(store, "m", ["a", "b", "c"], {"loss": np.zeros(2)}, dataset="d", config={})
    with pytest.raises(ValueError, match="unique; 'a'"):
        write_membership_run(store, "m", ["a", "a"], {"loss": np.zeros(2)}, dataset="d", config={})
    with pytest.raises(ValueError, match="unknown membership method"):
        write_membership_run(store, "m", ["a"], {"perplexity": np.zeros(1)}, dataset="d", config={})
    assert store.sql("SELECT count(*) AS n FROM runs")["n"][0] == before
