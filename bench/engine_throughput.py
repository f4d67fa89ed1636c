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

- candidate prefilter at ``--prefilter-queries`` (1,000) queries: TF-IDF picks K training samples
  per query and only those pairs are scored (exactly, see attribution/candidates.py); compared
  with full scoring at the same number of queries, whose time is extrapolated from the measured
  1- and 100-query runs (full cost is linear in queries). Spearman of the candidates' scores
  against the full scores (first 100 queries, where both exist) and the prefilter's recall of
  each query's full top-10.

Writes bench/results/engine_throughput.json.
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
from attribution.prefilter import tfidf_candidates  # noqa: E402
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
    p.add_argument("--prefilter-queries", type=int, default=1000)
    p.add_argument("--k", default="50,100", help="candidates per query (comma-separated)")
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
        pq_, pc_ = pairs(args.prefilter_queries, 2)  # the first --queries of these are the queries above
        many = CompletionDataset(pq_, pc_, tok, 24)
        many_ids = [f"q{i}" for i in range(args.prefilter_queries)]
        prefilter = {}
        for k in [int(x) for x in args.k.split(",") if x.strip()]:
            s0 = time.perf_counter()
            cand = tfidf_candidates([a + b for a, b in zip(tp, tc, strict=True)],
                                    [a + b for a, b in zip(pq_, pc_, strict=True)], k)
            pick_s = time.perf_counter() - s0
            crun = engine.pairwise_scores(f"prefilter_{k}", train_ds, ids, many, many_ids, candidates=cand,
                                          prefilter={"method": "tfidf", "analyzer": "char_wb"})
            total_s = time.perf_counter() - s0
            df = store.read_scores(crun.run_id)
            qi, ti = {q: i for i, q in enumerate(many_ids)}, {t: i for i, t in enumerate(ids)}
            got = np.full((len(many_ids), len(ids)), np.nan)
            got[[qi[q] for q in df["query_id"]], [ti[t] for t in df["sample_id"]]] = df["score"].to_numpy()
            nq = min(args.queries, len(many_ids))
            rho = float(np.mean([spearmanr(full[q, cand[q]], got[q, cand[q]])[0] for q in range(nq)]))
            recall = float(np.mean([len(set(np.argsort(-full[q])[:10]) & set(cand[q])) / 10 for q in range(nq)]))
            prefilter[k] = {"seconds": total_s, "pick_s": pick_s, "spearman_top_candidates": rho,
                            "recall_full_top10": recall}
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
    t1, tq = timings["pairwise_1_query_s"], timings[f"pairwise_{args.queries}_queries_s"]
    full_est = t1 + (tq - t1) * (args.prefilter_queries - 1) / (args.queries - 1)
    result["full_pairwise_extrapolated_s"] = {str(args.prefilter_queries): full_est}
    result["prefilter"] = {str(k): v | {"speedup_vs_full": full_est / v["seconds"]} for k, v in prefilter.items()}
    if prefilter:
        k0 = min(prefilter)  # the headline: the smallest K measured
        result["lowrank_prefilter_speedup"] = full_est / prefilter[k0]["seconds"]
        result["lowrank_prefilter_spearman"] = prefilter[k0]["spearman_top_candidates"]
        result["lowrank_prefilter_note"] = (
            f"prefilter (TF-IDF, K={k0}) with exact candidate scoring at {args.prefilter_queries} queries; "
            "low rank does not apply to candidate scoring (each pair is exact), low rank alone is lowrank_*")
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
    for k, v in result.get("prefilter", {}).items():
        print(f"prefilter TF-IDF K={k} at {args.prefilter_queries} queries: {v['seconds']:.1f} s, "
              f"{v['speedup_vs_full']:.1f}x faster than full (extrapolated {full_est:.0f} s), Spearman on "
              f"candidates {v['spearman_top_candidates']:.3f}, recall of full top-10 {v['recall_full_top10']:.2f}")
    for n_, v in rss.items():
        print(f"peak RSS scoring {n_:,} samples: {v:,.0f} MiB")
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
