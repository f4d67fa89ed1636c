"""Write the worked-example notebooks from their cell sources and execute them (outputs stored).

    .venv/bin/python notebooks/build.py            # rebuild all three
    .venv/bin/python notebooks/build.py --check    # execute fresh copies, fail on any error

Each notebook runs offline on CPU in well under a minute: it builds a small store with the
noisy-CoT pipeline on a tiny config (the demo's steps, fewer traces and training steps).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent

SETUP_TEMPLATE = '''\
import tempfile, pathlib
import polars as pl
import stores
from curation.pipelines.noisy_cot.config import NoisyCoTConfig
from curation.pipelines.noisy_cot.pipeline import NoisyCoTPipeline

# A small store built by the noisy-CoT pipeline (the demo's steps on a smaller config, CPU).
cfg = NoisyCoTConfig.model_validate({
    "name": "nb", "seed": 0,
    "data": {"n_train": N_TRAIN, "n_test": 100, "dynamic_rate": 0.2, "static_rate": 0.2},
    "model": {"n_layer": 2, "n_embd": 64, "n_head": 4, "steps": STEPS, "batch_size": 32, "max_length": 64},
    "attribution": {"batch_size": 64, "max_failing_queries": 20},
    "filter": {"budget": 0.4},
})
root = pathlib.Path(tempfile.mkdtemp()) / "store"
store = stores.open(root)
result = NoisyCoTPipeline(store, cfg).execute()
print("store:", root)
print("accuracy:", {k: round(v, 3) for k, v in result.accuracy.items()})
'''
SETUP = SETUP_TEMPLATE.replace("N_TRAIN", "400").replace("STEPS", "150")  # seconds: the store's contents
SETUP_TRAINED = SETUP_TEMPLATE.replace("N_TRAIN", "2000").replace("STEPS", "1500")  # minutes: a model that learns

NOTEBOOKS = {
    "sql_over_influence_scores.ipynb": [
        ("markdown", "# SQL over influence scores\n\nEverything the toolkit computes lives in one store: "
                     "Parquet shards under a DuckDB catalog. This notebook builds a small store with the "
                     "noisy chain-of-thought pipeline, then answers questions in SQL (DuckDB) and polars."),
        ("code", SETUP),
        ("markdown", "## What is in the store\n`store.tables()` lists tables and views; `runs` records every "
                     "computation with its config, versions and seed."),
        ("code", "store.tables()"),
        ("code", "store.sql(\"SELECT kind, count(*) AS n FROM runs GROUP BY ALL ORDER BY n DESC\")"),
        ("markdown", "## Self-influence and loss by planted noise\nThe samples' metadata columns carry the truth "
                     "of the generator, so evidence can be sliced by it in one join."),
        ("code", """store.sql('''
SELECT s.noise, ss.method, round(avg(ss.score), 3) AS mean, round(median(ss.score), 3) AS median, count(*) AS n
FROM self_scores ss JOIN samples s USING (sample_id)
WHERE s.dataset = 'nb_train' AND ss.method IN ('loss', 'self_ekfac')
GROUP BY ALL ORDER BY method, noise''')"""),
        ("markdown", "## The training traces that most push each wrong answer\nPairwise scores of the behaviour "
                     "'the model's own wrong answers': a positive score means the trace made that wrong answer "
                     "more likely."),
        ("code", """top = store.sql('''
SELECT query_id, sample_id, score FROM scores
WHERE behaviour = 'nb_train-wrong-answers'
QUALIFY row_number() OVER (PARTITION BY query_id ORDER BY score DESC) <= 3''')
top.join(store.sql("SELECT sample_id, noise, prompt FROM samples WHERE dataset = 'nb_train'"), on="sample_id").head(9)"""),
        ("markdown", "## The same data in plain DuckDB and in polars\nThe catalog file opens in any DuckDB; "
                     "shards scan lazily in polars."),
        ("code", """import duckdb
con = duckdb.connect(str(root / "catalog.duckdb"), read_only=True)
print(con.sql("SELECT count(*) FROM scores").fetchall())
con.close()
lazy = store.scan("flags")
lazy.group_by("flagged").agg(pl.len(), pl.col("score").mean()).collect()"""),
        ("markdown", "## The audit trail of a curated dataset"),
        ("code", "store.sql(\"SELECT curated, count(*) AS dropped, any_value(reason) AS example FROM curated_drops GROUP BY 1\")"),
    ],
    "curating_noisy_cot.ipynb": [
        ("markdown", "# Curating noisy chain-of-thought\n\nThe experiment step by step on a small scale: traces "
                     "with planted static and dynamic noise, a GPT-2 trained from scratch, evidence, the "
                     "`noisy_cot` filter, the curated dataset and the retrained model. The full-size figures "
                     "are in the README (`make bench-noisy-cot`)."),
        ("code", SETUP_TRAINED),
        ("markdown", "## 1. The traces\nA clean and a dynamic-noise trace (errors propagate from the first wrong value)."),
        ("code", """for kind in ("clean", "dynamic", "static"):
    row = store.sql(f"SELECT prompt, completion, first_wrong_line FROM samples WHERE dataset = 'nb_train' AND noise = '{kind}' LIMIT 1").row(0, named=True)
    print(f"--- {kind} (first wrong line {row['first_wrong_line']})"); print(row["prompt"] + row["completion"])"""),
        ("markdown", "## 2. Detection\nEvery evidence alone and the combined filter, against the planted truth."),
        ("code", """pl.DataFrame([{"noise": k, "evidence": m, **{x: round(v[x], 3) for x in ("auroc", "precision_at_budget", "recall_at_budget")}}
              for k, d in result.detection.items() for m, v in d.items()])"""),
        ("markdown", "## 3. Score distributions (inline SVG plots)"),
        ("code", """from IPython.display import SVG, display
from curation.report import histogram_svg
for method in ("loss", "self_ekfac"):
    for kind in ("clean", "dynamic", "static"):
        v = store.sql(f"SELECT ss.score FROM self_scores ss JOIN samples s USING (sample_id) WHERE s.dataset = 'nb_train' AND ss.method = '{method}' AND s.noise = '{kind}'")["score"].to_numpy()
        display(SVG(histogram_svg(v, f"{method}: {kind} traces", width=360, height=120)))"""),
        ("markdown", "## 4. Flags with reasons, and what curation kept"),
        ("code", """store.sql(f"SELECT s.noise, f.score, f.reason FROM flags f JOIN samples s USING (sample_id) WHERE f.run_id = '{result.runs['flags']}' AND f.flagged AND s.dataset = 'nb_train' ORDER BY f.score DESC LIMIT 5")"""),
        ("code", """print("accuracy:", result.accuracy)
print("recovery:", result.recovery)"""),
    ],
    "write_your_own_filter.ipynb": [
        ("markdown", "# Write your own filter\n\nA filter reads evidence from the store and returns, for every "
                     "sample, a score, a flag and a reason. Here: a heuristic (the trace's answer line does not "
                     "repeat its last computed value) combined with self-influence from the engine."),
        ("code", SETUP),
        ("code", """import numpy as np
from filters import Budget, Evidence, Filter
from filters.evidence import self_score_evidence
from filters.noisy_cot import combine_ranks

class AnswerMismatch(Filter):
    \"\"\"Flags traces whose answer is not the last value computed, ranked with self-influence.\"\"\"
    name = "answer_mismatch"

    def __init__(self, self_influence_run, budget=None):
        super().__init__(budget)
        self.self_influence_run = self_influence_run

    def evaluate(self, store, dataset):
        df = store.read_samples(dataset, columns=["sample_id", "completion"])
        def mismatch(text):
            lines = [l.split(" = ", 1)[-1] for l in text.split("\\n") if " = " in l]
            return float(len(lines) >= 2 and lines[-1] != lines[-2])
        ids = df["sample_id"].to_list()
        heuristic = Evidence("answer_mismatch", ids, [mismatch(t) for t in df["completion"]], source="samples")
        influence = self_score_evidence(store, self.self_influence_run, "self_influence")
        score = combine_ranks({"heuristic": heuristic.percentile(ids), "influence": influence.percentile(ids)},
                              {"heuristic": 1.0, "influence": 1.0})
        def reason(i, flagged):
            why = "answer differs from the last computed value" if heuristic.values[i] else "answer consistent"
            return f"{why}; combined rank {score[i]:.2f}; {'flagged' if flagged else 'kept'}"
        return self.flags_from_score(ids, score, [heuristic, influence], reason)

run = AnswerMismatch(result.runs["self_influence"], Budget(fraction=0.2)).run(store, "nb_train")
print(run.run_id, run.flags.n_flagged, "flagged")"""),
        ("markdown", "## Is it any good? Compare with the truth and the cheap baselines"),
        ("code", """from curation.evaluation import detection_metrics
truth = store.sql("SELECT sample_id, noise <> 'clean' AND trace_changed AS bad FROM samples WHERE dataset = 'nb_train' ORDER BY ordinal")
flags = store.read_flags(run.run_id)
ours = dict(zip(flags["sample_id"], flags["score"]))
loss = self_score_evidence(store, result.runs["loss"]).aligned(truth["sample_id"].to_list())
rows = []
for name, s in (("answer_mismatch + self-influence", np.array([ours[i] for i in truth["sample_id"]])), ("loss", loss)):
    m = detection_metrics(s, truth["bad"].to_numpy(), 0.2)
    rows.append({"filter": name, "auroc": round(m["auroc"], 3), "precision@20%": round(m["precision_at_budget"], 3)})
pl.DataFrame(rows)"""),
        ("markdown", "A filter earns its place only if it beats the cheap baselines measured in the same run. "
                     "Curate with it: `curation curate nb_mine --from nb_train --flags <run id>`."),
    ],
}


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A notebook object from (kind, source) cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
                for kind, src in cells]
    return nb


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Run every cell (raises CellExecutionError on the first failing cell)."""
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="execute fresh copies; write nothing")
    p.add_argument("names", nargs="*", help="notebooks to build (default: all)")
    args = p.parse_args(argv)
    for name in args.names or list(NOTEBOOKS):
        nb = execute(build(name, NOTEBOOKS[name]), HERE.parent)
        if args.check:
            print(f"ok {name}")
            continue
        with tempfile.NamedTemporaryFile("w", dir=HERE, suffix=".tmp", delete=False) as tmp:
            nbformat.write(nb, tmp)
        Path(tmp.name).replace(HERE / name)
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
