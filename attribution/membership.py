"""Model-based membership scores: has a causal LM seen this text (a benchmark item) in training?

Contamination evidence that needs no access to the training data, only the model: a text the
model was trained on tends to get a lower loss than unseen text of the same kind. Four scores,
each per text and each oriented so that **larger = more likely a member** (AUROC with members
as positives reads directly):

- ``loss``: minus the mean token negative log-likelihood (NLL).
- ``zlib`` (Carlini et al. 2021): minus the mean NLL (log-perplexity, nats) divided by the
  zlib-compressed size of the text in bytes; the compressor stands in for how surprising the text
  is per se. This is the form of the Min-K% / Min-K%++ reference code, whose WikiMIA figures the
  spec quotes (dividing the *total* NLL instead would rank texts of different lengths differently).
- ``min_k`` (Min-K% Prob, Shi et al. 2024): mean of the lowest ``k`` fraction of token
  log-probabilities; a member has few very unlikely tokens.
- ``min_k_pp`` (Min-K%++, Zhang et al. 2024): the same over tokens standardised by the model's
  own next-token distribution, ``z_t = (log p(x_t) - mu_t) / sigma_t``.

There is no universal threshold on any of them: :func:`calibrate` picks one on known
non-members for a target false-positive rate, and :func:`tpr_at_fpr` / :func:`auroc` measure a
score on labelled members and non-members. :func:`write_membership_run` records the scores as
a ``membership`` run of ``self_scores`` rows, next to the other per-sample statistics.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

import stores

#: The scores :func:`membership_scores` computes, in its default order.
MEMBERSHIP_METHODS = ("loss", "zlib", "min_k", "min_k_pp")

_TINY = 1e-12  # floor on sigma_t for Min-K%++ (a one-token next-token distribution has sigma 0)


def membership_scores(
    model: nn.Module,
    tokenizer,
    texts: Sequence[str],
    *,
    methods: Sequence[str] = MEMBERSHIP_METHODS,
    k: float = 0.2,
    max_length: int = 512,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    progress: bool | Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Membership scores of ``texts`` under a causal LM: ``{method: scores aligned with texts}``.

    Every score is oriented so that **larger = more likely a member** of the training data.
    Each text is tokenised with the model's own ``tokenizer`` (its default special tokens, e.g.
    a BOS for Llama-style tokenizers) and **truncated to its first** ``max_length`` **tokens**.
    With tokens ``x_1..x_n`` the model predicts ``x_2..x_n`` (``n - 1`` log-probabilities
    ``l_t = log p(x_t | x_<t)``, natural log); a text with fewer than 2 tokens gets NaN. Scores:

    - ``loss``: ``mean_t l_t`` (minus the mean NLL).
    - ``zlib``: ``mean_t l_t / len(zlib.compress(text.encode("utf-8")))`` (minus mean NLL in nats
      over zlib bytes at the default level; for a truncated text, the decoded kept tokens are
      compressed, so both sides describe the same text).
    - ``min_k``: mean of the ``max(1, floor(k * (n - 1)))`` smallest ``l_t``.
    - ``min_k_pp``: the same over ``z_t = (l_t - mu_t) / sigma_t`` with ``mu_t = sum_v p_v log p_v``
      and ``sigma_t**2 = sum_v p_v (log p_v - mu_t)**2`` over the full next-token distribution
      ``p = p(. | x_<t)`` (sigma floored at 1e-12).

    Runs under ``torch.no_grad`` in eval mode (the model's mode is restored afterwards),
    ``batch_size`` texts at a time, grouped by length and right-padded with an attention mask;
    padding never reaches a scored position, so the pad token is irrelevant (tokenizers without
    one, like GPT-2's, work) and batched scores equal one-at-a-time scores up to float rounding.
    Log-probabilities are computed in float32 whatever the model's dtype. ``device`` defaults to
    the model's; if given, the model is moved there (in place). ``progress``: True shows a
    progress display, a callable is called with the number of texts done after each batch.
    The batch's logits (``batch_size x length x vocab`` floats) bound the memory used.
    """
    methods = _check_methods(methods)
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k is the fraction of tokens Min-K% averages: expected 0 < k <= 1, got {k}")
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2 tokens (one context + one prediction), got {max_length}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected a string")
    if device is not None:
        model.to(device)
    else:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))

    token_ids, truncated = _tokenize(tokenizer, texts, max_length)
    out = {m: np.full(len(texts), np.nan, dtype=np.float64) for m in methods}
    order = sorted((i for i, ids in enumerate(token_ids) if len(ids) >= 2), key=lambda i: (-len(token_ids[i]), i))
    was_training = model.training
    model.eval()
    try:
        with _advance(progress, len(texts)) as advance, torch.no_grad():
            advance(len(texts) - len(order))  # the unscorable ones are done already
            for lo in range(0, len(order), batch_size):
                rows = order[lo : lo + batch_size]
                stats = _batch_stats(model, [token_ids[i] for i in rows], device, "min_k_pp" in methods)
                for i, (lp, z) in zip(rows, stats, strict=True):
                    _fill(out, i, lp, z, k, methods, lambda i=i: _zlib_bytes(tokenizer, texts[i], token_ids[i], truncated[i]))
                advance(len(rows))
    finally:
        model.train(was_training)
    return out


def _check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    if isinstance(methods, str):
        methods = (methods,)
    unknown = [m for m in methods if m not in MEMBERSHIP_METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown membership method(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"expected some of {', '.join(MEMBERSHIP_METHODS)}")
    return tuple(dict.fromkeys(methods))


def _tokenize(tokenizer, texts: Sequence[str], max_length: int) -> tuple[list[list[int]], list[bool]]:
    """Token ids of each text (default special tokens, first ``max_length`` kept), and truncated."""
    if not texts:
        return [], []
    encoded = tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
    return [list(ids[:max_length]) for ids in encoded], [len(ids) > max_length for ids in encoded]


def _zlib_bytes(tokenizer, text: str, ids: list[int], truncated: bool) -> int:
    """zlib-compressed size of the text that was scored (the kept tokens if truncated)."""
    if truncated:
        text = tokenizer.decode(ids, skip_special_tokens=True)
    return len(zlib.compress(text.encode("utf-8")))


def _batch_stats(
    model: nn.Module, batch: list[list[int]], device, want_z: bool,
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Per text: log p of each predicted token and, if ``want_z``, its Min-K%++ z-score."""
    width = max(len(ids) for ids in batch)
    input_ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, ids in enumerate(batch):
        input_ids[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[r, : len(ids)] = 1
    logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
    out = []
    for r, ids in enumerate(batch):
        n = len(ids)
        logp = torch.log_softmax(logits[r, : n - 1].float(), dim=-1)  # predicts tokens 1..n-1
        target = input_ids[r, 1:n].to(logp.device)
        token_lp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        z = None
        if want_z:
            p = logp.exp()
            live = p > 0  # 0 * log 0 counts as 0 (logits of -inf give NaN otherwise)
            mu = torch.where(live, p * logp, 0.0).sum(-1)
            var = torch.where(live, p * (logp - mu.unsqueeze(-1)) ** 2, 0.0).sum(-1)
            z = ((token_lp - mu) / var.sqrt().clamp_min(_TINY)).double().cpu().numpy()
        out.append((token_lp.double().cpu().numpy(), z))
    return out


def _lowest_mean(values: np.ndarray, k: float) -> float:
    """Mean of the ``max(1, floor(k * len(values)))`` smallest values (Min-K%'s selection)."""
    count = max(1, math.floor(k * len(values) + 1e-9))
    return float(np.sort(values)[:count].mean())


def _fill(out: dict[str, np.ndarray], i: int, lp: np.ndarray, z: np.ndarray | None, k: float,
          methods: tuple[str, ...], zlib_bytes: Callable[[], int]) -> None:
    for m in methods:
        if m == "loss":
            out[m][i] = lp.mean()
        elif m == "zlib":
            out[m][i] = lp.mean() / zlib_bytes()
        elif m == "min_k":
            out[m][i] = _lowest_mean(lp, k)
        else:
            out[m][i] = _lowest_mean(z, k)


class _advance:
    """Context manager yielding ``advance(n)``: a progress display, a user callable or nothing."""

    def __init__(self, progress: bool | Callable[[int], None] | None, total: int):
        self._bar = None
        if callable(progress):
            self._fn: Callable[[int], None] = progress
        elif progress:
            from stores.progress import StepProgress

            self._bar = StepProgress("membership scores", total, unit="texts")
            self._fn = self._bar.advance
        else:
            self._fn = lambda n: None

    def __enter__(self) -> Callable[[int], None]:
        return lambda n: self._fn(n) if n else None

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


# ---------------------------------------------------------------------- thresholds and metrics
@dataclass(frozen=True)
class Calibration:
    """A membership threshold chosen on KNOWN NON-MEMBERS: at most ``fpr`` of them score above it.

    Membership scores have no universal threshold (they depend on the model and the kind of
    text), so one is set from ``n_reference`` texts known to be unseen: a text is flagged when
    its score is strictly greater than ``threshold``. ``method`` names the score it applies to.
    """

    method: str
    threshold: float
    fpr: float
    n_reference: int

    def is_member(self, scores: np.ndarray) -> np.ndarray:
        """Boolean flags: ``scores > threshold`` (NaN scores are never flagged)."""
        return np.asarray(scores, dtype=np.float64) > self.threshold


def _finite(scores: Any, what: str) -> np.ndarray:
    """The finite values of a 1-d score array (NaN marks a text that could not be scored)."""
    arr = np.asarray(scores, dtype=np.float64).ravel()
    if np.isinf(arr).any():
        raise ValueError(f"{what} holds infinite values; membership scores are finite or NaN")
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        raise ValueError(f"{what} holds no scores (empty or all NaN)")
    return arr


def calibrate(nonmember_scores: np.ndarray, fpr: float = 0.05, method: str = "") -> Calibration:
    """The lowest threshold that flags at most ``fpr`` of the known non-members (scores > it).

    With ``m = floor(fpr * n)`` of the ``n`` non-NaN reference scores allowed above it, the
    threshold is the ``(m + 1)``-th largest reference score (ties can only lower the achieved
    rate); ``-inf`` when every reference may be flagged. Why the lowest: it gives the most
    detections at that false-positive budget. Scores are "larger = more likely a member".
    """
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must be in [0, 1], got {fpr}")
    ref = np.sort(_finite(nonmember_scores, "nonmember_scores"))[::-1]
    allowed = math.floor(fpr * ref.size + 1e-9)
    threshold = float(ref[allowed]) if allowed < ref.size else -math.inf
    return Calibration(method=method, threshold=threshold, fpr=float(fpr), n_reference=int(ref.size))


def auroc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """Area under the ROC curve with members as positives (ties count one half); NaNs dropped.

    The probability that a random member outscores a random non-member: 0.5 is chance, 1.0 a
    perfect separation. The threshold-free summary the literature reports (e.g. WikiMIA).
    """
    pos = _finite(member_scores, "member_scores")
    neg = np.sort(_finite(nonmember_scores, "nonmember_scores"))
    below = np.searchsorted(neg, pos, side="left")
    tied = np.searchsorted(neg, pos, side="right") - below
    return float((below.sum() + 0.5 * tied.sum()) / (pos.size * neg.size))


def tpr_at_fpr(member_scores: np.ndarray, nonmember_scores: np.ndarray, fpr: float = 0.05) -> float:
    """Fraction of members flagged at the threshold :func:`calibrate` sets on the non-members.

    The operating point that matters when flagging contamination: how many seen items are
    caught while at most ``fpr`` of unseen ones are wrongly flagged. NaN scores are dropped.
    """
    cal = calibrate(nonmember_scores, fpr)
    pos = _finite(member_scores, "member_scores")
    return float((pos > cal.threshold).mean())


# ---------------------------------------------------------------------- the store
def write_membership_run(
    store: stores.Store,
    model_fingerprint_or_name: str,
    sample_ids: Sequence[str],
    scores: dict[str, np.ndarray],
    *,
    dataset: str,
    config: dict,
    seed: int | None = None,
) -> str:
    """Record membership scores as one finished ``membership`` run; returns its run id.

    One ``self_scores`` row per (sample, method): ``sample_id``, ``method`` (a name from
    :data:`MEMBERSHIP_METHODS`) and ``score`` (float32, larger = more likely a member; NaN for
    unscorable texts), so SQL joins them with other per-sample evidence. The run records
    ``dataset``, the model (fingerprint or name), ``seed`` and ``config`` plus the methods. The
    input is checked before the run starts, so bad input leaves no run behind.
    """
    ids = [str(s) for s in sample_ids]
    if len(set(ids)) != len(ids):
        dup = next(s for i, s in enumerate(ids) if s in ids[:i])
        raise ValueError(f"sample_ids must be unique; {dup!r} appears more than once")
    methods = _check_methods(list(scores))
    columns: dict[str, list] = {"sample_id": [], "method": [], "score": []}
    for m in methods:
        values = np.asarray(scores[m], dtype=np.float64).ravel()
        if values.size != len(ids):
            raise ValueError(f"scores[{m!r}] has {values.size} values but there are {len(ids)} sample_ids")
        columns["sample_id"] += ids
        columns["method"] += [m] * len(ids)
        columns["score"].append(values.astype(np.float32))
    table = {**columns, "score": np.concatenate(columns["score"]) if columns["score"] else np.zeros(0, np.float32)}
    with store.run("membership", config={**config, "methods": list(methods)}, seed=seed, dataset=dataset,
                   model_fingerprint=model_fingerprint_or_name) as run:
        run.write("self_scores", table, shard=0)
    return run.id


__all__ = [
    "MEMBERSHIP_METHODS", "Calibration", "auroc", "calibrate", "membership_scores", "tpr_at_fpr",
    "write_membership_run",
]
