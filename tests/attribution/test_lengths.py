"""Per-batch padding and length ordering: scores unchanged, batches trimmed, lengths read right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

import stores
from attribution.data import CompletionDataset, Samples, char_tokenizer
from attribution.engine import EngineConfig, InfluenceEngine, score_matrix
from attribution.lengths import (
    inverse_permutation,
    length_sorted,
    length_statistics,
    sample_lengths,
    trim_padding_collate,
)
from attribution.tasks import CausalLMTask, linearize_conv1d


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)  # long-tailed: mostly short, a few near max_length
    lengths = np.minimum(3 + rng.geometric(0.25, n), 40)
    return ["".join(rng.choice(list("abcdefgh "), size=int(k))) for k in lengths]


def _samples(tok, n: int, seed: int, prefix: str) -> Samples:
    data = CompletionDataset([""] * n, _texts(n, seed), tok, max_length=48)
    return Samples(data, [f"{prefix}{i}" for i in range(n)])


def _model(tok) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=48, n_embd=32, n_layer=2, n_head=2,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return linearize_conv1d(GPT2LMHeadModel(cfg)).eval()


def test_trim_padding_collate_cuts_only_positions_padded_in_every_sample() -> None:
    items = [{"input_ids": torch.tensor([5, 6, 7, 0, 0, 0]), "attention_mask": torch.tensor([1, 1, 1, 0, 0, 0]),
              "labels": torch.tensor([-100, 6, 7, -100, -100, -100])},
             {"input_ids": torch.tensor([5, 6, 0, 0, 0, 0]), "attention_mask": torch.tensor([1, 1, 0, 0, 0, 0]),
              "labels": torch.tensor([-100, 6, -100, -100, -100, -100])}]
    batch = trim_padding_collate(items)
    assert batch["input_ids"].shape == (2, 3)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 6, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [-100, 6, -100]]
    # a label past the attention keeps its position; tabular batches pass through
    items[1]["labels"] = torch.tensor([-100, 6, -100, -100, 9, -100])
    assert trim_padding_collate(items)["labels"].shape == (2, 5)
    x = [(torch.ones(3), torch.tensor(1)), (torch.zeros(3), torch.tensor(0))]
    assert trim_padding_collate(x)[0].shape == (2, 3)


def test_lengths_orders_and_statistics() -> None:
    tok = char_tokenizer("abcdefgh ")
    data = CompletionDataset(["", ""], ["ab", "abcdef"], tok, max_length=10)
    lengths = sample_lengths(data)
    assert lengths.tolist() == [3, 7]  # with the eos token
    assert sample_lengths(torch.utils.data.Subset(data, [1])).tolist() == [7]
    assert sample_lengths(torch.utils.data.TensorDataset(torch.ones(2, 3))) is None
    order = length_sorted([0, 1, 2, 3], np.array([2, 9, 2, 5]))
    assert order == [1, 3, 0, 2]  # longest first, ties stable
    values = np.array([10.0, 11.0, 12.0, 13.0])[order]  # computed in that order
    assert values[inverse_permutation(order, [0, 1, 2, 3])].tolist() == [10.0, 11.0, 12.0, 13.0]
    stats = length_statistics(lengths, padded_to=10)
    assert stats["real_tokens"] == 10 and stats["padded_tokens"] == 20 and stats["real_share"] == pytest.approx(0.5)


@pytest.mark.slow  # heavy; `make test-all` runs it (the fast suite must stay under 15 min on 2 cores)
def test_per_batch_padding_gives_the_scores_of_full_padding(tmp_path: Path) -> None:
    tok = char_tokenizer("abcdefgh ")
    train, queries = _samples(tok, 40, 0, "t"), _samples(tok, 6, 1, "q")
    lengths = sample_lengths(train.data)
    assert lengths.max() > 3 * np.median(lengths)  # long-tailed, so trimming matters
    results = {}
    for trim in (False, True):
        store = stores.open(tmp_path / f"s{trim}")
        model = _model(tok)
        engine = InfluenceEngine(store, model, CausalLMTask(model),
                                 # the data's labels: sampled ones are drawn per token, so a batch of
                                 # another shape draws other labels (another, equally valid, Fisher)
                                 EngineConfig(batch_size=8, shard_size=16, pad_per_batch=trim,
                                              use_empirical_fisher=True))
        run = engine.pairwise_scores("b", train, queries)
        self_run = engine.self_scores(train)
        sq = store.read_self_scores(self_run.run_id)
        order = {s: i for i, s in enumerate(sq["sample_id"].to_list())}
        results[trim] = (score_matrix(store, run.run_id, queries.ids, train.ids),
                         sq["score"].to_numpy()[[order[s] for s in train.ids]])
    full, self_full = results[False]
    trimmed, self_trimmed = results[True]
    assert np.abs(full).max() > 0
    np.testing.assert_allclose(trimmed, full, rtol=2e-3, atol=2e-4 * np.abs(full).max())
    np.testing.assert_allclose(self_trimmed, self_full, rtol=2e-3, atol=2e-4 * np.abs(self_full).max())
    # not a no-op: the run order puts the longest samples first within each shard
    assert np.argsort(-lengths[:16], kind="stable").tolist() != list(range(16))
