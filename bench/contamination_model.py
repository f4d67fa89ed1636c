"""Contamination, model arms: membership and influence evidence of a GPT-2 trained on a corpus.

Protocol, per reported seed (``--seeds``), each in its own store under ``--work``:
1. The planted corpus (curation.datasets.contamination_corpus, seeded) plus MEMBERSHIP PROBES:
   benchmark items never planted otherwise, inserted as standalone documents (item text then a
   footer that differs per copy, so every copy is its own sample) 1x, 4x and 16x, ``--probes``
   items per repeat count, disjoint. The remaining never-planted items are NON-MEMBERS, split
   alternately into a calibration half and an evaluation half.
2. A byte-level BPE tokenizer trained on the corpus, and one small GPT-2 (GPT2Config, from
   scratch, seeded) trained on every token of it (documents cut into context-sized windows).
3. Membership arm: loss, zlib, Min-K% and Min-K%++ of each probe and non-member item under the
   model. Per repeat count and method: AUROC of the probes against the evaluation non-members,
   and TPR at 5% FPR with each method's threshold calibrated on the calibration non-members.
4. Influence arm: EK-FAC influence of every training document on log p(answer | question) of
   every benchmark item; each item's ``--top-k`` pushers written as ``influence`` evidence rows,
   hit when their robust z >= z_min. Per form (the planted forms and the probe repeat counts):
   item recall = share of the form's items whose planted document is among their hit rows;
   top1 = share whose top pusher is a planted document (a rank, no threshold). False hits: hit
   rows of never-planted items, hard-negative documents among hit rows, and hit rows of planted
   items on other documents. The n-gram method (lm-eval janitor rule, the pipeline's defaults)
   runs on the same corpus and is scored the same way (its planted document among its hits).
z_min is chosen on a selection seed (``--select-seed``, its own corpus and model, never
reported) as the smallest z at which no never-planted item has a hit; it is then fixed for every
reported seed. The same is done for the raw-score z (no pull normalisation) as an ablation.
Headline cells are mean and spread over the reported seeds. Each seed (the selection seed too)
trains its own model: measured 184-201 s of training and 149-160 s of influence per seed on 2
cores (``times`` in bench/results/contamination_model.json).

Writes bench/results/contamination_model.json; a re-run reuses the stores, models and scores in
--work.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from random import Random

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
from attribution.keys import short_digest  # noqa: E402
from curation.evaluation import mean_spread  # noqa: E402
from curation.pipelines.contamination.model_evidence import (  # noqa: E402
    DEFAULT_Z_MIN,
    influence_evidence,
    membership_evidence,
    train_corpus_model,
    z_threshold,
)
from curation.steps.records import generated_key, ingest_records  # noqa: E402
from curation.steps.tokenizer import bpe_tokenizer_for  # noqa: E402
from curation.steps.train import LMConfig  # noqa: E402

BENCHMARKS = ("humaneval", "gsm", "mmlu")
FORMS = ("verbatim", "question_only", "reformatted", "embedded", "paraphrased", "renumbered",
         "renamed_code")
REPEATS = (1, 4, 16)
METHODS = ("loss", "zlib", "min_k", "min_k_pp")
#: influence rows as the library writes them (pull-normalised), and the raw-score z as an ablation
VARIANTS = {"influence": True, "influence_raw": False}
Z_RULE = ("smallest z at which no never-planted item of the selection seed has a hit "
          "(hit: z >= z_min)")


@dataclass
class Truth:
    """What was planted where, in generator ids (``bench:id`` items, document ids)."""

    form: dict[str, str | None] = field(default_factory=dict)  # item -> form, probe_<r>x, or None
    docs: dict[str, set[str]] = field(default_factory=dict)  # item -> documents holding a copy
    calibration: list[str] = field(default_factory=list)  # non-members to calibrate on
    evaluation: list[str] = field(default_factory=list)  # non-members to evaluate on
    hard_negatives: set[str] = field(default_factory=set)


def build_corpus(seed: int, args: argparse.Namespace) -> tuple[dict[str, list[dict]], Truth]:
    """The planted corpus plus membership probes, as records per dataset, and the truth."""
    from curation.datasets.contamination_corpus import build_planted_corpus

    corpus = build_planted_corpus(seed, n_docs=args.n_docs, planted_fraction=args.planted_fraction,
                                  n_gsm=args.n_gsm, n_hard_negatives=args.n_hard_negatives)
    truth = Truth()
    items = {f"{b}:{it['id']}": it for b, its in corpus.benchmarks.items() for it in its}
    truth.form = {k: it["form"] for k, it in items.items()}
    for d in corpus.train:
        for key in d["items"]:
            truth.docs.setdefault(key, set()).add(d["id"])
        if "hard_negative" in d["forms"]:
            truth.hard_negatives.add(d["id"])
    twins: dict[tuple[str, str], list[str]] = {}  # a benchmark may hold an item twice (MMLU)
    for k, it in items.items():
        twins.setdefault((it["question"], it["answer"]), []).append(k)
    for group in (g for g in twins.values() if len(g) > 1):
        docs_of = set().union(*(truth.docs.get(k, set()) for k in group))
        for k in group:
            truth.docs[k] = set(docs_of)
        for k in group[1:]:
            truth.form[k] = truth.form[k] or "duplicate"  # not a probe, non-member or form
    never = [k for k, f in truth.form.items() if f is None]
    rng = Random(f"{seed}:probes")
    rng.shuffle(never)
    n = args.probes
    if len(never) < n * len(REPEATS) + 20:
        raise SystemExit(f"seed {seed}: {len(never)} never-planted items, need {n * len(REPEATS)} "
                         "probes + 20 non-members; lower --probes or --planted-fraction")
    docs = [{"id": d["id"], "text": d["text"], "source": d["source"]} for d in corpus.train]
    for i, r in enumerate(REPEATS):
        for key in never[i * n:(i + 1) * n]:
            truth.form[key] = f"probe_{r}x"
            it = items[key]
            for c in range(r):
                doc_id = f"probe{r}x-{key.replace(':', '-')}-{c}"
                footer = f"(practice set {rng.randint(100, 999)}, copy {c + 1} of {r})"
                text = f"{it['question']}\n{it['answer']}\n{footer}"
                docs.append({"id": doc_id, "text": text, "source": "probe"})
                truth.docs.setdefault(key, set()).add(doc_id)
    rest = never[n * len(REPEATS):]
    truth.calibration, truth.evaluation = rest[0::2], rest[1::2]
    fields = ("id", "question", "answer")
    records = {"train": docs, **{b: [{f: it[f] for f in fields} for it in corpus.benchmarks[b]]
                                 for b in BENCHMARKS}}
    return records, truth


def prepare(store: stores.Store, seed: int, args: argparse.Namespace) -> Truth:
    """Ingest the seed's corpus and benchmarks (skipped when the store holds this content)."""
    records, truth = build_corpus(seed, args)
    key = short_digest("contamination_model_bench", records)  # the content: any change regenerates
    qa = {"prompt_field": "question", "completion_field": "answer"}
    for name, rows in records.items():
        if generated_key(store, name) != key:
            ingest_records(store, {name: rows}, seed=seed, replace=True,
                           config={"generator": "contamination_model_bench", "key": key},
                           roles={"text_field": "text"} if name == "train" else qa)
    return truth


def key_maps(store: stores.Store) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Store ids -> generator ids: training sample id -> doc id; ``dataset:sample_id`` ->
    ``[bench:id]`` (identical items share one sample id)."""
    docs = store.read_samples("train", ["sample_id", "id"])
    items: dict[str, list[str]] = {}
    for b in BENCHMARKS:
        df = store.read_samples(b, ["sample_id", "id"])
        for s, i in zip(df["sample_id"], df["id"], strict=True):
            items.setdefault(f"{b}:{s}", []).append(f"{b}:{i}")
    return dict(zip(docs["sample_id"], docs["id"], strict=True)), items


def membership_arm(store: stores.Store, folder: Path, truth: Truth,
                   item_of: dict[str, list[str]]) -> dict:
    """AUROC and TPR at 5% FPR (threshold from calibration non-members) per repeat count, method."""
    from attribution.membership import auroc
    from filters.contamination.items import read_items

    wanted = {k for k, f in truth.form.items() if f and f.startswith("probe_")}
    wanted |= set(truth.calibration) | set(truth.evaluation)
    items = [it for b in BENCHMARKS for it in read_items(store, b)
             if wanted & set(item_of[it.key])]
    store_key = {g: it.key for it in items for g in item_of[it.key]}
    ev = membership_evidence(store, folder, items,
                             reference=[store_key[k] for k in truth.calibration])
    where = {k: i for i, k in enumerate(ev.keys)}
    out: dict = {"run_id": ev.run_id, "n_calibration": len(truth.calibration),
                 "n_evaluation": len(truth.evaluation)}
    evaluation = [where[store_key[k]] for k in truth.evaluation]
    for r in REPEATS:
        members = [where[store_key[k]] for k, f in truth.form.items() if f == f"probe_{r}x"]
        out[str(r)] = {}
        for m in METHODS:
            s, cal = ev.scores[m], ev.calibrations[m]
            out[str(r)][m] = {"auroc": auroc(s[members], s[evaluation]),
                              "tpr_at_5fpr": float(cal.is_member(s[members]).mean()),
                              "fpr_evaluation": float(cal.is_member(s[evaluation]).mean()),
                              "n_members": len(members)}
    return out


def item_rows(store: stores.Store, run_id: str, doc_of: dict[str, str],
              item_of: dict[str, list[str]]) -> dict[str, list]:
    """An evidence run's rows per item (generator ids): ``[(doc, score, hit)]``, best first."""
    df = store.sql("SELECT benchmark, item_id, sample_id, score, hit FROM contamination_matches "
                   "WHERE run_id = ? ORDER BY benchmark, item_id, score DESC, sample_id", [run_id])
    out: dict[str, list] = {}
    for b, i, s, score, hit in df.iter_rows():
        for key in item_of[f"{b}:{i}"]:
            out.setdefault(key, []).append((doc_of[s], float(score), bool(hit)))
    return out


def score_rows(rows: dict[str, list], truth: Truth, with_top1: bool) -> dict:
    """Item recall (and top1) per form, and the false hits, from one method's rows."""
    forms = [f for f in (*FORMS, *(f"probe_{r}x" for r in REPEATS)) if f in truth.form.values()]
    out: dict = {"forms": {}}
    for form in forms:
        keys = [k for k, f in truth.form.items() if f == form]
        found = [any(hit and d in truth.docs.get(k, ()) for d, _, hit in rows.get(k, []))
                 for k in keys]
        cell = {"n_items": len(keys), "item_recall": sum(found) / len(keys)}
        if with_top1:
            top = [bool(rows.get(k)) and rows[k][0][0] in truth.docs.get(k, ()) for k in keys]
            cell["top1"] = sum(top) / len(keys)
        out["forms"][form] = cell
    never = [k for k, f in truth.form.items() if f is None]
    hits = [(k, d) for k, rs in rows.items() for d, _, hit in rs if hit]
    out["false_hits"] = {
        "never_planted_items_hit": sum(any(h for _, _, h in rows.get(k, [])) for k in never),
        "never_planted_items": len(never),
        "hard_negative_rows": sum(d in truth.hard_negatives for _, d in hits),
        "other_document_rows": sum(truth.form.get(k) is not None and d not in truth.docs.get(k, ())
                                   for k, d in hits),
        "hit_rows": len(hits)}
    return out


def run_seed(seed: int, args: argparse.Namespace, z_min: float | None) -> dict:
    """One seed: corpus, tokenizer, model, both arms, n-gram reference (z_min None: selection)."""
    import torch

    from attribution.engine import EngineConfig
    from filters.contamination.check import check_contamination

    torch.set_num_threads(2)
    store = stores.open(args.work / f"seed{seed}")
    times: dict[str, float] = {}
    t = time.perf_counter()
    truth = prepare(store, seed, args)
    times["data_s"] = time.perf_counter() - t
    t = time.perf_counter()
    tok = bpe_tokenizer_for(store, "train", vocab_size=args.vocab)
    times["tokenizer_s"] = time.perf_counter() - t
    t = time.perf_counter()
    folder = train_corpus_model(store, "train", tok, lm_config(args), seed, progress=args.progress,
                                say=lambda text: print(text, flush=True))
    times["train_s"] = time.perf_counter() - t
    doc_of, item_of = key_maps(store)
    train_run = store.sql("SELECT config FROM runs WHERE kind = 'train' AND status = 'finished' "
                          "ORDER BY created_at DESC LIMIT 1")
    windows = store.dataset_info(folder.name.rsplit("-", 1)[0])["n_samples"]
    out: dict = {"seed": seed, "n_documents": len(doc_of), "n_windows": windows,
                 "model_folder": folder.name, "train_run_config": train_run["config"][0]}
    if z_min is not None:
        t = time.perf_counter()
        out["membership"] = membership_arm(store, folder, truth, item_of)
        times["membership_s"] = time.perf_counter() - t
    engine = EngineConfig(strategy=args.strategy, query_batch_size=args.query_batch_size,
                          covariance_max_examples=args.covariance_max_examples)
    for name, normalise in VARIANTS.items():  # the second reuses the engine's scores: rows only
        t = time.perf_counter()
        ev = influence_evidence(store, folder, "train", list(BENCHMARKS), top_k=args.top_k,
                                z_min=DEFAULT_Z_MIN if z_min is None else z_min[name],
                                normalise=normalise, engine=engine, progress=args.progress)
        times[f"{name}_s"] = time.perf_counter() - t
        rows = item_rows(store, ev.run_id, doc_of, item_of)
        if z_min is None:
            never_top = sorted((rs[0][1] for k, rs in rows.items() if truth.form.get(k) is None),
                               reverse=True)
            out[name] = {"z_min": z_threshold(never_top), "never_planted_top_z": never_top[:5]}
        else:
            out[name] = {**score_rows(rows, truth, with_top1=True), "run_id": ev.run_id,
                         "scores_run": ev.scores_run}
    if z_min is not None:
        t = time.perf_counter()
        check = check_contamination(store, "train", list(BENCHMARKS), methods=["ngram"])
        times["ngram_s"] = time.perf_counter() - t
        rows = item_rows(store, check.evidence[0].run_id, doc_of, item_of)
        out["ngram"] = score_rows(rows, truth, with_top1=False)
    out["times"] = times
    return out


def lm_config(args: argparse.Namespace) -> LMConfig:
    """The GPT-2's shape and schedule from the options."""
    return LMConfig(n_layer=args.n_layer, n_embd=args.n_embd, n_head=args.n_head, steps=args.steps,
                    batch_size=args.batch_size, lr=args.lr, max_length=args.max_length)


def spread(per_seed: dict[int, dict], *path: str) -> dict:
    """mean_spread of the value at ``path`` over the seeds, with the per-seed values."""
    values = {}
    for seed, res in per_seed.items():
        v = res
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        if v is not None:
            values[str(seed)] = float(v)
    return {**mean_spread(values.values()), "per_seed": values}


def ms(d: dict) -> str:
    """``mean ± std`` (or the mean alone for one seed)."""
    if not d or d.get("n", 0) == 0:
        return "-"
    return f"{d['mean']:.3f} ± {d['std']:.3f}" if d["n"] > 1 else f"{d['mean']:.3f}"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2", help="reported seeds")
    p.add_argument("--select-seed", type=int, default=100,
                   help="seed z_min is chosen on (never reported)")
    p.add_argument("--n-docs", type=int, default=150, help="carrier documents per corpus")
    p.add_argument("--planted-fraction", type=float, default=0.3,
                   help="share of each benchmark's items planted")
    p.add_argument("--n-gsm", type=int, default=200, help="GSM-style items (capped by templates)")
    p.add_argument("--n-hard-negatives", type=int, default=50)
    p.add_argument("--probes", type=int, default=40,
                   help="membership probe items per repeat count (1x, 4x, 16x)")
    p.add_argument("--vocab", type=int, default=4096, help="BPE vocabulary size")
    p.add_argument("--n-layer", type=int, default=2)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--steps", type=int, default=1000,
                   help="training steps (about 3-6 min on 2 cores)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--max-length", type=int, default=128,
                   help="model context = training window, in tokens")
    p.add_argument("--strategy", default="ekfac")
    p.add_argument("--top-k", type=int, default=5, help="influence rows per item")
    p.add_argument("--query-batch-size", type=int, default=1024,
                   help="items per influence query batch (all in one: one pass over the windows)")
    p.add_argument("--covariance-max-examples", type=int, default=1024,
                   help="windows the EK-FAC factors are fitted on")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--work", type=Path,
                   default=Path(__file__).resolve().parent / "work" / "contamination_model")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "contamination_model.json")
    add_provenance_args(p)
    args = p.parse_args(argv)
    git = require_clean_tree(args.allow_dirty)
    import torch

    torch.set_num_threads(2)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if args.select_seed in seeds:
        raise SystemExit(f"--select-seed {args.select_seed} is also a reported seed: "
                         "choose another")
    t0 = time.perf_counter()
    print(f"selection seed {args.select_seed}: choosing z_min", flush=True)
    selection = run_seed(args.select_seed, args, None)
    z_min = {name: selection[name]["z_min"] for name in VARIANTS}
    for name in VARIANTS:
        top = ", ".join(f"{z:.2f}" for z in selection[name]["never_planted_top_z"])
        print(f"  {name}: z_min = {z_min[name]:.3f} ({Z_RULE}); top never-planted z: {top}",
              flush=True)
    per_seed: dict[int, dict] = {}
    for seed in seeds:
        t = time.perf_counter()
        per_seed[seed] = run_seed(seed, args, z_min)
        steps = ", ".join(f"{k} {v:.0f}" for k, v in per_seed[seed]["times"].items())
        print(f"seed {seed}: {time.perf_counter() - t:.0f} s ({steps})", flush=True)

    cells = ("auroc", "tpr_at_5fpr", "fpr_evaluation")
    membership = {str(r): {m: {k: spread(per_seed, "membership", str(r), m, k) for k in cells}
                           for m in METHODS} for r in REPEATS}
    forms = list(next(iter(per_seed.values()))["influence"]["forms"])

    def arm(name: str, keys: tuple[str, ...]) -> dict:
        hits = next(iter(per_seed.values()))[name]["false_hits"]
        return {"forms": {f: {k: spread(per_seed, name, "forms", f, k) for k in keys}
                          for f in forms},
                "false_hits": {k: spread(per_seed, name, "false_hits", k) for k in hits}}

    arms = {name: {"z_min": z_min[name], "z_min_rule": Z_RULE, "select_seed": args.select_seed,
                   "selection_never_planted_top_z": selection[name]["never_planted_top_z"],
                   **arm(name, ("item_recall", "top1", "n_items"))} for name in VARIANTS}
    influence, ngram = arms["influence"], arm("ngram", ("item_recall", "n_items"))
    verdicts = {f: influence["forms"][f]["item_recall"]["mean"]
                > ngram["forms"][f]["item_recall"]["mean"] for f in forms}
    influence["beats_ngram"] = verdicts
    times = {k: spread(per_seed, "times", k) for k in next(iter(per_seed.values()))["times"]}
    settings = {"model": asdict(lm_config(args)),
                "tokenizer": {"kind": "byte-level BPE", "vocab": args.vocab},
                "engine": {"strategy": args.strategy, "query_batch_size": args.query_batch_size,
                           "covariance_max_examples": args.covariance_max_examples},
                "top_k": args.top_k, "repeats": list(REPEATS), "probes_per_repeat": args.probes}
    result = {"benchmark": "contamination_model", "created_at": now_iso(),
              "machine": machine_info() | {"git": git},
              "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "seeds": seeds, "settings": settings, "membership": membership, **arms,
              "ngram": ngram, "times": times,
              "selection": {k: selection[k]
                            for k in ("times", "n_documents", "n_windows", "train_run_config")},
              "per_seed": {str(s): r for s, r in per_seed.items()},
              "seconds": time.perf_counter() - t0}

    print_table(f"membership (probes vs evaluation non-members; seeds {seeds})",
                ["repeats / method", "AUROC", "TPR at 5% FPR"],
                [[f"{r}x {m}", ms(membership[str(r)][m]["auroc"]),
                  ms(membership[str(r)][m]["tpr_at_5fpr"])] for r in REPEATS for m in METHODS])
    raw = arms["influence_raw"]
    cell = lambda a, f, k: ms(a["forms"][f][k])  # noqa: E731
    print_table(f"item recall per form (z_min {z_min['influence']:.2f}, raw "
                f"{z_min['influence_raw']:.2f}, from seed {args.select_seed}; seeds {seeds})",
                ["form", "items", "influence", "influence top-1", "raw-z influence", "raw top-1",
                 "n-gram"],
                [[f, cell(influence, f, "n_items"), cell(influence, f, "item_recall"),
                  cell(influence, f, "top1"), cell(raw, f, "item_recall"), cell(raw, f, "top1"),
                  cell(ngram, f, "item_recall")] for f in forms])
    print_table("false hits (per seed)", ["", "influence", "raw-z influence", "n-gram"],
                [[k, ms(influence["false_hits"][k]), ms(raw["false_hits"][k]),
                  ms(ngram["false_hits"][k])] for k in influence["false_hits"]])
    print_table("seconds per seed", ["step", "mean ± std"], [[k, ms(v)] for k, v in times.items()])
    for f, better in verdicts.items():
        if not better:
            print(f"influence does NOT beat n-gram on {f}: item recall "
                  f"{cell(influence, f, 'item_recall')} vs {cell(ngram, f, 'item_recall')}")
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
