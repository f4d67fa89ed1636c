"""MinHash libraries for the near-duplicate evidence: datasketch against rensa on the same text.

Sections (every figure is measured in this run; nothing is extrapolated):

1. ``signatures``: 112-permutation signatures (b=14 x r=8) of ``--docs`` generated documents of
   ~200 words, as word 5-gram shingles. datasketch: ``MinHash.update_batch`` per document and
   ``MinHash.bulk`` (bytes, its default SHA-1 hash); rensa: ``RMinHash`` / ``CMinHash``
   ``from_token_sets`` (objects), ``RMinHash.digest_matrix_from_token_sets`` (one matrix) and the
   pre-hashed flat path near_dup uses. rensa best of ``--repeats``, datasketch one run (its
   ``bytes_encoding_s`` is added: it hashes bytes, rensa takes the strings); wall and CPU s.
2. ``lsh``: insert the documents' signatures, then query as many edited or fresh documents:
   datasketch ``MinHashLSH(params=(14, 8))`` (insertion session, one query per document) against
   rensa ``RMinHashLSH`` (``insert_many``, ``query_all``).
3. ``agreement``: the exact Jaccard of every (query, document) pair sharing a shingle (a hash join),
   so each library's candidate set is judged against the truth: recall at Jaccard >= 0.5 / 0.72 /
   0.8, the candidate rate per Jaccard bin next to 1 - (1 - s^r)^b, and the overlap of the two
   libraries' candidate sets.
4. ``pipeline``: ``filters.contamination.near_dup`` end to end on ``--pipeline-mb`` MB of generated
   documents with benchmark-like items (passages of gensim's Lee corpus) planted verbatim, with a
   few words changed, and reordered: MB/s (best of ``--repeats``), recall per plant kind and item
   length, wrong matches; window variants and the paraphrase mode on the first ``--variant-mb``
   MB; both backends on the first ``--datasketch-mb`` MB. Items are 20-199-word chunks of gensim's
   Lee corpus sharing no 5-gram with each other; a quarter is never planted.

Documents are drawn word by word from the unigram distribution of gensim's ``lee_background.cor``
(numpy ``default_rng(seed)``). Writes ``bench/results/minhash_libs.json`` and prints tables.
Quick check (about 20 s): ``.venv/bin/python bench/minhash_libs.py --docs 2000 --pipeline-mb 3
--variant-mb 1 --datasketch-mb 0.3 --out /tmp/minhash_libs.json --allow-dirty``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections import Counter
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    RESULTS_DIR,
    add_provenance_args,
    machine_info,
    now_iso,
    print_table,
    require_clean_tree,
    write_result,
)

from filters.contamination.near_dup import (  # noqa: E402
    NearDupIndex,
    NearDupSettings,
    candidate_probability,
    normalise_words,
    shingles,
)

BANDS, ROWS, K = 14, 8, 5
PERM = BANDS * ROWS
LEE = "gensim/test/test_data/lee_background.cor"


def timed(fn, repeats: int) -> tuple[dict, object]:
    """Best-of-``repeats`` wall seconds (with that run's CPU seconds) of ``fn()``; its result."""
    best, out = None, None
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if best is None or wall < best["wall_s"]:
            best = {"wall_s": wall, "cpu_s": cpu}
    return best, out


def lee_text() -> str:
    """gensim's Lee background corpus (news paragraphs, one a line)."""
    import gensim

    return (Path(gensim.__file__).parent.parent / LEE).read_text()


class Generator:
    """Documents drawn from the Lee corpus's unigram distribution (seeded)."""

    def __init__(self, text: str, seed: int):
        counts = Counter(normalise_words(text))
        self.vocab = np.array(sorted(counts), dtype=object)
        p = np.array([counts[w] for w in self.vocab], float)
        self.p = p / p.sum()
        self.rng = np.random.default_rng(seed)

    def words(self, n: int) -> list[str]:
        return list(self.vocab[self.rng.choice(len(self.vocab), size=n, p=self.p)])

    def edit(self, words: list[str], frac: float) -> list[str]:
        """Each word replaced by a random word with probability ``frac``."""
        out = list(words)
        for i in np.flatnonzero(self.rng.random(len(out)) < frac):
            out[i] = self.words(1)[0]
        return out


# ---------------------------------------------------------------------- 1-3: libraries
def signatures(base: list[list[str]], repeats: int, seed: int) -> tuple[dict, dict]:
    """Section 1: signatures of ``base`` with every API of both libraries; timings and sketches."""
    import rensa
    from datasketch import MinHash

    R, C = rensa.RMinHash, rensa.CMinHash
    t0 = time.perf_counter()
    as_bytes = [[s.encode() for s in sh] for sh in base]
    encode_s = time.perf_counter() - t0

    def ds_update_batch():
        out = []
        for sh in as_bytes:
            m = MinHash(num_perm=PERM, seed=seed)
            m.update_batch(sh)
            out.append(m)
        return out

    def rensa_flat():
        hashed = R.hash_token_sets(base)
        flat = np.fromiter(itertools.chain.from_iterable(hashed), np.uint64, sum(map(len, hashed)))
        off = np.zeros(len(base) + 1, np.uint64)
        np.cumsum([len(r) for r in hashed], out=off[1:])
        return R.digest_matrix_from_flat_token_hashes(flat, off, PERM, seed)

    methods = {
        "datasketch MinHash.update_batch": ds_update_batch,
        "datasketch MinHash.bulk": lambda: MinHash.bulk(as_bytes, num_perm=PERM, seed=seed),
        "rensa RMinHash.from_token_sets": lambda: R.from_token_sets(base, PERM, seed),
        "rensa RMinHash.digest_matrix_from_token_sets":
            lambda: R.digest_matrix_from_token_sets(base, PERM, seed),
        "rensa RMinHash hash + flat matrix (near_dup)": rensa_flat,
        "rensa CMinHash.from_token_sets": lambda: C.from_token_sets(base, PERM, seed),
    }
    out, sketches = {}, {}
    for name, fn in methods.items():
        t, res = timed(fn, repeats if name.startswith("rensa") else 1)
        extra = encode_s if name.startswith("datasketch") else 0.0
        out[name] = {**t, "bytes_encoding_s": extra if extra else None,
                     "signatures_per_s": len(base) / (t["wall_s"] + extra)}
        sketches[name] = res
    return out, sketches


def lsh_runs(base: list[list[str]], queries: list[list[str]], seed: int) -> tuple[dict, dict]:
    """Section 2: insert ``base``, query ``queries`` with each library's LSH; times, candidates."""
    import rensa
    from datasketch import MinHash, MinHashLSH

    out, cands = {}, {}
    bm = MinHash.bulk([[s.encode() for s in sh] for sh in base], num_perm=PERM, seed=seed)
    qm = MinHash.bulk([[s.encode() for s in sh] for sh in queries], num_perm=PERM, seed=seed)
    lsh = MinHashLSH(num_perm=PERM, params=(BANDS, ROWS))
    t0 = time.perf_counter()
    with lsh.insertion_session() as session:
        for i, m in enumerate(bm):
            session.insert(i, m, check_duplication=False)
    t1 = time.perf_counter()
    found = [lsh.query(m) for m in qm]
    t2 = time.perf_counter()
    out["datasketch MinHashLSH"] = {"insert_s": t1 - t0, "query_s": t2 - t1, "total_s": t2 - t0}
    cands["datasketch"] = {(q, d) for q, ds in enumerate(found) for d in ds}

    R = rensa.RMinHash
    bo, qo = R.from_token_sets(base, PERM, seed), R.from_token_sets(queries, PERM, seed)
    lsh = rensa.RMinHashLSH(0.72, PERM, BANDS)
    t0 = time.perf_counter()
    lsh.insert_many(bo, 0)
    t1 = time.perf_counter()
    found = lsh.query_all(qo)
    t2 = time.perf_counter()
    out["rensa RMinHashLSH"] = {"insert_s": t1 - t0, "query_s": t2 - t1, "total_s": t2 - t0}
    cands["rensa"] = {(q, d) for q, ds in enumerate(found) for d in ds}
    for name, c in cands.items():
        key = next(k for k in out if k.startswith(name))
        out[key]["candidates"] = len(c)
    return out, cands


def exact_pairs(base: list[list[str]], queries: list[list[str]]) -> dict[tuple[int, int], float]:
    """Exact Jaccard of every (query, base) pair sharing at least one shingle (hash join + sets)."""
    import rensa

    def pairs(docs):
        hashed = rensa.RMinHash.hash_token_sets(docs)
        uniq = [np.unique(np.array(r, np.uint64)) for r in hashed]
        return np.concatenate(uniq), np.repeat(np.arange(len(docs)), [len(u) for u in uniq])

    bh, bd = pairs(base)
    order = np.argsort(bh, kind="stable")
    bh, bd = bh[order], bd[order]
    qh, qd = pairs(queries)
    lo, hi = np.searchsorted(bh, qh, "left"), np.searchsorted(bh, qh, "right")
    cnt = hi - lo
    total = int(cnt.sum())
    pos = np.arange(total) + np.repeat(lo - (np.cumsum(cnt) - cnt), cnt)
    keys = np.unique(np.repeat(qd, cnt).astype(np.int64) * len(base) + bd[pos])
    sets_b = [set(sh) for sh in base]
    out = {}
    for key in keys.tolist():
        q, d = divmod(key, len(base))
        sq = set(queries[q])
        inter = len(sq & sets_b[d])
        out[(q, d)] = inter / (len(sq) + len(sets_b[d]) - inter)
    return out


def agreement(truth: dict, cands: dict, n_pairs_total: int) -> dict:
    """Each library's candidates judged by exact Jaccard; per-bin rates next to the formula."""
    edges = np.round(np.arange(0.0, 1.01, 0.1), 2)
    out: dict = {"pairs_total": n_pairs_total, "pairs_sharing_a_shingle": len(truth),
                 "libraries": {}}
    for name, c in cands.items():
        lib: dict = {"candidates": len(c),
                     "candidates_exact_ge_0.5": sum(truth.get(p, 0.0) >= 0.5 for p in c)}
        for t in (0.5, 0.72, 0.8):
            pos = [p for p, j in truth.items() if j >= t]
            lib[f"recall_at_jaccard_ge_{t}"] = sum(p in c for p in pos) / max(1, len(pos))
            lib[f"pairs_at_jaccard_ge_{t}"] = len(pos)
        bins = []
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            inside = [p for p, j in truth.items() if lo < j <= hi or (hi == 1.0 and j == 1.0)]
            if not inside:
                continue
            formula = np.mean([candidate_probability(truth[p], BANDS, ROWS) for p in inside])
            bins.append({"jaccard_lo": float(lo), "jaccard_hi": float(hi), "pairs": len(inside),
                         "candidate_rate": sum(p in c for p in inside) / len(inside),
                         "formula_rate_mean": float(formula)})
        zero = n_pairs_total - len(truth)
        lib["candidates_with_no_shared_shingle"] = sum(p not in truth for p in c)
        lib["candidate_rate_at_jaccard_0"] = lib["candidates_with_no_shared_shingle"] / max(1, zero)
        lib["bins"] = bins
        out["libraries"][name] = lib
    a, b = cands.get("datasketch", set()), cands.get("rensa", set())
    out["candidate_sets_jaccard"] = len(a & b) / max(1, len(a | b))
    hi = [p for p, j in truth.items() if j >= 0.8]
    out["agree_on_pairs_ge_0.8"] = sum((p in a) == (p in b) for p in hi) / max(1, len(hi))
    return out


# ---------------------------------------------------------------------- 4: pipeline
def plant_corpus(gen: Generator, lee: str, mb: float, n_items: int) -> tuple[list, list, dict]:
    """Items from the Lee corpus; carrier documents of ~``mb`` MB with items planted three ways."""
    chunks = []
    for para in lee.splitlines():  # chunks of 20-199 words
        w = para.split()
        while len(w) >= 20:
            n = min(len(w), int(gen.rng.integers(20, 200)))
            chunks.append(" ".join(w[:n]))
            w = w[n:]
    items, seen = [], set()  # the corpus repeats some stories: keep items sharing no 5-gram
    for c in gen.rng.permutation(len(chunks)).tolist():
        sh = set(shingles(normalise_words(chunks[c]), K))
        if not sh & seen and len(items) < n_items:
            items.append((f"lee-{len(items)}", chunks[c]))
            seen |= sh
    if len(items) < n_items:
        raise SystemExit(f"the Lee corpus has {len(items)} disjoint items; lower --items")
    docs, size = [], 0
    while size < mb * 1e6:
        text = " ".join(gen.words(int(np.clip(gen.rng.lognormal(6.5, 0.9), 50, 8000))))
        docs.append([f"doc-{len(docs)}", text])
        size += len(text.encode())
    kinds = ["verbatim", "edited", "reordered", "absent"]
    if len(docs) < n_items:
        raise SystemExit(f"{len(docs)} carrier documents for {n_items} items: raise --pipeline-mb")
    truth: dict = {}
    targets = gen.rng.permutation(len(docs))
    for i, (key, text) in enumerate(items):
        kind = kinds[i % 4]
        if kind == "absent":
            continue
        w = text.split()
        if kind == "edited":  # three words changed
            for p in gen.rng.choice(len(w), size=3, replace=False):
                w[p] = gen.words(1)[0]
        elif kind == "reordered":  # its halves swapped and each half's word pairs swapped
            half = len(w) // 2
            w = w[half:] + w[:half]
            w = [w[j ^ 1] if (j ^ 1) < len(w) else w[j] for j in range(len(w))]
        d = int(targets[i])
        dw = docs[d][1].split()
        at = int(gen.rng.integers(0, len(dw) + 1))
        docs[d][1] = " ".join(dw[:at] + w + dw[at:])
        truth[(key, docs[d][0])] = kind
    return items, [tuple(d) for d in docs], truth


def run_pipeline(items, docs, truth, settings: NearDupSettings, repeats: int = 1) -> dict:
    """``NearDupIndex(items, settings)`` over ``docs``: best-of-``repeats`` time, MB/s, recall per
    plant kind, wrong matches (matching is deterministic: every repeat finds the same)."""
    mb = sum(len(t.encode()) for _, t in docs) / 1e6
    n_words = {key: len(text.split()) for key, text in items}
    t0 = time.perf_counter()
    index = NearDupIndex(items, settings)
    index_s = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t1, c1, load = time.perf_counter(), time.process_time(), os.getloadavg()[0]
        found = {(m.item_id, m.sample_id): m.score for m in index.match(docs)}
        runs.append((time.perf_counter() - t1, time.process_time() - c1, load))
    wall, cpu, _ = min(runs)
    k = settings.shingle_words
    out = {"documents": len(docs), "mb": mb, "items": len(items), "skipped": len(index.skipped),
           "window_classes_words_stride_items": [[c.window + k - 1, c.stride, len(c.items)]
                                                 for c in index.window_classes],
           "index_s": index_s, "match_s": wall, "match_cpu_s": cpu, "mb_per_s": mb / wall,
           "runs_wall_cpu_load1": runs,
           "matches": len(found), "wrong_matches": sum(p not in truth for p in found)}
    for kind in ("verbatim", "edited", "reordered"):
        pairs = [p for p, k in truth.items() if k == kind]
        scores = [found[p] for p in pairs if p in found]
        out[f"recall_{kind}"] = len(scores) / max(1, len(pairs))
        out[f"planted_{kind}"] = len(pairs)
        out[f"median_score_{kind}"] = float(np.median(scores)) if scores else None
        by_len = {}
        for lo, hi in ((20, 60), (60, 120), (120, 200)):
            sel = [p for p in pairs if lo <= n_words[p[0]] < hi]
            hit = sum(p in found for p in sel)
            by_len[f"{lo}-{hi - 1} words"] = [hit / max(1, len(sel)), len(sel)]
        out[f"recall_{kind}_by_item_words"] = by_len
    return out


def prefix(docs: list, truth: dict, mb: float) -> tuple[list, dict]:
    """The first documents holding ``mb`` MB of text, and the plants inside them."""
    out, size = [], 0.0
    for d in docs:
        if size >= mb:
            break
        out.append(d)
        size += len(d[1].encode()) / 1e6
    ids = {d[0] for d in out}
    return out, {p: k for p, k in truth.items() if p[1] in ids}


def pipeline(lee: str, args: argparse.Namespace) -> dict:
    """Section 4: the near_dup pipeline at full size, its variants, and the datasketch backend."""
    items, docs, planted = plant_corpus(Generator(lee, args.seed + 1), lee, args.pipeline_mb,
                                        args.items)
    out = {"rensa default": run_pipeline(items, docs, planted, NearDupSettings(library="rensa"),
                                         args.repeats)}
    small, sub = prefix(docs, planted, args.variant_mb)
    variants = {"rensa stride 0.5": NearDupSettings(window_stride=0.5),
                "rensa stride 0.25 (default)": NearDupSettings(),
                "rensa length_ratio 2.0": NearDupSettings(length_ratio=2.0),
                "rensa paraphrase (1-word, stopwords removed)":
                    NearDupSettings(shingle_words=1, stopwords=True)}
    for name, settings in variants.items():
        out[f"{name} @ {args.variant_mb:g} MB"] = run_pipeline(items, small, sub, settings)
    small, sub = prefix(docs, planted, args.datasketch_mb)
    for lib in ("datasketch", "rensa"):
        out[f"{lib} default @ {args.datasketch_mb:g} MB"] = run_pipeline(
            items, small, sub, NearDupSettings(library=lib))
    return out


def print_tables(result: dict) -> None:
    """The result's headline figures as tables."""
    sig, lsh, pipe = result["signatures"], result["lsh"], result["pipeline"]
    ag = result["agreement"]["libraries"]
    print_table("Signatures (112 permutations, word 5-grams)",
                ["method", "wall s", "cpu s", "sig/s"],
                [[k, v["wall_s"] + (v["bytes_encoding_s"] or 0), v["cpu_s"], v["signatures_per_s"]]
                 for k, v in sig.items()])
    d = result["data"]
    print_table(f"LSH b={BANDS} r={ROWS}: insert {d['documents']:,}, query {d['queries']:,}",
                ["index", "insert s", "query s", "total s", "candidates"],
                [[k, v["insert_s"], v["query_s"], v["total_s"], v["candidates"]]
                 for k, v in lsh.items()])
    print_table("Candidates against exact Jaccard",
                ["library", "recall J>=0.5", "J>=0.72", "J>=0.8", "candidates", "of them J>=0.5"],
                [[k, v["recall_at_jaccard_ge_0.5"], v["recall_at_jaccard_ge_0.72"],
                  v["recall_at_jaccard_ge_0.8"], v["candidates"], v["candidates_exact_ge_0.5"]]
                 for k, v in ag.items()])
    names = list(ag)
    rate = {(n, b["jaccard_lo"]): b["candidate_rate"] for n in names for b in ag[n]["bins"]}
    print_table("Candidate rate per exact-Jaccard bin", ["bin", "pairs", "formula", *names],
                [[f"{b['jaccard_lo']:.1f}-{b['jaccard_hi']:.1f}", b["pairs"],
                  b["formula_rate_mean"],
                  *[rate.get((n, b["jaccard_lo"])) for n in names]] for b in ag[names[0]]["bins"]])
    print_table("near_dup pipeline",
                ["run", "MB", "MB/s", "verbatim", "edited", "reordered", "wrong"],
                [[k, v["mb"], v["mb_per_s"], v["recall_verbatim"], v["recall_edited"],
                  v["recall_reordered"], v["wrong_matches"]] for k, v in pipe.items()])


def main() -> None:
    """Parse options, run the four sections, print the tables, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=20_000, help="documents indexed (as many queries)")
    ap.add_argument("--words", type=int, default=200, help="mean words per document")
    ap.add_argument("--repeats", type=int, default=2, help="repeats of rensa timings")
    ap.add_argument("--pipeline-mb", type=float, default=20.0, help="text for the pipeline")
    ap.add_argument("--variant-mb", type=float, default=10.0, help="text for the variants")
    ap.add_argument("--datasketch-mb", type=float, default=1.0, help="text for datasketch's run")
    ap.add_argument("--items", type=int, default=400, help="benchmark items in the pipeline")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS_DIR / "minhash_libs.json")
    add_provenance_args(ap)
    args = ap.parse_args()
    git = require_clean_tree(args.allow_dirty)
    machine = machine_info()
    machine["git"] = git
    machine["versions"].update({p: metadata.version(p) for p in ("datasketch", "rensa", "gensim")})
    machine["env"] = {k: os.environ.get(k) for k in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS")}
    result: dict = {"benchmark": "minhash_libs", "created_at": now_iso(),
                    "args": vars(args) | {"out": str(args.out)}, "machine": machine,
                    "load_average_start": os.getloadavg(),
                    "params": {"bands": BANDS, "rows": ROWS, "num_perm": PERM, "shingle_words": K}}
    lee = lee_text()
    gen = Generator(lee, args.seed)
    lengths = np.clip(gen.rng.normal(args.words, args.words / 5, args.docs).astype(int), K, None)
    base_words = [gen.words(int(n)) for n in lengths]
    fracs = gen.rng.uniform(0.0, 0.3, args.docs // 2)
    query_words = ([gen.edit(base_words[i], f) for i, f in enumerate(fracs)]
                   + [gen.words(int(n)) for n in lengths[: args.docs - len(fracs)]])
    t0 = time.perf_counter()
    base = [shingles(w, K) for w in base_words]
    result["shingling_s"] = time.perf_counter() - t0
    queries = [shingles(w, K) for w in query_words]
    result["data"] = {"documents": len(base), "queries": len(queries), "edited_queries": len(fracs),
                      "mean_words": float(lengths.mean()), "vocabulary": len(gen.vocab),
                      "mean_shingles": float(np.mean([len(s) for s in base])),
                      "edit_fraction_range": [0.0, 0.3]}
    result["signatures"], _ = signatures(base, args.repeats, args.seed)
    result["lsh"], cands = lsh_runs(base, queries, args.seed)
    t0 = time.perf_counter()
    truth = exact_pairs(base, queries)
    result["exact_join_s"] = time.perf_counter() - t0
    result["agreement"] = agreement(truth, cands, len(base) * len(queries))
    result["pipeline"] = pipeline(lee, args)
    result["load_average_end"] = os.getloadavg()
    result["finished_at"] = now_iso()
    print_tables(result)
    write_result(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
