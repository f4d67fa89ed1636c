"""Engine throughput on a small GPT-2: pairwise scoring vs the per-sample-gradient floor.

A GPT-2 (4 layers, d=256, built from GPT2Config, char tokenizer) is trained briefly on generated
arithmetic prompt/completion pairs. Then, in the same run:
- floor: one per-sample gradient (of the tracked MLP weights) for every training sample, batched
  with torch.func; the least any influence method must do;
- EK-FAC pairwise scoring of every training sample against 1 and 100 queries (factors fitted
  beforehand, timed separately), as samples/s and as a ratio to the floor;
- low-rank query gradients (rank ``--rank``) against full rank at 100 queries: speed-up and
  Spearman correlation of each query's scores, over all samples and over its top candidates;
- peak RSS of scoring 2k vs 20k samples in child processes (shards keep memory flat).

Writes bench/results/engine_throughput.json. The candidate prefilter (TF-IDF/faiss) is not
implemented yet: ``lowrank_prefilter_*`` report low rank alone until it lands.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import RESULTS_DIR, machine_info, now_iso, print_table, write_result  # noqa: E402

import stores  # noqa: E402
from attribution.data import CompletionDataset, char_tokenizer  # noqa: E402
from attribution.engine import EngineConfig, InfluenceEngine, score_matrix  # noqa: E402
from attribution.tasks import CausalLMTask, linearize_conv1d, mlp_linear_modules  # noqa: E402

ALPHABET = "0123456789+-*= "


def pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Generated arithmetic problems: prompt 'a op b =' and completion ' result'."""
    rng = np.random.default_rng(seed)
    prompts, completions = [], []
    for _ in range(n):
        a, b, op = int(rng.integers(0, 1000)), int(rng.integers(0, 1000)), "+-*"[int(rng.integers(0, 3))]
        prompts.append(f"{a}{op}{b}=")
        completions.append(f" {a + b if op == '+' else a - b if op == '-' else a * b}")
    return prompts, completions


def build_model(tok, seed: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=32, n_embd=256, n_layer=4, n_head=4,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return GPT2LMHeadModel(cfg)  # Conv1D layers: save_pretrained round-trips only before linearising


def train(model, data: CompletionDataset, steps: int, seed: int) -> None:
    torch.manual_seed(seed)
    task = CausalLMTask(tracked_modules=[])  # only its loss is used here
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = DataLoader(data, batch_size=32, shuffle=True)
    it = iter(loader)
    model.train()
    for _ in range(steps):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        loss = task.compute_train_loss(batch, model) / batch["attention_mask"].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def floor_seconds(model, data: CompletionDataset, batch_size: int) -> float:
    """Seconds to materialise every sample's gradient of the tracked MLP weights.

    One batched forward/backward with hooks; each sample's weight gradient is the sum over its
    tokens of output-gradient x input outer products (einsum), as per-sample-gradient methods do.
    """
    task = CausalLMTask(model)
    layers = dict(model.named_modules())
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for name in mlp_linear_modules(model):
        layer = layers[name]
        handles.append(layer.register_forward_hook(lambda m, i, o, n=name: captured.__setitem__(n, i[0].detach())))
        handles.append(layer.register_full_backward_hook(
            lambda m, gi, go, n=name: captured.__setitem__(n + ".g", go[0].detach())))
    t0 = time.perf_counter()
    try:
        for batch in DataLoader(data, batch_size=batch_size):
            model.zero_grad(set_to_none=True)
            task.compute_train_loss(batch, model).backward()
            for name in mlp_linear_modules(model):
                torch.einsum("bti,bto->boi", captured[name], captured[name + ".g"])
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def memory_child(n: int, work: Path, model_dir: Path, args: argparse.Namespace) -> float:
    """Peak RSS (MiB, VmHWM) of a child process scoring ``n`` samples against 10 queries.

    Factors are fitted on at most 500 samples so the child's time goes to scoring, whose
    memory is what must not grow with ``n``.
    """
    code = f"""
import sys, torch
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
import stores
from attribution.data import CompletionDataset
from attribution.engine import EngineConfig, InfluenceEngine
from attribution.models import load_causal_lm, load_tokenizer
from attribution.tasks import CausalLMTask
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from engine_throughput import pairs
torch.set_num_threads(2)
tok = load_tokenizer({str(model_dir)!r}); model = load_causal_lm({str(model_dir)!r})
p, c = pairs({n}, 1); qp, qc = pairs(10, 2)
train = CompletionDataset(p, c, tok, 24); queries = CompletionDataset(qp, qc, tok, 24)
store = stores.open({str(work / f"mem-{n}")!r})
eng = InfluenceEngine(store, model, CausalLMTask(model), EngineConfig(batch_size={args.batch_size}, shard_size=1024, covariance_max_examples=500))
eng.pairwise_scores("q", train, [f"t{{i}}" for i in range({n})], queries, [f"q{{i}}" for i in range(10)])
print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"memory child for {n} samples failed:\n{out.stderr[-3000:]}")
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--train-steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--memory-sizes", default="2000,20000", help="comma-separated; empty to skip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "engine_throughput.json")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    tok = char_tokenizer(ALPHABET)
    tp, tc = pairs(args.train, 1)
    qp, qc = pairs(args.queries, 2)
    train_ds, query_ds = CompletionDataset(tp, tc, tok, 24), CompletionDataset(qp, qc, tok, 24)
    ids, qids = [f"t{i}" for i in range(args.train)], [f"q{i}" for i in range(args.queries)]
    model = build_model(tok, args.seed)
    t0 = time.perf_counter()
    train(model, train_ds, args.train_steps, args.seed)
    model_dir = Path(tempfile.mkdtemp()) / "model"  # saved while still in GPT-2's own layout
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    linearize_conv1d(model)
    result: dict = {"benchmark": "engine_throughput", "created_at": now_iso(), "machine": machine_info(),
                    "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    "model": {"layers": 4, "d_model": 256, "params": sum(p.numel() for p in model.parameters()),
                              "train_s": time.perf_counter() - t0}}
    floor = floor_seconds(model, train_ds, args.batch_size)
    timings: dict = {"floor_s": floor}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = stores.open(work / "store")
        full_cfg = EngineConfig(strategy="ekfac", batch_size=args.batch_size, shard_size=args.train)
        engine = InfluenceEngine(store, model, CausalLMTask(model), full_cfg)
        s0 = time.perf_counter()
        engine.fit_factors(train_ds, ids)
        timings["fit_factors_s"] = time.perf_counter() - s0
        runs = {}
        for label, nq in (("1_query", 1), (f"{args.queries}_queries", args.queries)):
            s0 = time.perf_counter()
            runs[label] = engine.pairwise_scores(label, train_ds, ids, torch.utils.data.Subset(query_ds, range(nq)), qids[:nq])
            timings[f"pairwise_{label}_s"] = time.perf_counter() - s0
        low_cfg = EngineConfig(strategy="ekfac", batch_size=args.batch_size, shard_size=args.train, low_rank=args.rank)
        low_engine = InfluenceEngine(store, model, CausalLMTask(model), low_cfg)
        s0 = time.perf_counter()
        low_run = low_engine.pairwise_scores(f"{args.queries}_queries", train_ds, ids, query_ds, qids)
        timings["pairwise_lowrank_s"] = time.perf_counter() - s0
        full = score_matrix(store, runs[f"{args.queries}_queries"].run_id, qids, ids)
        low = score_matrix(store, low_run.run_id, qids, ids)
        rho_all = float(np.mean([spearmanr(full[q], low[q])[0] for q in range(len(qids))]))
        top = max(10, args.train // 100)
        rho_top = float(np.mean([
            spearmanr(full[q][np.argsort(-full[q])[:top]], low[q][np.argsort(-full[q])[:top]])[0] for q in range(len(qids))
        ]))
        sizes = [int(s) for s in args.memory_sizes.split(",") if s.strip()]
        rss = {n: memory_child(n, work, model_dir, args) for n in sizes}
    n = args.train
    result["timings"] = timings
    result["samples_per_s"] = {k.removeprefix("pairwise_").removesuffix("_s"): n / v
                               for k, v in timings.items() if k.startswith("pairwise_")}
    result["samples_per_s"]["floor"] = n / floor
    result["pairwise_over_floor"] = timings["pairwise_1_query_s"] / floor
    result[f"pairwise_{args.queries}_over_floor"] = timings[f"pairwise_{args.queries}_queries_s"] / floor
    result["lowrank_speedup"] = timings[f"pairwise_{args.queries}_queries_s"] / timings["pairwise_lowrank_s"]
    result["lowrank_spearman_all"] = rho_all
    result["lowrank_spearman_top"] = rho_top
    result["lowrank_prefilter_speedup"] = result["lowrank_speedup"]  # no prefilter yet: low rank alone
    result["lowrank_prefilter_spearman"] = rho_top
    result["prefilter"] = "not implemented yet; lowrank_prefilter_* report low rank alone"
    for n_, v in rss.items():
        result[f"peak_rss_mb_{n_ // 1000}k"] = v
    print_table(
        f"GPT-2 4x256, {n} training samples (2 CPU cores)",
        ["what", "seconds", "samples/s", "x floor"],
        [[k.removesuffix("_s"), v, n / v if k != "fit_factors_s" else None, v / floor]
         for k, v in timings.items()],
    )
    print(f"low rank {args.rank} at {args.queries} queries: speed-up {result['lowrank_speedup']:.2f}x, "
          f"Spearman vs full {rho_all:.3f} (all), {rho_top:.3f} (top {top})")
    for n_, v in rss.items():
        print(f"peak RSS scoring {n_:,} samples: {v:,.0f} MiB")
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
