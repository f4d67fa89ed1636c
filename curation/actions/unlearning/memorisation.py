"""MUSE / TOFU-style memorisation metrics of a causal LM: what an unlearned model still knows.

The spec (``unlearning.md``, Evaluation) judges language-model unlearning by comparing the
unlearned model with one retrained without the forget set on:

- *verbatim memorisation*: :func:`verbatim_rouge_l`, ROUGE-L of the greedy continuation of a
  forget-set prefix against the true continuation;
- *knowledge memorisation*: :func:`qa_accuracy`, normalised exact match of greedy answers;
- *privacy leakage*: :func:`min_k_auroc` (Min-40% membership AUROC, members vs non-members)
  turned into MUSE's :func:`privleak`, near 0 when the unlearned model leaks as much as the
  retrained one, negative when it under-unlearns, positive when it over-unlearns.

:func:`rouge_l` is written here (no dependency on ``rouge_score``) and gives the same
F-measure as ``rouge_score``'s ``RougeScorer(["rougeL"])`` without stemming.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def rouge_tokens(text: str) -> list[str]:
    """ROUGE's word tokens: lowercased, every run of non-``[a-z0-9]`` characters a separator.

    The tokenisation of the ``rouge_score`` package's default tokenizer (no stemming), so scores
    compare with published MUSE figures: ``"Hello, World!"`` -> ``["hello", "world"]``.
    """
    return _NON_ALNUM.sub(" ", text.lower()).split()


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (O(len(a) * len(b)) time)."""
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure of ``prediction`` against ``reference`` over :func:`rouge_tokens`.

    With ``L`` the longest common subsequence of the two token lists: precision ``L / |pred|``,
    recall ``L / |ref|``, F = ``2PR / (P + R)``; 0 when either side has no tokens or nothing is
    shared. Why LCS: it rewards the reference's words in the reference's order without asking
    for contiguous matches, the standard score of verbatim memorisation (MUSE).
    """
    pred, ref = rouge_tokens(prediction), rouge_tokens(reference)
    if not pred or not ref:
        return 0.0
    common = lcs_length(ref, pred)
    precision, recall = common / len(pred), common / len(ref)
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def normalise_answer(text: str) -> str:
    """A QA answer for exact matching: first line, whitespace collapsed, lowercased, final ``.`` dropped.

    Why the first line: a model may go on with a new ``Question:`` after its answer; that is
    not part of the answer. ``" Ostravel.\\n"`` and ``"ostravel"`` normalise alike.
    """
    line = text.strip().split("\n", 1)[0] if text.strip() else ""
    line = " ".join(line.split()).lower()
    return line[:-1].rstrip() if line.endswith(".") else line


def _token_budgets(tokenizer, texts: Sequence[str], extra: int) -> list[int]:
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [len(t) + extra for t in ids]


def _greedy(model, tokenizer, prompts: Sequence[str], budgets: Sequence[int]) -> list[str]:
    """Greedy completions, each prompt with its own token budget (prompts grouped by budget)."""
    from curation.steps.train import greedy_complete

    out = [""] * len(prompts)
    groups: dict[int, list[int]] = {}
    for i, b in enumerate(budgets):
        groups.setdefault(b, []).append(i)
    for budget, rows in groups.items():
        texts = greedy_complete(model, tokenizer, [prompts[i] for i in rows], max_new_tokens=budget)
        for i, text in zip(rows, texts, strict=True):
            out[i] = text
    return out


def _check_pairs(a: Sequence[str], b: Sequence[str], what: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{len(a)} prompts but {len(b)} {what}")


def greedy_continuations(model, tokenizer, prefixes: Sequence[str], continuations: Sequence[str],
                         max_new_tokens: int | None = None) -> list[str]:
    """The model's greedy continuation of each prefix, as long as the true one (or ``max_new_tokens``).

    With ``max_new_tokens=None`` each prefix may generate as many tokens as its true
    continuation has (the budget MUSE gives: a longer output could only lower precision).
    Generation also stops at the eos token.
    """
    _check_pairs(prefixes, continuations, "continuations")
    budgets = (_token_budgets(tokenizer, continuations, 0) if max_new_tokens is None
               else [max_new_tokens] * len(prefixes))
    return _greedy(model, tokenizer, prefixes, [max(1, b) for b in budgets])


def verbatim_rouge_l(model, tokenizer, prefixes: Sequence[str], continuations: Sequence[str],
                     max_new_tokens: int | None = None) -> np.ndarray:
    """Per-sample ROUGE-L F of the greedy continuation of each prefix vs the true continuation.

    MUSE's verbatim-memorisation score: a model that memorised a text reproduces its
    continuation (1.0); one that never saw it only gets what the prefix implies. Budgets as in
    :func:`greedy_continuations`. Returns float64, aligned with ``prefixes``.
    """
    outputs = greedy_continuations(model, tokenizer, prefixes, continuations, max_new_tokens)
    return np.array([rouge_l(o, c) for o, c in zip(outputs, continuations, strict=True)], dtype=np.float64)


def qa_answers(model, tokenizer, questions: Sequence[str], answers: Sequence[str],
               max_new_tokens: int | None = None) -> list[str]:
    """Greedy answers to ``questions``; by default each may be 2 tokens longer than its true answer.

    ``answers`` only set the budgets (the true answer's token count + 2, room for a final
    period and a stray token) unless ``max_new_tokens`` is given.
    """
    _check_pairs(questions, answers, "answers")
    budgets = (_token_budgets(tokenizer, [" " + a.strip() for a in answers], 2) if max_new_tokens is None
               else [max_new_tokens] * len(questions))
    return _greedy(model, tokenizer, questions, budgets)


def qa_accuracy(model, tokenizer, questions: Sequence[str], answers: Sequence[str],
                max_new_tokens: int | None = None) -> np.ndarray:
    """1/0 per question: does the greedy answer equal the true one after :func:`normalise_answer`?

    The knowledge-memorisation score of a fact corpus (TOFU asks the model its facts): exact
    match is strict and unambiguous where every answer is a short value. Budgets as in
    :func:`qa_answers`. Returns int64, aligned with ``questions``.
    """
    outputs = qa_answers(model, tokenizer, questions, answers, max_new_tokens)
    return np.array([int(normalise_answer(o) == normalise_answer(a)) for o, a in zip(outputs, answers, strict=True)],
                    dtype=np.int64)


def min_k_auroc(model, tokenizer, member_texts: Sequence[str], nonmember_texts: Sequence[str],
                k: float = 0.4, max_length: int = 512) -> float:
    """AUROC of Min-K% Prob (``k`` = 40% as in MUSE) separating members from non-members.

    Scores come from :func:`attribution.membership.membership_scores` (method ``min_k``, larger
    = more likely a member) and :func:`attribution.membership.auroc` (ties count one half):
    0.5 when the model treats trained and unseen texts alike, 1.0 when it gives itself away.
    """
    from attribution.membership import auroc, membership_scores

    members = membership_scores(model, tokenizer, member_texts, methods=("min_k",), k=k,
                                max_length=max_length)["min_k"]
    nonmembers = membership_scores(model, tokenizer, nonmember_texts, methods=("min_k",), k=k,
                                   max_length=max_length)["min_k"]
    return auroc(members, nonmembers)


def privleak(auc_unlearned: float, auc_retrained: float, *, members_positive: bool = True) -> float:
    """MUSE's PrivLeak in percent: ``(AUC_unlearned - AUC_retrained) / AUC_retrained * 100``, MUSE's sign.

    Compares the forget-vs-holdout membership AUROC of the unlearned model with that of a model
    retrained without the forget set: 0 is ideal. MUSE's AUC is oriented the other way from
    :func:`min_k_auroc` (it is the chance that a *holdout* text looks more like a member, i.e.
    ``1 - x``), and its published figures (and open-unlearning's, quoted in the spec: NPO -86,
    GradDiff +93) use that orientation: **negative = under-unlearning** (the forget set still
    stands out as trained), positive = over-unlearning (it now looks less trained than unseen
    text). So by default (``members_positive=True``, AUCs as :func:`min_k_auroc` returns them)
    both AUCs are first turned into ``1 - auc``: the result is
    ``(auc_retrained - auc_unlearned) / (1 - auc_retrained) * 100``. Pass AUCs already in MUSE's
    orientation with ``members_positive=False`` to apply the formula as written.
    """
    for name, value in (("auc_unlearned", auc_unlearned), ("auc_retrained", auc_retrained)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be an AUROC in [0, 1], got {value}")
    if members_positive:
        auc_unlearned, auc_retrained = 1.0 - auc_unlearned, 1.0 - auc_retrained
    if auc_retrained <= 0:
        raise ValueError("the retrained model's AUROC (in MUSE's orientation) is 0: PrivLeak is undefined")
    return (auc_unlearned - auc_retrained) / auc_retrained * 100.0


__all__ = [
    "greedy_continuations", "lcs_length", "min_k_auroc", "normalise_answer", "privleak",
    "qa_accuracy", "qa_answers", "rouge_l", "rouge_tokens", "verbatim_rouge_l",
]
