"""train_lm runs any number of steps: torch's one-cycle schedule needs at least 2 warm-up steps."""

from __future__ import annotations

import pytest
import torch

from attribution.data import CompletionDataset, char_tokenizer
from curation.steps.train import LMConfig, build_gpt2, train_lm


@pytest.mark.parametrize("steps", [1, 3, 20, 30])
def test_short_training_runs_and_learns(steps: int) -> None:
    tok = char_tokenizer("abc =")
    cfg = LMConfig(n_layer=1, n_embd=16, n_head=2, steps=steps, batch_size=4, lr=1e-2, max_length=12)
    data = CompletionDataset(["a="] * 4 + ["b="] * 4, ["abc"] * 4 + ["cba"] * 4, tok, cfg.max_length)
    model = build_gpt2(tok, cfg, seed=0)
    losses = train_lm(model, data, cfg, seed=0)
    assert len(losses) == steps and all(torch.isfinite(torch.tensor(losses)))
    if steps >= 20:
        assert sum(losses[-3:]) < sum(losses[:3])
    assert not model.training
