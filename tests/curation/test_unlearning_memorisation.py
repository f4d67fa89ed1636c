"""MUSE-style memorisation metrics: ROUGE-L as rouge_score computes it, QA match, Min-K AUROC, PrivLeak."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from attribution.data import CompletionDataset, char_tokenizer
from curation.actions.unlearning.memorisation import (
    greedy_continuations,
    lcs_length,
    min_k_auroc,
    normalise_answer,
    privleak,
    qa_accuracy,
    rouge_l,
    rouge_tokens,
    verbatim_rouge_l,
)
from curation.steps.train import LMConfig, build_gpt2, train_lm

EDGE_CASES = [
    ("", ""), ("", "a b"), ("a b", ""), ("   ", "a"), ("!!! ...", "?"), ("a", "a"), ("a", "b"),
    ("the the the", "the"), ("the cat the cat", "cat the cat the"), ("Hello, World!", "hello world"),
    ("x_y-z", "x y z"), ("café naïve", "caf na ve"), ("1988.", "born in 1988"), ("A.B.C", "a b c"),
    ("is the city of Ostravel.", "is the city of Ostravel."), ("Ünïcödé ÄÖÜ", "n c d"),
    ("tab\there\nnewline", "tab here newline"), ("a a a b b", "b a b a"),
]


def _random_text(rng: random.Random) -> str:
    words = ["the", "a", "cat", "sat", "on", "mat", "Ostravel", "1988", "is", "of", "born", "x"]
    seps = [" ", " ", " ", ", ", ". ", "-", "  ", "\n", "!", "'s "]
    n = rng.randint(0, 12)
    out = "".join(rng.choice(words) + rng.choice(seps) for _ in range(n))
    return out.upper() if rng.random() < 0.1 else out


def test_rouge_l_matches_rouge_score():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rng = random.Random(0)
    pairs = EDGE_CASES + [(_random_text(rng), _random_text(rng)) for _ in range(400)]
    for pred, ref in pairs:
        assert rouge_l(pred, ref) == scorer.score(ref, pred)["rougeL"].fmeasure, (pred, ref)


def test_rouge_pieces():
    assert rouge_tokens("Hello, World! x_y") == ["hello", "world", "x", "y"]
    assert lcs_length(list("abcbdab"), list("bdcaba")) == 4
    assert lcs_length([], ["a"]) == 0
    assert rouge_l("is the city of Ostravel.", "is the city of Ostravel.") == 1.0
    assert rouge_l("completely different", "is the city") == 0.0
    # 3 of the reference's 5 words, in order, in a 4-word prediction: P = 3/4, R = 3/5
    assert rouge_l("is the Korvath city", "is the city of Ostravel") == pytest.approx(2 * 0.75 * 0.6 / 1.35)


def test_normalise_answer():
    assert normalise_answer(" Ostravel.") == "ostravel"
    assert normalise_answer("Fennick   Bay.\n") == "fennick bay"
    assert normalise_answer(" 1988.\nQuestion: Where was X born?") == "1988"
    assert normalise_answer("Marine biologist") == "marine biologist"
    assert normalise_answer("a..") == "a."  # only the final period goes
    assert normalise_answer("") == normalise_answer("  \n ") == ""


def test_privleak_uses_muse_orientation():
    assert privleak(0.5, 0.5) == 0.0
    assert privleak(1.0, 0.5) == pytest.approx(-100.0)  # forget set still stands out: under-unlearned
    assert privleak(0.25, 0.5) == pytest.approx(50.0)  # forget set looks less trained than unseen text
    assert privleak(0.8, 0.6) == pytest.approx((0.2 - 0.4) / 0.4 * 100)
    assert privleak(0.6, 0.5, members_positive=False) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="undefined"):
        privleak(0.9, 1.0)
    with pytest.raises(ValueError, match="AUROC"):
        privleak(1.2, 0.5)


# ---------------------------------------------------------------------- with a tiny trained model
MEMBER_PAIRS = [("q1:", " amber owl."), ("q2:", " cold river stone."), ("q3:", " violet."),
                ("q4:", " nine tall pines."), ("q5:", " brass key."), ("q6:", " quiet harbour.")]
CHARS = "abcdefghijklmnopqrstuvwxyz0123456789 .:"


@pytest.fixture(scope="module")
def tiny():
    """A 1-layer char GPT-2 trained to memorise MEMBER_PAIRS and six random strings (~2 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same float reductions on any machine
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    strings = ["".join(rng.choice(letters) for _ in range(24)) for _ in range(12)]
    members, nonmembers = strings[:6], strings[6:]
    tok = char_tokenizer(CHARS)
    cfg = LMConfig(n_layer=1, n_embd=48, n_head=2, steps=150, batch_size=12, lr=1e-2, max_length=32)
    prompts = [p for p, _ in MEMBER_PAIRS] + [""] * len(members)
    completions = [c for _, c in MEMBER_PAIRS] + members
    model = build_gpt2(tok, cfg, seed=0)
    try:
        train_lm(model, CompletionDataset(prompts, completions, tok, cfg.max_length), cfg, seed=0)
        yield model, tok, members, nonmembers
    finally:
        torch.set_num_threads(threads)


def test_qa_accuracy_and_verbatim_rouge_on_memorised_pairs(tiny):
    model, tok, _, _ = tiny
    questions, answers = [p for p, _ in MEMBER_PAIRS], [c.strip() for _, c in MEMBER_PAIRS]
    acc = qa_accuracy(model, tok, questions, answers)
    assert acc.dtype == np.int64 and acc.tolist() == [1] * len(questions)
    wrong = qa_accuracy(model, tok, questions, answers[1:] + answers[:1])
    assert wrong.tolist() == [0] * len(questions)
    scores = verbatim_rouge_l(model, tok, questions, [c for _, c in MEMBER_PAIRS])
    assert scores.dtype == np.float64 and scores.tolist() == [1.0] * len(questions)


def test_continuations_get_the_true_continuations_token_budget(tiny):
    model, tok, _, _ = tiny
    outs = greedy_continuations(model, tok, ["q2:", "q2:"], [" xy", " cold river stone."])
    assert outs == [" co", " cold river stone."]  # one char = one token: a 3-token budget
    assert greedy_continuations(model, tok, ["q2:", "q5:"], ["", ""], max_new_tokens=2) == [" c", " b"]


def test_min_k_auroc_separates_trained_from_unseen_strings(tiny):
    model, tok, members, nonmembers = tiny
    auc = min_k_auroc(model, tok, members, nonmembers)
    assert auc > 0.9
    assert min_k_auroc(model, tok, nonmembers, members) == pytest.approx(1 - auc)
    assert min_k_auroc(model, tok, members, members) == 0.5  # identical scores tie
