"""Train small causal LMs on store datasets and decode them greedily: the pipelines' models.

Models are GPT-2s built from a ``GPT2Config`` and trained from scratch on store datasets (no hub
downloads). :func:`train_or_reuse` saves them with ``save_pretrained`` (safetensors) under the
store's artifacts, keyed by everything that determines them (data, shape and schedule, seed,
tokenizer, training code), so a re-run reuses a trained model.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

import stores
from attribution.data import CompletionDataset, char_tokenizer, completion_dataset_from_store
from attribution.keys import short_digest
from attribution.models import quiet_transformers
from attribution.tasks import CausalLMTask
from stores.atomic import atomic_folder
from stores.progress import StepProgress


@dataclass
class LMConfig:
    """Shape and training schedule of a small GPT-2 (recorded with every model)."""

    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    steps: int = 1500
    batch_size: int = 32
    lr: float = 3e-3
    warmup: float = 0.05
    max_length: int = 128

    def key(self) -> str:
        """A short hash of the config, for artifact names."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def build_gpt2(tokenizer, cfg: LMConfig, seed: int):
    """A randomly initialised GPT-2 of the given shape (deterministic by seed)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=cfg.max_length, n_embd=cfg.n_embd,
                        n_layer=cfg.n_layer, n_head=cfg.n_head, bos_token_id=tokenizer.eos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return GPT2LMHeadModel(config)


def train_lm(model, data: CompletionDataset, cfg: LMConfig, seed: int, progress: bool = False,
             label: str = "training", on_step: Callable[[int, torch.nn.Module], None] | None = None,
             stop: int | None = None) -> list[float]:
    """Train ``model`` on prompt-masked completion loss (mean per completion token); returns losses.

    Batches are drawn with a seeded generator, so the same data, config and seed give the same
    weights. AdamW with a one-cycle schedule and gradient clipping at 1. ``on_step(step, model)``
    runs after each step (1-based, model in train mode: training dynamics such as forgetting
    events read it there); ``stop`` ends after that many steps of the ``cfg.steps`` schedule (an
    early-training model). The model is left in eval mode.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    task = CausalLMTask(tracked_modules=[])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    if cfg.steps >= 4:  # at least 2 warm-up steps: torch's one-cycle divides by (warm-up steps - 1)
        pct = min(0.5, max(cfg.warmup, 2.0 / cfg.steps))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=pct)
    else:  # too short for a schedule: constant learning rate
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    losses: list[float] = []
    model.train()
    n_steps = cfg.steps if stop is None else stop
    with _progress(progress, label, n_steps) as advance:
        for step in range(1, n_steps + 1):
            idx = torch.randint(0, len(data), (cfg.batch_size,), generator=gen)
            batch = {"input_ids": data.input_ids[idx], "attention_mask": data.attention_mask[idx],
                     "labels": data.labels[idx]}
            width = int(batch["attention_mask"].sum(1).max())
            batch = {k: v[:, :width] for k, v in batch.items()}
            n_tokens = (batch["labels"][:, 1:] != -100).sum().clamp(min=1)
            loss = task.compute_train_loss(batch, model) / n_tokens
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(step, model)
            advance(1)
    model.eval()
    return losses


@torch.no_grad()
def greedy_complete(model, tokenizer, prompts: Sequence[str], max_new_tokens: int, batch_size: int = 128) -> list[str]:
    """Greedy completions of ``prompts`` (up to eos or ``max_new_tokens``), decoded to text.

    Prompts of equal token length are batched together, so no padding (and no position
    shift) is involved: results equal one-at-a-time decoding.
    """
    model.eval()
    encoded = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    out: list[str] = [""] * len(prompts)
    by_len: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        by_len.setdefault(len(ids), []).append(i)
    eos = tokenizer.eos_token_id
    limit = model.config.n_positions
    for length, members in sorted(by_len.items()):
        for lo in range(0, len(members), batch_size):
            rows = members[lo : lo + batch_size]
            ids = torch.tensor([encoded[i] for i in rows])
            done = torch.zeros(len(rows), dtype=torch.bool)
            new: list[torch.Tensor] = []
            past = None
            step_input = ids
            for _ in range(min(max_new_tokens, limit - length)):
                res = model(input_ids=step_input, cache=past, use_cache=True)
                past = res["cache"] if "cache" in res else res.past_key_values
                nxt = res.logits[:, -1].argmax(-1)
                nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
                new.append(nxt)
                done |= nxt == eos
                if bool(done.all()):
                    break
                step_input = nxt.unsqueeze(1)
            if not new:
                continue
            gen = torch.stack(new, 1)
            for r, i in enumerate(rows):
                toks = gen[r].tolist()
                if eos in toks:
                    toks = toks[: toks.index(eos)]
                out[i] = tokenizer.decode(toks, skip_special_tokens=True)
    return out


def save_lm(model, tokenizer, folder: Path | str) -> Path:
    """Save model (safetensors) and tokenizer with ``save_pretrained`` as the folder ``folder``, atomically.

    Written into a hidden temp sibling, fsynced, then renamed into place (an earlier folder there,
    with anything cached in it, is replaced), so ``folder`` exists only when complete: a killed or
    failed save never leaves a half folder whose ``config.json`` a resumed run would trust.
    """
    folder = Path(folder)
    quiet_transformers()
    with atomic_folder(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return folder


def trace_tokenizer(charset: str):
    """The character tokenizer of generated traces (one token per character + pad/unk/eos)."""
    return char_tokenizer(charset)


@contextlib.contextmanager
def _progress(enabled: bool, label: str, total: int):
    with StepProgress(label, total, unit="steps", enabled=enabled) as bar:
        yield bar.advance


def training_code_key() -> str:
    """A hash of the code that turns a dataset into a trained model (model cache key).

    A cached model is only reused if the tokenizer, the dataset encoding, the model builder and
    the training loop are the code that made it.
    """
    from attribution import data as attribution_data

    parts = [inspect.getsource(obj) for obj in (
        LMConfig, build_gpt2, train_lm, trace_tokenizer, attribution_data.char_tokenizer,
        attribution_data.CompletionDataset, attribution_data.completion_dataset_from_store)]
    return short_digest(parts)


def decoding_code_key() -> str:
    """A hash of the greedy decoder (cache key of a model's outputs)."""
    return short_digest(inspect.getsource(greedy_complete))


def tokenizer_key(tokenizer) -> str:
    """A hash of a tokenizer's vocabulary and special tokens (part of a model's cache key)."""
    return short_digest(sorted(tokenizer.get_vocab().items()), tokenizer.eos_token, tokenizer.pad_token)


def train_or_reuse(store: stores.Store, dataset: str, tokenizer, cfg: LMConfig, seed: int, *,
                   extra_key: Sequence[str] = (), progress: bool = False,
                   say: Callable[[str], None] = lambda text: None) -> Path:
    """Train (or reuse) a GPT-2 on ``dataset``; returns its folder under the store's ``models`` artifacts.

    The cache key is the data's content fingerprint, the model config, the seed, the training
    code (:func:`training_code_key`) and ``extra_key`` (e.g. a non-default tokenizer's
    :func:`tokenizer_key`), not the dataset's name: the same samples under another name reuse
    the model, changed code retrains. Each training is a ``train`` run in the store.
    """
    fp = store.dataset_info(dataset)["fingerprint"]
    key = short_digest(fp, cfg.__dict__, seed, training_code_key(), *extra_key)
    models = store.artifact_dir("models")
    found = sorted(p for p in models.glob(f"*-{key}") if (p / "config.json").is_file())
    if found:
        return found[0]
    folder = models / f"{dataset}-{key}"
    data, _ = completion_dataset_from_store(store, dataset, tokenizer, cfg.max_length)
    t0 = time.perf_counter()
    model = build_gpt2(tokenizer, cfg, seed)
    with store.run("train", config={"model": cfg.__dict__, "folder": folder.name, "n_truncated": data.n_truncated,
                                    "code": training_code_key()}, seed=seed, dataset=dataset):
        losses = train_lm(model, data, cfg, seed, progress=progress, label=f"train on {dataset}")
        save_lm(model, tokenizer, folder)
    say(f"  trained on {dataset}: final loss {np.mean(losses[-50:]):.3f}/token, {time.perf_counter() - t0:.0f} s")
    return folder
