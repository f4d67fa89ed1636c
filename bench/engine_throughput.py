"""Engine throughput on a small GPT-2: pairwise scoring against two floors, and the candidate prefilter.

A GPT-2 (4 layers, d=256, built from GPT2Config, char tokenizer) is trained briefly on generated
arithmetic prompt/completion pairs; its Conv1D layers are then replaced by equal ``nn.Linear``
ones. Everything below runs in one process, one step after another, each timed once (wall clock,
``time.perf_counter``, ``torch.set_num_threads(2)``), on N = ``--train`` training samples of 24
tokens. Scoring times include writing the scores to the store (Parquet), as the engine always does.

- Two references (``timings``), model in eval mode, ``--batch-size`` samples per batch:
  - ``compute_floor_s``: one ordinary training pass: forward and backward per batch, the loss summed
    over the batch (summed NLL of the completion tokens, the engine's training loss), gradients of
    all parameters accumulated in ``.grad``; no hooks, no per-sample gradients, no optimiser step.
    The least a method pays that needs a backward pass through every training sample;
  - ``per_sample_grad_floor_s``: the same pass with hooks on the tracked MLP Linear layers (the ones
    the engine scores) capturing their inputs and output gradients, plus, per batch and layer, each
    sample's weight gradient materialised as the sum over its tokens of output-gradient x input
    outer products (einsum to batch x out x in; biases left out). What a method pays that
    materialises per-sample gradients of the tracked layers. Not a floor for kronfluence, which
    never materialises them.
- EK-FAC factors fitted on the N samples (``fit_factors_s``, cached afterwards), then pairwise
  scoring of every training sample against 1 and Q = ``--queries`` queries through the engine
  (kronfluence): ``pairwise_1_query_s``, ``pairwise_<Q>_queries_s``, samples/s, and
  ``pairwise_{1,<Q>}_over_{compute,per_sample}_floor``.
- Low-rank query gradients (rank ``--rank``) against full rank at Q queries
  (``pairwise_<Q>_queries_lowrank_s``): ``lowrank_speedup`` and the Spearman correlation of each
  query's scores, over all samples (``lowrank_spearman_all``) and its top 1%, at least 10 (``lowrank_spearman_top``).
- Candidate prefilter at P = ``--prefilter-queries`` queries (the first Q are the queries above),
  under ``prefilter``:
  - ``full_<P>_queries_s``: full pairwise scoring (kronfluence) of P queries x N samples, measured,
    not extrapolated; its scores are the truth below;
  - ``candidate_k_eq_n_<C>_queries_s``: the control: the candidate path (attribution/candidates.py)
    with K = N, every training sample a candidate of every query, on the first C =
    ``--control-queries`` queries (default: all P; a smaller C is recorded in
    ``candidate_control.subset``). Its scores are checked against the full ones
    (``candidate_control.max_abs_diff_vs_full``, ``equal_to_full``). It is another implementation
    of the same pairs, so ``candidate_control_speedup_vs_full`` (full / control, only when C = P)
    is the implementation's gain, not the prefilter's;
  - ``per_k``, for each K in ``--k``: TF-IDF picks K training samples per query and the candidate
    path scores only those pairs (exact, same code as the control); seconds include the pick.
    ``speedup_vs_candidate_control``: the prefilter's own gain (control / prefilter, on the same C
    queries); ``speedup_vs_full_measured``: both gains together (full / prefilter, P queries);
    ``recall_top10``: mean over all P queries of the share of its true top-10 (from the full
    scores) among its candidates, next to ``recall_top10_random_expected`` = K / N;
    ``spearman_top_candidates``: Spearman against the full scores on the candidates (1 up to
    rounding: candidate scores are exact).
  The smallest K is the headline: ``prefilter_speedup_vs_candidate_control``,
  ``prefilter_recall_top10`` and ``prefilter_speedup_vs_full_measured`` at the top level.
- Peak RSS (``peak_rss_mb_2k``, ``peak_rss_mb_20k``) of a child process scoring each of
  ``--memory-sizes`` samples against 10 queries (factors fitted on 500): shards keep memory flat.

Writes bench/results/engine_throughput.json (with ``args``, ``machine``, ``wall_s``) and prints tables.
"""

from __future__ import annotations

import argparse
import shutil
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
from attribution.prefilter import tfidf_candidates  # noqa: E402
from attribution.tasks import CausalLMTask, linearize_conv1d, mlp_linear_modules  # noqa: E402

ALPHABET = "0123456789+-*= "
EXACT_TOLERANCE = 1e-5  # control vs full: max abs difference, as a fraction of the largest |full score|


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


def _warm_up(model, task: CausalLMTask, data: CompletionDataset, batch_size: int) -> None:
    """One untimed forward/backward on the first batch (allocator and kernel warm-up)."""
    batch = next(iter(DataLoader(data, batch_size=batch_size)))
    task.compute_train_loss(batch, model).backward()
    model.zero_grad(set_to_none=True)


def compute_floor_seconds(model, data: CompletionDataset, batch_size: int) -> float:
    """Seconds of one ordinary training pass over ``data``: forward + backward per batch, no more.

    The batch's loss is summed (the engine's training loss); ``.backward()`` accumulates the
    gradient of every parameter in ``.grad``. No hooks, no per-sample gradients, no optimiser step.
    """
    task = CausalLMTask(tracked_modules=[])  # only its loss is used here
    _warm_up(model, task, data, batch_size)
    t0 = time.perf_counter()
    for batch in DataLoader(data, batch_size=batch_size):
        task.compute_train_loss(batch, model).backward()
    seconds = time.perf_counter() - t0
    model.zero_grad(set_to_none=True)
    return seconds


def per_sample_grad_floor_seconds(model, data: CompletionDataset, batch_size: int) -> float:
    """Seconds to materialise every sample's gradient of the tracked MLP weights.

    The pass of :func:`compute_floor_seconds` plus hooks on the tracked Linear layers capturing
    their inputs and output gradients; per batch and layer, each sample's weight gradient (biases
    left out) is the sum over its tokens of output-gradient x input outer products (einsum to
    batch x out x in), as per-sample-gradient methods do.
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
    try:
        _warm_up(model, task, data, batch_size)
        t0 = time.perf_counter()
        for batch in DataLoader(data, batch_size=batch_size):
            model.zero_grad(set_to_none=True)
            task.compute_train_loss(batch, model).backward()
            for name in mlp_linear_modules(model):
                torch.einsum("bti,bto->boi", captured[name], captured[name + ".g"])
        seconds = time.perf_counter() - t0
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
    return seconds


def memory_child(n: int, work: Path, model_dir: Path, args: argparse.Namespace) -> float:
    """Peak RSS (MiB, VmHWM) of a child process scoring ``n`` samples against 10 queries.

    Factors are fitted on at most 500 samples so the child's time goes to scoring, whose
    memory is what must not grow with ``n``.
    """
    code = f"""
import sys, torch
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
import stores
from attribution.data import CompletionDataset, Samples
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
eng.pairwise_scores("q", Samples(train, [f"t{{i}}" for i in range({n})]), Samples(queries, [f"q{{i}}" for i in range(10)]))
print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"memory child for {n} samples failed:\n{out.stderr[-3000:]}")
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def gather(store: stores.Store, run_id: str, query_ids: list[str], train_ids: list[str]) -> np.ndarray:
    """A candidate run's scores as a (queries x N) array, NaN where a pair was not scored."""
    df = store.read_scores(run_id)
    qi, ti = {q: i for i, q in enumerate(query_ids)}, {t: i for i, t in enumerate(train_ids)}
    out = np.full((len(query_ids), len(train_ids)), np.nan)
    out[[qi[q] for q in df["query_id"]], [ti[t] for t in df["sample_id"]]] = df["score"].to_numpy()
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--train-steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--prefilter-queries", type=int, default=1000)
    p.add_argument("--control-queries", type=int, default=None,
                   help="queries of the K = N candidate control (the first ones; default: all prefilter queries)")
    p.add_argument("--k", default="50,100", help="candidates per query (comma-separated); the smallest is the headline")
    p.add_argument("--memory-sizes", default="2000,20000", help="comma-separated; empty to skip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "engine_throughput.json")
    add_provenance_args(p)
    args = p.parse_args(argv)
    n_train, n_q, n_p = args.train, args.queries, args.prefilter_queries
    n_c = n_p if args.control_queries is None else args.control_queries
    ks = sorted({int(x) for x in args.k.split(",") if x.strip()})
    if not 1 <= n_q <= n_p:
        p.error(f"--queries ({n_q}) must be between 1 and --prefilter-queries ({n_p}): they are its first ones")
    if not 1 <= n_c <= n_p:
        p.error(f"--control-queries ({n_c}) must be between 1 and --prefilter-queries ({n_p})")
    if n_train < 10:
        p.error("--train must be at least 10 (recall of each query's top 10)")
    if not ks or min(ks) < 1 or max(ks) > n_train:
        p.error(f"--k must list candidate counts between 1 and --train ({n_train}), got {args.k!r}")
    require_clean_tree(args.allow_dirty)  # fail now, not when writing after the whole run
    t_start = time.perf_counter()
    torch.set_num_threads(2)
    tok = char_tokenizer(ALPHABET)
    tp, tc = pairs(n_train, 1)
    pq_, pc_ = pairs(n_p, 2)  # the first n_q are the pairwise / low-rank queries
    ids, many_ids = [f"t{i}" for i in range(n_train)], [f"q{i}" for i in range(n_p)]
    qids = many_ids[:n_q]
    train_ds = CompletionDataset(tp, tc, tok, 24)
    train_s = Samples(train_ds, ids)
    many = Samples(CompletionDataset(pq_, pc_, tok, 24), many_ids)
    query_s = Samples(CompletionDataset(pq_[:n_q], pc_[:n_q], tok, 24), qids)

    def first(nq: int) -> Samples:
        """The first ``nq`` prefilter queries (the dataset itself when all: no per-item fingerprinting)."""
        return many if nq == n_p else many.subset(range(nq))
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
                              "tracked_modules": mlp_linear_modules(model), "train_s": time.perf_counter() - t0}}
    compute_floor = compute_floor_seconds(model, train_ds, args.batch_size)
    per_sample_floor = per_sample_grad_floor_seconds(model, train_ds, args.batch_size)
    timings: dict = {"compute_floor_s": compute_floor, "per_sample_grad_floor_s": per_sample_floor}
    label_q = f"pairwise_{n_q}_queries_s"
    label_full, label_control = f"full_{n_p}_queries_s", f"candidate_k_eq_n_{n_c}_queries_s"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = stores.open(work / "store")
        full_cfg = EngineConfig(strategy="ekfac", batch_size=args.batch_size, shard_size=n_train)
        engine = InfluenceEngine(store, model, CausalLMTask(model), full_cfg)
        s0 = time.perf_counter()
        engine.fit_factors(train_s)
        timings["fit_factors_s"] = time.perf_counter() - s0

        # ---- pairwise scoring at 1 and Q queries, and low rank at Q
        runs = {}
        for label, nq in (("pairwise_1_query_s", 1), (label_q, n_q)):
            s0 = time.perf_counter()
            runs[label] = engine.pairwise_scores(label, train_s, query_s.subset(range(nq)))
            timings[label] = time.perf_counter() - s0
        low_cfg = EngineConfig(strategy="ekfac", batch_size=args.batch_size, shard_size=n_train, low_rank=args.rank)
        low_engine = InfluenceEngine(store, model, CausalLMTask(model), low_cfg)
        s0 = time.perf_counter()
        low_run = low_engine.pairwise_scores(label_q, train_s, query_s)
        timings[f"pairwise_{n_q}_queries_lowrank_s"] = time.perf_counter() - s0
        full_q = score_matrix(store, runs[label_q].run_id, qids, ids)
        low = score_matrix(store, low_run.run_id, qids, ids)
        rho_all = float(np.mean([spearmanr(full_q[q], low[q])[0] for q in range(n_q)]))
        top = max(10, n_train // 100)
        rho_top = float(np.mean([
            spearmanr(full_q[q][np.argsort(-full_q[q])[:top]], low[q][np.argsort(-full_q[q])[:top]])[0]
            for q in range(n_q)
        ]))

        # ---- prefilter: full scoring at P queries (the truth), the K = N control, the prefilter at each K
        s0 = time.perf_counter()
        full_run = engine.pairwise_scores(f"full_{n_p}", train_s, many)
        full_s = time.perf_counter() - s0
        full = score_matrix(store, full_run.run_id, many_ids, ids)
        scale = float(np.abs(full).max())

        s0 = time.perf_counter()
        everything = np.tile(np.arange(n_train), (n_c, 1))
        control_run = engine.pairwise_scores("control_k_eq_n", train_s, first(n_c), candidates=everything,
                                             prefilter={"method": "none: K = N control"})
        control_s = time.perf_counter() - s0
        control = score_matrix(store, control_run.run_id, many_ids[:n_c], ids)
        diff = float(np.abs(control - full[:n_c]).max())
        control_check = {
            "queries": n_c, "k": n_train, "subset": None if n_c == n_p else
            f"the first {n_c} of the {n_p} prefilter queries (--control-queries); each K is also timed on them",
            "max_abs_diff_vs_full": diff, "max_abs_full_score": scale,
            "max_abs_diff_over_max_abs_score": diff / scale if scale else None,
            "tolerance_fraction_of_max_abs_score": EXACT_TOLERANCE,
            "equal_to_full": bool(diff <= EXACT_TOLERANCE * scale),
        }
        del control, everything
        texts = [a + b for a, b in zip(tp, tc, strict=True)]
        query_texts = [a + b for a, b in zip(pq_, pc_, strict=True)]
        per_k: dict[int, dict] = {}
        for k in ks:
            per_k[k] = entry = {}
            for nq in sorted({n_p, n_c}, reverse=True):  # all P queries, and the control's subset if smaller
                s0 = time.perf_counter()
                cand = tfidf_candidates(texts, query_texts[:nq], k)
                pick_s = time.perf_counter() - s0
                crun = engine.pairwise_scores(f"prefilter_{k}", train_s, first(nq), candidates=cand,
                                              prefilter={"method": "tfidf", "analyzer": "char_wb"})
                total_s = time.perf_counter() - s0
                entry[f"prefilter_{nq}_queries_s"] = total_s
                entry[f"pick_{nq}_queries_s"] = pick_s
                if nq == n_p:
                    got = gather(store, crun.run_id, many_ids, ids)
                    entry["spearman_top_candidates"] = float(np.mean([
                        spearmanr(full[q, cand[q]], got[q, cand[q]])[0] for q in range(n_p)]))
                    entry["max_abs_diff_vs_full"] = float(np.nanmax(np.abs(got - full)))
                    entry["recall_top10"] = float(np.mean([
                        len(set(np.argsort(-full[q])[:10]) & set(cand[q])) / 10 for q in range(n_p)]))
                    entry["recall_top10_random_expected"] = k / n_train
                    entry["speedup_vs_full_measured"] = full_s / total_s
                if nq == n_c:
                    entry["speedup_vs_candidate_control"] = control_s / total_s
        sizes = [int(s) for s in args.memory_sizes.split(",") if s.strip()]
        s0 = time.perf_counter()
        rss = {n: memory_child(n, work, model_dir, args) for n in sizes}
        memory_s = time.perf_counter() - s0
    shutil.rmtree(model_dir.parent, ignore_errors=True)

    # ---- results
    result["timings"] = timings
    # training samples per second, each against all of the run's queries (not for fitting factors)
    every_sample = {**timings, label_full: full_s, label_control: control_s}
    result["samples_per_s"] = {k.removesuffix("_s"): n_train / v for k, v in every_sample.items() if k != "fit_factors_s"}
    t1, tq = timings["pairwise_1_query_s"], timings[label_q]
    result["pairwise_1_over_compute_floor"] = t1 / compute_floor
    result["pairwise_1_over_per_sample_floor"] = t1 / per_sample_floor
    result[f"pairwise_{n_q}_over_compute_floor"] = tq / compute_floor
    result[f"pairwise_{n_q}_over_per_sample_floor"] = tq / per_sample_floor
    result["lowrank_speedup"] = tq / timings[f"pairwise_{n_q}_queries_lowrank_s"]
    result["lowrank_spearman_all"] = rho_all
    result["lowrank_spearman_top"] = rho_top
    k0 = ks[0]
    result["prefilter"] = {
        "queries": n_p, "train_samples": n_train, "headline_k": k0, "method": "tfidf char_wb (2-4)-grams",
        label_full: full_s,
        label_control: control_s,
        "candidate_control": control_check,
        # the implementation's own gain (same pairs, other code); only at equal query counts
        "candidate_control_speedup_vs_full": full_s / control_s if n_c == n_p else None,
        "per_k": {str(k): v for k, v in per_k.items()},
    }
    result["prefilter_speedup_vs_candidate_control"] = per_k[k0]["speedup_vs_candidate_control"]
    result["prefilter_recall_top10"] = per_k[k0]["recall_top10"]
    result["prefilter_speedup_vs_full_measured"] = per_k[k0]["speedup_vs_full_measured"]
    for n_, v in rss.items():
        result[f"peak_rss_mb_{n_ // 1000}k" if n_ % 1000 == 0 else f"peak_rss_mb_{n_}"] = v
    result["wall_s"] = {"memory_children": memory_s, "total": time.perf_counter() - t_start}
    result["finished_at"] = now_iso()

    # ---- tables
    rows = [[k.removesuffix("_s"), v, n_train / v if k != "fit_factors_s" else None] for k, v in every_sample.items()]
    rows += [[f"prefilter_k{k}_{n_p}_queries (pick + candidates)", v[f"prefilter_{n_p}_queries_s"], None]
             for k, v in per_k.items()]
    print_table(
        f"GPT-2 4x256, {n_train} training samples, batch {args.batch_size} (2 CPU cores)",
        ["what", "seconds", "samples/s", "x compute floor", "x per-sample floor"],
        [[*r, r[1] / compute_floor, r[1] / per_sample_floor] for r in rows],
    )
    print(f"low rank {args.rank} at {n_q} queries: speed-up {result['lowrank_speedup']:.2f}x, "
          f"Spearman vs full {rho_all:.3f} (all), {rho_top:.3f} (top {top})")
    print(f"K = N control ({n_c} queries) vs full scores: max abs diff {diff:.3g} "
          f"({diff / scale if scale else float('nan'):.2g} of the largest |score|), "
          f"{'equal' if control_check['equal_to_full'] else 'NOT EQUAL'}"
          + (f"; full / control = {full_s / control_s:.2f}x (same pairs, other implementation)\n" if n_c == n_p else "\n"))
    print_table(
        f"candidate prefilter (TF-IDF) at {n_p} queries"
        + (f"; control on the first {n_c} queries, speed-up vs control on those" if n_c != n_p else ""),
        ["K", "seconds", "x faster than K=N control", "x faster than full", "recall of true top-10",
         "random recall", "Spearman on candidates"],
        [[k, v[f"prefilter_{n_p}_queries_s"], v["speedup_vs_candidate_control"], v["speedup_vs_full_measured"],
          v["recall_top10"], v["recall_top10_random_expected"], v["spearman_top_candidates"]]
         for k, v in per_k.items()],
    )
    for n_, v in rss.items():
        print(f"peak RSS scoring {n_:,} samples: {v:,.0f} MiB")
    write_result(args.out, result)
    print(f"wrote {args.out} (total {result['wall_s']['total']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
