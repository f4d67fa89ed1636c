"""Causal LM task on a tiny GPT-2: Conv1D linearisation, tracked modules, prompt-masked losses, scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from torch.utils.data import Dataset
from transformers import GPT2Config, GPT2LMHeadModel

import stores
from attribution.data import Samples
from attribution.engine import EngineConfig, InfluenceEngine
from attribution.tasks import CausalLMTask, linearize_conv1d, mlp_linear_modules

VOCAB = list("0123456789+= ") + ["<pad>"]
PAD = len(VOCAB) - 1


def _tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=len(VOCAB), n_positions=32, n_embd=32, n_layer=2, n_head=2,
                     bos_token_id=PAD, eos_token_id=PAD, pad_token_id=PAD)
    return GPT2LMHeadModel(cfg).eval()


class PromptCompletion(Dataset):
    """Character-level prompt/completion pairs, padded to a fixed length, prompt and padding masked."""

    def __init__(self, pairs: list[tuple[str, str]], length: int = 16):
        self.items = []
        for prompt, completion in pairs:
            ids = [VOCAB.index(c) for c in prompt + completion]
            n_prompt = len(prompt)
            pad = length - len(ids)
            input_ids = torch.tensor(ids + [PAD] * pad)
            mask = torch.tensor([1] * len(ids) + [0] * pad)
            labels = input_ids.clone()
            labels[:n_prompt] = -100
            labels[mask == 0] = -100
            self.items.append({"input_ids": input_ids, "attention_mask": mask, "labels": labels})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.items[i]


def _pairs(n: int, offset: int = 0) -> list[tuple[str, str]]:
    return [(f"{i % 50}+{i % 7}=", f"{i % 50 + i % 7}") for i in range(offset, offset + n)]


def test_linearize_conv1d_keeps_logits_and_exposes_mlp_layers() -> None:
    model = _tiny_gpt2()
    with pytest.raises(ValueError, match="Conv1D layers .*linearize_conv1d"):
        mlp_linear_modules(model)
    x = torch.randint(0, PAD, (3, 10))
    before = model(input_ids=x).logits
    linearize_conv1d(model)
    after = model(input_ids=x).logits
    torch.testing.assert_close(before, after, rtol=1e-5, atol=1e-6)
    assert mlp_linear_modules(model) == [
        "transformer.h.0.mlp.c_fc", "transformer.h.0.mlp.c_proj",
        "transformer.h.1.mlp.c_fc", "transformer.h.1.mlp.c_proj",
    ]


def test_losses_cover_completion_tokens_only() -> None:
    model = linearize_conv1d(_tiny_gpt2())
    data = PromptCompletion(_pairs(4))
    batch = {k: torch.stack([data[i][k] for i in range(4)]) for k in data[0]}
    task = CausalLMTask(model)
    per_sample = task.per_sample_loss(batch, model)
    logp = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.log_softmax(-1)
    for i in range(4):
        prompt, completion = _pairs(4)[i]
        expected = -sum(
            logp[i, len(prompt) + j - 1, VOCAB.index(c)].item() for j, c in enumerate(completion)
        )
        assert per_sample[i].item() == pytest.approx(expected, rel=1e-5)
    assert task.compute_measurement(batch, model).item() == pytest.approx(per_sample.sum().item(), rel=1e-5)


def test_pairwise_scores_on_tiny_gpt2(tmp_path: Path) -> None:
    model = linearize_conv1d(_tiny_gpt2())
    task = CausalLMTask(model)
    ids, qids = [f"t{i}" for i in range(48)], [f"q{i}" for i in range(5)]
    train, queries = Samples(PromptCompletion(_pairs(48)), ids), Samples(PromptCompletion(_pairs(5, 1000)), qids)
    store = stores.open(tmp_path / "s")
    engine = InfluenceEngine(store, model, task, EngineConfig(strategy="ekfac", batch_size=16, shard_size=20))
    run = engine.pairwise_scores("answers", train, queries)
    df = store.read_scores(run.run_id)
    assert df.height == 48 * 5 and np.isfinite(df["score"].to_numpy()).all()
    tracked = store.get_run(run.run_id)["config"]["tracked_modules"]
    assert tracked == mlp_linear_modules(model)
    # a training trace identical to a query is among that query's most positive samples
    same = Samples(PromptCompletion([_pairs(5, 1000)[0]] + _pairs(47)), ["dup"] + ids[:47])
    run2 = engine.pairwise_scores("answers", same, queries)
    q0 = store.read_scores(run2.run_id).filter(query_id="q0").sort("score", descending=True)
    assert "dup" in q0["sample_id"].head(3).to_list()


def test_per_module_and_per_token_parts_sum_to_the_score(tmp_path: Path) -> None:
    """Decompositions are consistent with the plain scores (kronfluence pitfall 6: stale per-module sums)."""
    model = linearize_conv1d(_tiny_gpt2(1))
    task = CausalLMTask(model)
    ids, qids = [f"t{i}" for i in range(40)], [f"q{i}" for i in range(3)]
    train, queries = Samples(PromptCompletion(_pairs(40)), ids), Samples(PromptCompletion(_pairs(3, 500)), qids)
    store = stores.open(tmp_path / "s")
    engine = InfluenceEngine(store, model, task, EngineConfig(batch_size=8, shard_size=16))
    plain = engine.pairwise_scores("b", train, queries)
    split = engine.pairwise_scores("b", train, queries, per_module=True)
    assert split.run_id != plain.run_id
    total = store.sql("SELECT query_id, sample_id, score FROM scores WHERE run_id = ? ORDER BY ALL", [plain.run_id])
    same = store.sql("SELECT query_id, sample_id, score FROM scores WHERE run_id = ? ORDER BY ALL", [split.run_id])
    np.testing.assert_allclose(same["score"].to_numpy(), total["score"].to_numpy(), rtol=1e-4, atol=1e-4)
    parts = store.sql(
        """SELECT query_id, sample_id, sum(score) AS score, count(*) AS n, count(DISTINCT module) AS m
           FROM score_parts WHERE run_id = ? GROUP BY ALL ORDER BY query_id, sample_id""", [split.run_id])
    assert parts.height == 40 * 3 and set(parts["m"]) == {4} and set(parts["n"]) == {4}
    scale = np.abs(total["score"].to_numpy()).max()
    np.testing.assert_allclose(parts["score"].to_numpy(), total["score"].to_numpy(), atol=1e-4 * scale)

    chosen = ["t3", "t17"]
    class CharTokens:  # the one tokenizer method token_scores uses
        @staticmethod
        def convert_ids_to_tokens(ids: list[int]) -> list[str]:
            return [VOCAB[i] for i in ids]

    tok = engine.token_scores("b", train, queries, chosen, tokenizer=CharTokens())
    rows = store.sql("SELECT * FROM score_parts WHERE run_id = ? ORDER BY query_id, sample_id, position", [tok.run_id])
    t3 = rows.filter(sample_id="t3", query_id="q0")
    prompt, completion = _pairs(40)[3]
    assert "".join(t3["token"].to_list()) == prompt + completion  # padding excluded, text decoded
    assert t3["module"].null_count() == t3.height
    sums = rows.group_by("query_id", "sample_id").agg(s=pl.col("score").sum()).sort("query_id", "sample_id")
    want = total.filter(pl.col("sample_id").is_in(chosen)).sort("query_id", "sample_id")
    np.testing.assert_allclose(sums["s"].to_numpy(), want["score"].to_numpy(), atol=1e-3 * scale)
