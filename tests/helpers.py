"""Helpers shared by tests: writing input files and generating rows."""

from __future__ import annotations

import contextlib
import gc
import json
from pathlib import Path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write rows as one JSON object per line."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def arith_rows(n: int, offset: int = 0) -> list[dict]:
    """Deterministic prompt/completion rows with metadata columns."""
    return [
        {"prompt": f"{i} + {i % 7} =", "completion": f" {i + i % 7}", "op": "+", "idx": i}
        for i in range(offset, offset + n)
    ]


def save_tiny_lm(folder: Path, n_positions: int = 32) -> Path:
    """Save a randomly initialised 2-layer GPT-2 and its char tokenizer (digits, '+', '=', ' ') to ``folder``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from attribution.data import char_tokenizer

    tok = char_tokenizer("0123456789+= ")
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=n_positions, n_embd=32, n_layer=2, n_head=2,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@contextlib.contextmanager
def fast_gc():
    """kronfluence calls gc.collect() often; with the heap frozen each call is cheap."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
