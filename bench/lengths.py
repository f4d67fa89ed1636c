"""Cost on real text lengths: per-batch padding and length ordering against padding every sample to max_length.

A corpus of mostly short documents with a long tail (lengths drawn from a log-normal, median
``--median`` characters, cut at ``--max-length``; a character tokenizer, so tokens = characters
+ eos) is scored by a small GPT-2 (``--layers`` x ``--embd``, random init: cost does not depend
on the weights) through the engine twice, in one process, one after the other:

- ``padded``: ``EngineConfig(pad_per_batch=False)``: every batch is ``max_length`` tokens long
  (what the engine did before, and what a dataset padded to ``max_length`` costs kronfluence);
- ``trimmed``: ``pad_per_batch=True`` (the default): samples ordered by length within each shard,
  each batch cut to its longest sample.

Each arm fits EK-FAC factors on the N training documents (``fit_factors_s``), scores them against
Q queries (``pairwise_s``) and computes self-influence (``self_s``), each timed once (wall clock,
two torch threads). Factors use the data's labels (``use_empirical_fisher``) so both arms fit
the same factors and their scores must agree (``max_rel_diff`` of the pairwise scores and of
self-influence, against the largest score): the speed-up is the same computation, not another.
``real_token_share`` is the share of real tokens among ``N x max_length`` (the speed-up's ceiling
is about its inverse for the passes whose cost grows with length).

Writes bench/results/lengths.json and prints a table. Run alone (``make bench-lengths``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (  # noqa: E402
    RESULTS_DIR,
    add_provenance_args,
    machine_info,
    now_iso,
    print_table,
    require_clean_tree,
    write_result,
)

import stores  # noqa: E402
from attribution.data import CompletionDataset, Samples, char_tokenizer  # noqa: E402
from attribution.engine import EngineConfig, InfluenceEngine, score_matrix  # noqa: E402
from attribution.lengths import length_statistics, sample_lengths  # noqa: E402
from attribution.tasks import CausalLMTask, linearize_conv1d  # noqa: E402

ALPHABET = "abcdefghijklmnopqrstuvwxyz .,"


def corpus(n: int, median: float, sigma: float, max_length: int, seed: int) -> list[str]:
    """``n`` random documents with log-normal lengths (median ``median`` characters), cut to fit."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.lognormal(np.log(median), sigma, n)), 2, max_length - 1).astype(int)
    letters = np.array(list(ALPHABET))
    return ["".join(rng.choice(letters, size=int(k))) for k in lengths]


def build_model(vocab: int, pad: int, eos: int, layers: int, embd: int, max_length: int) -> torch.nn.Module:
    """A randomly initialised GPT-2 with its Conv1D layers as Linear (trackable)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=vocab, n_positions=max_length, n_embd=embd, n_layer=layers, n_head=4,
                     bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)
    return linearize_conv1d(GPT2LMHeadModel(cfg)).eval()


def arm(root: Path, trim: bool, train: Samples, queries: Samples, args: argparse.Namespace, tok) -> dict:
    """Fit, pairwise and self-influence with ``pad_per_batch=trim``; seconds and the scores."""
    store = stores.open(root / ("trimmed" if trim else "padded"))
    model = build_model(len(tok), tok.pad_token_id, tok.eos_token_id, args.layers, args.embd, args.max_length)
    engine = InfluenceEngine(store, model, CausalLMTask(model), EngineConfig(
        batch_size=args.batch_size, query_batch_size=len(queries), shard_size=args.shard_size,
        pad_per_batch=trim, use_empirical_fisher=True))
    out: dict = {}
    t = time.perf_counter()
    engine.fit_factors(train)
    out["fit_factors_s"] = time.perf_counter() - t
    t = time.perf_counter()
    run = engine.pairwise_scores("q", train, queries)
    out["pairwise_s"] = time.perf_counter() - t
    t = time.perf_counter()
    self_run = engine.self_scores(train)
    out["self_s"] = time.perf_counter() - t
    out["total_s"] = out["fit_factors_s"] + out["pairwise_s"] + out["self_s"]
    scores = score_matrix(store, run.run_id, queries.ids, train.ids)
    sq = store.read_self_scores(self_run.run_id)
    order = {s: i for i, s in enumerate(sq["sample_id"].to_list())}
    self_scores = sq["score"].to_numpy()[[order[s] for s in train.ids]]
    return {"seconds": out, "scores": scores, "self": self_scores}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--median", type=float, default=24.0, help="median document length in characters")
    p.add_argument("--sigma", type=float, default=1.0, help="log-normal sigma of the lengths")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embd", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--shard-size", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "lengths.json")
    add_provenance_args(p)
    args = p.parse_args(argv)
    git = require_clean_tree(args.allow_dirty)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    tok = char_tokenizer(ALPHABET)
    docs = corpus(args.train + args.queries, args.median, args.sigma, args.max_length, args.seed)
    data = CompletionDataset([""] * len(docs), docs, tok, max_length=args.max_length)
    everything = Samples(data, [f"d{i}" for i in range(len(docs))])
    train = everything.subset(range(args.train))
    queries = everything.subset(range(args.train, len(docs)))
    stats = length_statistics(sample_lengths(train.data), padded_to=args.max_length)
    with tempfile.TemporaryDirectory(prefix="bench-lengths-") as tmp:
        arms = {name: arm(Path(tmp), trim, train, queries, args, tok) for name, trim in (("padded", False),
                                                                                        ("trimmed", True))}
    padded, trimmed = arms["padded"], arms["trimmed"]
    scale = float(np.abs(padded["scores"]).max())
    self_scale = float(np.abs(padded["self"]).max())
    result = {
        "benchmark": "lengths", "created_at": now_iso(), "machine": machine_info(), "git": git, "args": vars(args),
        "corpus": stats,
        "padded": padded["seconds"], "trimmed": trimmed["seconds"],
        "speedup": {k: padded["seconds"][k] / trimmed["seconds"][k] for k in padded["seconds"]},
        "max_rel_diff": {"pairwise": float(np.abs(trimmed["scores"] - padded["scores"]).max() / scale),
                         "self": float(np.abs(trimmed["self"] - padded["self"]).max() / self_scale)},
        "wall_s": time.perf_counter() - t0,
    }
    write_result(args.out, result, args.allow_dirty)
    print(f"corpus: {stats['samples']} documents, median {stats['median_length']:.0f} tokens, longest "
          f"{stats['max_length']}, padded to {args.max_length}: real tokens {stats['real_share']:.1%}")
    print_table("engine passes, padded to max_length vs trimmed per batch (s)", ["pass", "padded", "trimmed", "speed-up"],
                [[k, padded["seconds"][k], trimmed["seconds"][k], result["speedup"][k]] for k in padded["seconds"]])
    print(f"scores agree: max difference {result['max_rel_diff']['pairwise']:.2e} (pairwise), "
          f"{result['max_rel_diff']['self']:.2e} (self) of the largest")
    return result


if __name__ == "__main__":
    main()
