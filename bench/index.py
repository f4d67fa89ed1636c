"""Facts recall per strategy and the gradient index, on a small GPT-2 trained on fictitious facts.

One model per seed (``--seeds``, default 0,1,2): a GPT-2 of :data:`curation.datasets.facts.FACTS_LM`'s
shape (2 layers x 128, BPE 512) trained from scratch for ``--steps`` steps on a facts corpus
(``bench/_index_facts.py`` says how it is split): every person's five bio sentences, plus the QA
records of ``--qa-people`` people (the question format). Queries are QA questions about single
facts of people whose QA was never trained; each query's *source document* is that person's bio
sentence of the same attribute (the only training document stating the fact).

Part 1, ``facts_recall`` (every seed; bergson's recall test): each method ranks all training
documents for the first ``--facts-queries`` reported queries; recall@1, recall@10 and MRR of the
source document. Methods: the engine's pairwise scores (kronfluence / the engine's CG) with
``identity``, ``diagonal``, ``kfac``, ``ekfac`` and ``ekfac_cg`` (the last on the first
``--cg-queries`` of them only, its solve being far dearer; ``ekfac_on_cg_queries`` is EK-FAC on
the same subset for a paired comparison); TF-IDF over the documents' text with the query's
question + answer as text (word unigrams+bigrams ``tfidf_word`` and character 2-4-grams
``tfidf_char``: :func:`attribution.prefilter.tfidf_candidates`, no model); ``random`` scores
(seeded; expected recall@10 = 10 / N). The headline per method is the mean over seeds
(``recall_at_10``, ``mrr``, ``recall_at_1``), with the sd and every seed under ``spread`` and
``per_seed``; ``qa_accuracy`` says whether each model answers the queries (greedy exact match).

Part 2, ``index`` (the first seed's model, same run): ``--index-queries`` (1,000) reported
queries. The exact reference: EK-FAC pairwise scores of them against every training document
through the engine (kronfluence; ``--query-batch-size`` queries a pass; scores written to the
store as always), timed: ``full_scoring_s``. The gradient index (:mod:`attribution.gradient_index`,
per-module projection, flat FAISS inner-product search, exact re-scoring of the top candidates
per query, fixed before anything is measured): its projection (kind and dimension per module) and
the number of candidates re-scored per query are chosen on the validation queries (selection
people, another projection seed, ``--select-seed``): of the ``--projections`` x
``--candidates-grid`` (0, 20, 50, 100; 0 = the projected inner products' own top-10, no
re-scoring) settings whose validation recall@10 reaches ``--select-target``, the one whose
validation search was fastest (else the best recall); ``--candidates N`` fixes the number. The search computes each query's gradient once, projects it
and re-uses it for the re-scoring, whose training gradients are batched by length with the
padding cut (``pad_per_batch``, as the engine's full scoring does). Then,
measured on the reported queries, once each:
``build_s`` (a fresh build with the chosen projection and the reported seed as its seed; the EK-FAC
factors are already fitted, as full scoring needs them too: ``fit_factors_s`` is recorded
apart), ``open_s`` (opening the index: factors, preconditioners, FAISS file), the search of all
queries at once with re-scoring (``search_s``, split into project / search / rescore),
``recall_at_10`` = mean over queries of |index top-10 & exact top-10| / 10,
``speedup_1000_queries`` = full_scoring_s / (open_s + search_s) (build excluded; the build
is a one-off per training set) and ``speedup_1000_queries_with_build`` = full_scoring_s /
(build_s + open_s + search_s). ``query_ms`` is the amortised time per query in that batch
((open_s + search_s) / queries); ``single_query_ms`` (mean, p50, p95) times
``--latency-queries`` one-query searches on the open index (each re-scores its own candidates,
so it pays their gradients alone). ``approx_recall_at_10`` is the projected inner products' own
top-10 (no re-scoring), for reference. The engine scores ``--query-batch-size`` (64) queries per
pass over the documents, so full scoring of 1,000 queries makes 16 passes; ``full_scoring_one_pass_s``
(``--one-pass-reference``, on by default) times the same scores with all queries in one batch
(one pass, ~1 GB of preconditioned query gradients here), and ``speedup_vs_one_pass_scoring``
compares the index with that stronger reference. ``source_doc_recall_at_10`` cross-checks the
two parts: the share of the 1,000 queries whose source document is in the index's top-10 and
in exact EK-FAC's.

Wall and CPU seconds of every part go under ``seconds``. Writes bench/results/index.json.
Quick check (a few minutes): ``.venv/bin/python bench/index.py --people 40 --qa-people 10
--select-people 6 --index-queries 100 --facts-queries 30 --cg-queries 4 --cg-examples 50 --steps 40
--seeds 0,1 --projections rademacher:8,kronecker:64 --latency-queries 3 --out /tmp/index.json --allow-dirty``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (  # noqa: E402
    RESULTS_DIR,
    WORK_DIR,
    add_seed_args,
    fresh_dir,
    machine_info,
    mean_sd,
    now_iso,
    print_table,
    remove_work,
    reported_seeds,
    require_clean_tree,
    write_result,
)
from _index_facts import (  # noqa: E402
    gold_ranks,
    make_corpus,
    ranks_from_order,
    recall_metrics,
    same_person_top1,
    samples,
    timed,
    top_k,
    topk_overlap,
    train_model,
)

import stores  # noqa: E402
from attribution.engine import EngineConfig, InfluenceEngine, score_matrix  # noqa: E402
from attribution.gradient_index import GradientIndex, ProjectionSpec, build_index  # noqa: E402
from attribution.prefilter import tfidf_candidates  # noqa: E402
from attribution.tasks import CausalLMTask, linearize_conv1d  # noqa: E402
from curation.actions.unlearning.memorisation import qa_accuracy  # noqa: E402

ENGINE_METHODS = ("identity", "diagonal", "kfac", "ekfac")  # ekfac_cg runs on its own subset
METHODS = (*ENGINE_METHODS, "ekfac_cg", "ekfac_on_cg_queries", "tfidf_word", "tfidf_char", "random")
K = 10


def engine_config(args: argparse.Namespace, strategy: str, n_train: int) -> EngineConfig:
    return EngineConfig(strategy=strategy, batch_size=args.batch_size, query_batch_size=args.query_batch_size,
                        shard_size=n_train, cg_iterations=args.cg_iterations, cg_max_examples=args.cg_examples)


def engine_scores(engine: InfluenceEngine, name: str, train_s, q_s) -> tuple[np.ndarray, dict]:
    """(queries x N) pairwise scores through the engine, with fit and scoring seconds (wall, CPU)."""
    _, fit_s, fit_cpu = timed(engine.fit_factors, train_s)
    run, s, c = timed(engine.pairwise_scores, name, train_s, q_s)
    scores = score_matrix(engine.store, run.run_id, q_s.ids, train_s.ids)
    info = {"fit_factors_s": fit_s, "fit_factors_cpu_s": fit_cpu, "score_s": s, "score_cpu_s": c, "queries": len(q_s)}
    cg = engine.store.get_run(run.run_id)["config"].get("conjugate_gradient")
    if cg is not None:  # residuals of the damped Gauss-Newton system before / after CG
        info["conjugate_gradient"] = cg
    return scores, info


def facts_part(corpus, model, tok, cfg, store, args) -> tuple[dict, dict]:
    """Recall of the source document per method on this seed's model: (metrics, seconds)."""
    fq = corpus.queries[: args.facts_queries]
    gold = corpus.gold(fq)
    train_s, q_s = samples(corpus.train, tok, cfg.max_length), samples(fq, tok, cfg.max_length)
    task = CausalLMTask(model)
    out, secs = {}, {}
    ekfac_scores = None
    for strategy in ENGINE_METHODS:
        engine = InfluenceEngine(store, model, task, engine_config(args, strategy, len(train_s)))
        scores, secs[strategy] = engine_scores(engine, f"facts-{strategy}", train_s, q_s)
        out[strategy] = recall_metrics(gold_ranks(scores, gold), same_person_top1(scores.argmax(1), fq, corpus.train))
        if strategy == "ekfac":
            ekfac_scores = scores
    cq = fq[: args.cg_queries]
    if cq:
        engine = InfluenceEngine(store, model, task, engine_config(args, "ekfac_cg", len(train_s)))
        scores, secs["ekfac_cg"] = engine_scores(engine, "facts-ekfac_cg", train_s, samples(cq, tok, cfg.max_length))
        out["ekfac_cg"] = recall_metrics(gold_ranks(scores, gold[: len(cq)]),
                                         same_person_top1(scores.argmax(1), cq, corpus.train))
        sub = ekfac_scores[: len(cq)]
        out["ekfac_on_cg_queries"] = recall_metrics(gold_ranks(sub, gold[: len(cq)]),
                                                    same_person_top1(sub.argmax(1), cq, corpus.train))
    docs = [r.text for r in corpus.train]
    texts = [q.text for q in fq]
    for name, analyzer, ngrams in (("tfidf_word", "word", (1, 2)), ("tfidf_char", "char_wb", (2, 4))):
        order, s, c = timed(tfidf_candidates, docs, texts, len(docs), analyzer=analyzer, ngram_range=ngrams)
        secs[name] = {"score_s": s, "score_cpu_s": c, "queries": len(fq)}
        out[name] = recall_metrics(ranks_from_order(order, gold), same_person_top1(order[:, 0], fq, corpus.train))
    rand = np.random.default_rng(corpus.seed).random((len(fq), len(docs)))
    out["random"] = recall_metrics(gold_ranks(rand, gold), same_person_top1(rand.argmax(1), fq, corpus.train))
    out["random"]["recall_at_10_expected"] = K / len(docs)
    return out, secs


def index_part(corpus, model, tok, cfg, store, args, seed: int, fitted_s: float | None = None) -> dict:
    """The gradient index against exact EK-FAC on ``--index-queries`` queries (same model, one run)."""
    train_s = samples(corpus.train, tok, cfg.max_length)
    q_recs = corpus.queries[: args.index_queries]
    q_s, v_s = samples(q_recs, tok, cfg.max_length), samples(corpus.select, tok, cfg.max_length)
    engine = InfluenceEngine(store, model, CausalLMTask(model), engine_config(args, "ekfac", len(train_s)))
    (_, reused), fit_s, fit_cpu = timed(engine.fit_factors, train_s)
    seconds: dict = {"fit_factors_s": fitted_s if reused and fitted_s is not None else fit_s,
                     "fit_factors_cpu_s": None if reused else fit_cpu, "factors_reused": reused,
                     "fit_factors_note": "fitted by the recall part's ekfac engine (its fit seconds)" if reused else
                                         "fitted here"}

    # ---- exact reference: full EK-FAC pairwise scoring of the reported queries (measured)
    run, full_s, full_cpu = timed(engine.pairwise_scores, "index-full", train_s, q_s)
    exact = score_matrix(store, run.run_id, q_s.ids, train_s.ids)
    exact_top, gold = top_k(exact, K), corpus.gold(q_recs)
    exact_gold = float(np.mean(gold_ranks(exact, gold) <= K))
    del exact
    one_pass = None
    if args.one_pass_reference:  # the same scores with every query in one batch: one pass over the documents
        big = InfluenceEngine(store, model, CausalLMTask(model),
                              replace(engine_config(args, "ekfac", len(train_s)), query_batch_size=len(q_s)))
        run1, one_pass, one_pass_cpu = timed(big.pairwise_scores, "index-full-one-pass", train_s, q_s)
        same = topk_overlap(top_k(score_matrix(store, run1.run_id, q_s.ids, train_s.ids), K), exact_top)
        seconds.update({"full_scoring_one_pass_s": one_pass, "full_scoring_one_pass_cpu_s": one_pass_cpu,
                        "one_pass_top10_agreement": same})  # 1.0: the same scores, batched otherwise

    # ---- choose the projection dimension on the validation queries (another projection seed)
    run, val_s, _ = timed(engine.pairwise_scores, "index-select", train_s, v_s)
    val_top = top_k(score_matrix(store, run.run_id, v_s.ids, train_s.ids), K)
    grid = {}
    for kind, dim in args.projections:
        spec = ProjectionSpec(dim=dim, seed=args.select_seed, kind=kind)
        built, b_s, _ = timed(build_index, engine, train_s, spec)
        gi = GradientIndex.open(engine, built.run_id, train_s)
        approx = topk_overlap(_positions(gi.search(v_s, K, rescore=False), len(v_s)), val_top)
        for c in args.candidates_grid:  # 0: the projected inner products' own top-10, no re-scoring
            res, q_time, _ = timed(gi.search, v_s, K, rescore=c > 0, candidates=c or None, train=train_s)
            grid[(kind, dim, c)] = {"recall_at_10": topk_overlap(_positions(res, len(v_s)), val_top),
                                    "approx_recall_at_10": approx, "vector_dim": built.dim, "build_s": b_s,
                                    "search_s": q_time}
    options = list(grid)
    ok = [g for g in options if grid[g]["recall_at_10"] >= args.select_target]
    chosen = (min(ok, key=lambda g: grid[g]["search_s"]) if ok
              else max(options, key=lambda g: (grid[g]["recall_at_10"], -grid[g]["search_s"])))
    selection = {"queries": len(v_s), "projection_seed": args.select_seed, "target": args.select_target,
                 "rule": "of the --projections x --candidates-grid settings whose validation recall@10 (re-scored) "
                         "reaches --select-target, the fastest validation search; if none does, the highest recall",
                 "exact_scoring_s": val_s, "grid": {f"{k}:{d}:{c}": v for (k, d, c), v in grid.items()},
                 "chosen": f"{chosen[0]}:{chosen[1]}", "chosen_candidates": chosen[2], "target_reached": bool(ok)}

    # ---- the reported index: fresh build, open, one search of every query, then one-query latency
    spec = ProjectionSpec(dim=chosen[1], seed=seed, kind=chosen[0])
    built, build_s, build_cpu = timed(build_index, engine, train_s, spec)
    if built.shards_computed == 0:
        raise RuntimeError("the reported build was found finished in the store: its time would not be a build")
    gi, open_s, open_cpu = timed(GradientIndex.open, engine, built.run_id, train_s)
    res, search_s, search_cpu = timed(gi.search, q_s, K, rescore=chosen[2] > 0, candidates=chosen[2] or None,
                                      train=train_s)
    found = _positions(res, len(q_s))
    recall = topk_overlap(found, exact_top)
    approx = gi.search(q_s, K, rescore=False)
    single = []
    for i in range(min(args.latency_queries, len(q_s))):
        t0 = time.perf_counter()
        gi.search(q_s.subset([i]), K, rescore=chosen[2] > 0, candidates=chosen[2] or None, train=train_s)
        single.append((time.perf_counter() - t0) * 1000)
    query_total = open_s + search_s
    seconds.update({"full_scoring_s": full_s, "full_scoring_cpu_s": full_cpu, "build_s": build_s,
                    "build_cpu_s": build_cpu, "open_s": open_s, "open_cpu_s": open_cpu, "search_s": search_s,
                    "search_cpu_s": search_cpu, "search_parts_s": res.seconds})
    return {
        "recall_at_10": recall,
        "speedup_1000_queries": full_s / query_total,
        "speedup_1000_queries_with_build": full_s / (build_s + query_total),
        "build_s": build_s,
        "query_ms": 1000 * query_total / len(q_s),
        "query_ms_search_only": 1000 * search_s / len(q_s),
        "single_query_ms": ({"mean": float(np.mean(single)), "p50": float(np.percentile(single, 50)),
                             "p95": float(np.percentile(single, 95)), "n": len(single)} if single else None),
        "approx_recall_at_10": topk_overlap(_positions(approx, len(q_s)), exact_top),
        "full_scoring_s": full_s,
        "full_scoring_query_batch": args.query_batch_size,
        "full_scoring_one_pass_s": one_pass,
        "speedup_vs_one_pass_scoring": one_pass / query_total if one_pass else None,
        "source_doc_recall_at_10": {"index": float(np.mean((found == gold[:, None]).any(1))),
                                    "exact_ekfac": exact_gold},
        "queries": len(q_s), "train_docs": len(train_s), "seed": seed, "projection": chosen[0],
        "dim_per_module": chosen[1], "vector_dim": built.dim, "candidates": res.n_candidates,
        "rescored": bool(chosen[2] > 0),
        "search": "flat (exact inner product, FAISS)", "speedup_includes": "open + search (project, FAISS, "
        "exact re-scoring); the _with_build variant adds the build; factor fitting is in neither (both need it)",
        "seconds": seconds, "selection": selection,
    }


def _positions(result, n_queries: int) -> np.ndarray:
    """(queries x k) training positions of a search result, rank order, queries in the order given."""
    return result.table["position"].to_numpy().reshape(n_queries, -1)  # rows: query by query, rank order


def summarise(per_seed: dict[int, dict]) -> dict:
    """Per method: mean over seeds (headline), sd / min / max, and each seed's figures."""
    out = {}
    for method in METHODS:
        rows = {s: m[method] for s, m in per_seed.items() if method in m}
        if not rows:
            continue
        keys = ("recall_at_1", "recall_at_10", "mrr", "top1_same_person")
        out[method] = {k: float(np.mean([r[k] for r in rows.values()])) for k in keys}
        out[method]["queries_per_seed"] = next(iter(rows.values()))["queries"]
        out[method]["spread"] = {k: mean_sd([r[k] for r in rows.values()]) for k in ("recall_at_10", "mrr")}
        out[method]["per_seed"] = {str(s): r for s, r in rows.items()}
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--people", type=int, default=360)
    p.add_argument("--qa-people", type=int, default=80, help="people whose QA records are trained too")
    p.add_argument("--select-people", type=int, default=50, help="people whose questions choose the index dim")
    p.add_argument("--steps", type=int, default=1600, help="training steps per model (batch 32; FACTS_LM's 1,600)")
    p.add_argument("--facts-queries", type=int, default=200, help="queries per seed of the recall test")
    p.add_argument("--cg-queries", type=int, default=16, help="of those, the ones ekfac_cg scores (one CG block)")
    p.add_argument("--cg-iterations", type=int, default=5)
    p.add_argument("--cg-examples", type=int, default=200, help="training samples of the CG Gauss-Newton products")
    p.add_argument("--index-queries", type=int, default=1000)
    p.add_argument("--projections", default="rademacher:32,rademacher:128,rademacher:512,kronecker:1024,kronecker:4096",
                   help="kind:dim per module of the index projections tried on the validation queries")
    p.add_argument("--select-target", type=float, default=0.95)
    p.add_argument("--candidates", type=int, default=None,
                   help="index candidates re-scored exactly per query (default: chosen from --candidates-grid)")
    p.add_argument("--candidates-grid", default="0,20,50,100",
                   help="candidates per query re-scored, tried at selection with every projection (0: no re-scoring)")
    p.add_argument("--latency-queries", type=int, default=20, help="one-query searches timed for single_query_ms")
    p.add_argument("--one-pass-reference", action=argparse.BooleanOptionalAction, default=True,
                   help="also time full scoring with every query in one batch (one pass over the documents)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--query-batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work-dir", type=Path, default=WORK_DIR / "index")
    p.add_argument("--keep", action="store_true", help="keep the work stores")
    add_seed_args(p, RESULTS_DIR / "index.json", "projection seed of the index builds that choose the dim")
    args = p.parse_args(argv)
    seeds = reported_seeds(args)
    try:
        args.projections = [(g.split(":")[0], int(g.split(":")[1])) for g in args.projections.split(",") if g.strip()]
        for kind, dim in args.projections:
            ProjectionSpec(dim=dim, kind=kind)  # raises for an unknown kind or an unusable dim
    except (ValueError, IndexError) as exc:
        p.error(f"--projections: expected kind:dim,... ({exc})")
    if not seeds or not args.projections:
        p.error("give at least one seed and one projection")
    n_query_facts = 5 * (args.people - args.qa_people - args.select_people)
    if n_query_facts < max(args.index_queries, args.facts_queries):
        p.error(f"{n_query_facts} reported query facts < --index-queries / --facts-queries: add people")
    try:
        args.candidates_grid = ([args.candidates] if args.candidates is not None else
                                sorted({int(c) for c in args.candidates_grid.split(",") if c.strip()}))
    except ValueError as exc:
        p.error(f"--candidates-grid: expected integers, e.g. 20,50,100 ({exc})")
    if args.cg_queries > args.facts_queries or not args.candidates_grid or any(0 < c < K for c in args.candidates_grid):
        p.error("--cg-queries must be at most --facts-queries, candidates per query 0 (no re-scoring) or at least 10")
    if args.steps < 40:
        p.error("--steps must be at least 40 (train_lm's one-cycle schedule fails below ~20 steps)")
    require_clean_tree(args.allow_dirty)
    t_start, c_start = time.perf_counter(), time.process_time()
    torch.set_num_threads(args.threads)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    work = fresh_dir(args.work_dir)
    result: dict = {"benchmark": "index", "created_at": now_iso(), "machine": machine_info(),
                    "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    per_seed, details, models, index = {}, {}, {}, None
    seconds: dict = {"per_seed": {}}
    for n, seed in enumerate(seeds):
        t0, c0 = time.perf_counter(), time.process_time()
        corpus = make_corpus(seed, args.people, args.qa_people, args.select_people)
        model, tok, cfg, info = train_model(corpus, args.steps, args.threads)
        fq = corpus.queries[: args.facts_queries]
        trained_qa = [r for r in corpus.train if r.kind == "qa"][: args.facts_queries]
        info["qa_accuracy"] = {
            "facts_queries": float(qa_accuracy(model, tok, [r.prompt for r in fq], [r.answer for r in fq]).mean()),
            "trained_questions": float(qa_accuracy(model, tok, [r.prompt for r in trained_qa],
                                                   [r.answer for r in trained_qa]).mean()) if trained_qa else None}
        info["corpus"] = corpus.summary()
        models[str(seed)] = info
        linearize_conv1d(model)
        store = stores.open(work / f"store-{seed}")
        t1, c1 = time.perf_counter(), time.process_time()
        per_seed[seed], details[str(seed)] = facts_part(corpus, model, tok, cfg, store, args)
        t2, c2 = time.perf_counter(), time.process_time()
        seconds["per_seed"][str(seed)] = {"train_and_eval_wall_s": t1 - t0, "train_and_eval_cpu_s": c1 - c0,
                                          "facts_wall_s": t2 - t1, "facts_cpu_s": c2 - c1}
        if n == 0:
            index = index_part(corpus, model, tok, cfg, store, args, seed,
                               details[str(seed)]["ekfac"]["fit_factors_s"])
            seconds["index_wall_s"], seconds["index_cpu_s"] = time.perf_counter() - t2, time.process_time() - c2
        _print_seed(seed, info, per_seed[seed])
        del store
        if not args.keep:
            shutil.rmtree(work / f"store-{seed}", ignore_errors=True)

    result["corpus"] = {**models[str(seeds[0])]["corpus"], "gold": "the query person's bio sentence of the "
                        "queried attribute (the only training document stating the fact)",
                        "queries": "QA questions (prompt) + answers (completion) of people whose QA was never "
                                   "trained; the measurement is the answer's loss"}
    result["models"] = models
    result["facts_recall"] = summarise(per_seed)
    result["facts_recall_seconds"] = details
    result["index"] = index
    seconds.update({"total_wall_s": time.perf_counter() - t_start, "total_cpu_s": time.process_time() - c_start})
    result["seconds"] = seconds
    result["finished_at"] = now_iso()
    _print_summary(result)
    remove_work(work, args.keep)
    write_result(args.out, result)
    print(f"wrote {args.out} (total {seconds['total_wall_s']:.0f} s)")
    return result


def _print_seed(seed: int, info: dict, metrics: dict) -> None:
    qa = info["qa_accuracy"]
    print(f"seed {seed}: trained {info['train_s']:.0f} s, final loss {info['final_loss']:.3f}; QA accuracy "
          f"{qa['facts_queries']:.2f} on the queries, {qa['trained_questions']} on trained questions")
    print_table(f"seed {seed}: recall of the source document", ["method", "recall@1", "recall@10", "MRR",
                "median rank", "top-1 same person", "queries"],
                [[m, v["recall_at_1"], v["recall_at_10"], v["mrr"], v["median_rank"], v.get("top1_same_person"),
                  v["queries"]] for m, v in metrics.items()])


def _print_summary(result: dict) -> None:
    fr = result["facts_recall"]
    print_table("facts recall, mean over seeds (sd)", ["method", "recall@1", "recall@10", "sd", "MRR", "sd",
                "top-1 same person"],
                [[m, v["recall_at_1"], v["recall_at_10"], v["spread"]["recall_at_10"]["sd"], v["mrr"],
                  v["spread"]["mrr"]["sd"], v["top1_same_person"]] for m, v in fr.items()])
    ix = result["index"]
    sel = ix["selection"]
    print_table(f"index projection selection on {sel['queries']} validation queries (chosen {sel['chosen']} per module)",
                ["kind:dim per module", "vector dim", "recall@10", "approx recall@10", "build s", "search s"],
                [[d, v["vector_dim"], v["recall_at_10"], v["approx_recall_at_10"], v["build_s"], v["search_s"]]
                 for d, v in sel["grid"].items()])
    s = ix["seconds"]
    print_table(f"gradient index vs full EK-FAC, {ix['queries']} queries x {ix['train_docs']} documents",
                ["what", "value"],
                [["full scoring s", ix["full_scoring_s"]], ["build s", ix["build_s"]], ["open s", s["open_s"]],
                 ["search s (1,000 at once)", s["search_s"]], ["query ms (amortised)", ix["query_ms"]],
                 ["single query ms p50", (ix["single_query_ms"] or {}).get("p50")],
                 ["single query ms p95", (ix["single_query_ms"] or {}).get("p95")],
                 ["full scoring s, all queries in one batch", ix["full_scoring_one_pass_s"]],
                 ["recall@10 of exact top-10", ix["recall_at_10"]],
                 ["approx recall@10 (no re-scoring)", ix["approx_recall_at_10"]],
                 ["speed-up (open + search)", ix["speedup_1000_queries"]],
                 ["speed-up incl. build", ix["speedup_1000_queries_with_build"]],
                 ["speed-up vs one-batch full scoring", ix["speedup_vs_one_pass_scoring"]],
                 ["source doc in top-10: index", ix["source_doc_recall_at_10"]["index"]],
                 ["source doc in top-10: exact EK-FAC", ix["source_doc_recall_at_10"]["exact_ekfac"]]])


if __name__ == "__main__":
    main()
