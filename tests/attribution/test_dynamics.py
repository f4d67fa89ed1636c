"""Training-dynamics scores (EL2N, GraNd, forgetting events) against direct computations, classifiers and LMs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from attribution.data import CompletionDataset
from attribution.dynamics import (
    ForgettingTracker,
    el2n_scores,
    grand_scores,
    lm_el2n_scores,
    lm_grand_scores,
    sequences_learned,
)
from attribution.models import MLP


def _data(n: int = 40, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g))


def _models(k: int = 2) -> list[MLP]:
    out = []
    for s in range(k):
        torch.manual_seed(s)
        out.append(MLP(5, [7], 3).eval())
    return out


def test_el2n_is_the_mean_norm_of_softmax_minus_onehot() -> None:
    ds, models = _data(), _models()
    x, y = ds.tensors
    want = np.mean([torch.linalg.vector_norm(F.softmax(m(x), -1) - F.one_hot(y, 3), dim=-1).detach().numpy()
                    for m in models], axis=0)
    np.testing.assert_allclose(el2n_scores(models, ds, batch_size=7), want, rtol=1e-6)


def test_grand_is_the_mean_per_sample_gradient_norm() -> None:
    ds, models = _data(12), _models()
    want = np.zeros(12)
    for m in models:
        for i in range(12):
            x, y = ds[i]
            m.zero_grad()
            F.cross_entropy(m(x.unsqueeze(0)), y.unsqueeze(0)).backward()
            want[i] += torch.sqrt(sum((p.grad ** 2).sum() for p in m.parameters())).item()
    np.testing.assert_allclose(grand_scores(models, ds), want / len(models), rtol=1e-5)


def test_forgetting_counts_correct_to_incorrect_moves() -> None:
    ds = _data(6)
    x, y = ds.tensors

    class Fixed(torch.nn.Module):  # predicts a given label per sample, by position
        def __init__(self, labels):
            super().__init__()
            self.labels = torch.as_tensor(labels)

        def forward(self, inputs):
            return F.one_hot(self.labels[: len(inputs)], 3).float()

    tracker = ForgettingTracker(6)
    wrong = (y + 1) % 3
    # sample 0: right, wrong, right, wrong -> 2 events; sample 1: always right -> 0; sample 2: never right -> inf
    plans = [[y[0], y[1], wrong[2], y[3], wrong[4], y[5]],
             [wrong[0], y[1], wrong[2], wrong[3], wrong[4], y[5]],
             [y[0], y[1], wrong[2], y[3], y[4], wrong[5]],
             [wrong[0], y[1], wrong[2], y[3], y[4], y[5]]]
    for plan in plans:
        tracker(Fixed(plan), ds, batch_size=6)
    np.testing.assert_array_equal(tracker.scores(), [2, 0, np.inf, 1, 0, 1])
    with pytest.raises(ValueError, match="made for 6"):
        tracker(Fixed(plans[0]), _data(5), batch_size=6)


def test_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one model"):
        el2n_scores([], _data())
    with pytest.raises(ValueError, match="no epoch"):
        ForgettingTracker(3).scores()


# ---------------------------------------------------------------------- causal LMs
def _lm_data(n: int = 6) -> tuple[CompletionDataset, object]:
    from curation.datasets.tint import generate_tint
    from curation.datasets.tint_traces import CHARSET
    from curation.steps.train import trace_tokenizer

    tok = trace_tokenizer(CHARSET)
    recs = generate_tint(n, seed=3, functions=("add", "sub"), min_digits=1, max_digits=2)
    return CompletionDataset([r["prompt"] for r in recs], [r["completion"] for r in recs], tok, 48), tok


def _lms(tok, k: int = 2) -> list[torch.nn.Module]:
    from attribution.tasks import linearize_conv1d
    from curation.steps.train import LMConfig, build_gpt2

    cfg = LMConfig(n_layer=1, n_embd=16, n_head=2, max_length=48)
    return [linearize_conv1d(build_gpt2(tok, cfg, s)).eval() for s in range(k)]


def _own(ds: CompletionDataset, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``i`` alone, unpadded: its input ids and the completion positions (predicting token t + 1)."""
    n = int(ds.attention_mask[i].sum())
    ids, labels = ds.input_ids[i, :n], ds.labels[i, :n]
    return ids, labels[1:]


def test_lm_el2n_is_the_mean_over_completion_tokens_of_softmax_minus_onehot() -> None:
    ds, tok = _lm_data()
    models = _lms(tok)
    want = np.zeros(len(ds))
    for m in models:
        for i in range(len(ds)):
            ids, nxt = _own(ds, i)
            with torch.no_grad():
                p = torch.softmax(m(input_ids=ids.unsqueeze(0)).logits[0, :-1], -1)
            keep = nxt != -100
            err = p[keep] - F.one_hot(nxt[keep], p.shape[-1]).float()
            want[i] += torch.linalg.vector_norm(err, dim=-1).mean().item() / len(models)
    np.testing.assert_allclose(lm_el2n_scores(models, ds, batch_size=4), want, rtol=1e-5)


def test_lm_grand_is_the_norm_of_one_samples_autograd_gradient() -> None:
    ds, tok = _lm_data(4)
    models = _lms(tok)
    want = np.zeros(len(ds))
    for m in models:
        for i in range(len(ds)):
            ids, nxt = _own(ds, i)
            m.zero_grad()
            logits = m(input_ids=ids.unsqueeze(0)).logits[0, :-1]
            keep = nxt != -100
            F.cross_entropy(logits[keep], nxt[keep]).backward()  # mean NLL of the completion tokens
            want[i] += torch.sqrt(sum((p.grad ** 2).sum() for p in m.parameters() if p.grad is not None)).item()
            m.zero_grad()
    np.testing.assert_allclose(lm_grand_scores(models, ds), want / len(models), rtol=1e-4)


class _Oracle(torch.nn.Module):
    """Logits that put the next token first, except at one completion position of the ``wrong`` samples."""

    def __init__(self, ds: CompletionDataset, wrong: set[int]):
        super().__init__()
        self.ds, self.wrong = ds, wrong

    def forward(self, input_ids, attention_mask=None):
        logits = F.one_hot(input_ids.roll(-1, dims=1), 64).float()
        for row in range(len(input_ids)):
            i = next(j for j in range(len(self.ds)) if torch.equal(self.ds.input_ids[j, : input_ids.shape[1]],
                                                                     input_ids[row]))
            if i in self.wrong:
                t = int((self.ds.labels[i] != -100).nonzero()[-1]) - 1  # predicts the last completion token
                logits[row, t] = logits[row, t].roll(1)
        return logits


def test_sequences_learned_needs_every_completion_token_right() -> None:
    ds, _ = _lm_data(6)
    np.testing.assert_array_equal(sequences_learned(_Oracle(ds, set()), ds, batch_size=4), [True] * 6)
    np.testing.assert_array_equal(sequences_learned(_Oracle(ds, {1, 4}), ds, batch_size=4),
                                  [True, False, True, True, False, True])


def test_forgetting_counts_learned_to_unlearned_transitions_of_recorded_flags() -> None:
    tracker = ForgettingTracker(5)
    flags = [[1, 1, 0, 0, 1],  # sample 0: 1 0 1 0 -> 2 events; 1: always -> 0; 2: never -> inf
             [0, 1, 0, 1, 1],  # sample 3: 0 1 0 1 -> 1 event; 4: 1 1 1 0 -> 1 event
             [1, 1, 0, 0, 1],
             [0, 1, 0, 1, 0]]
    for f in flags:
        tracker.record(np.array(f, dtype=bool))
    np.testing.assert_array_equal(tracker.scores(), [2, 0, np.inf, 1, 1])
    assert tracker.checks == 4
    with pytest.raises(ValueError, match="made for 5"):
        tracker.record(np.ones(4, dtype=bool))
