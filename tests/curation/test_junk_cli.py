"""`curation generate junk` and `curation junk`: flags with reasons, the junk-ratio report, model evidence, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import stores
from curation.cli import app
from tests.helpers import fast_gc

runner = CliRunner()


@pytest.fixture(scope="module")
def junk_store(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("junk")
    st = str(root / "store")
    for name, n, seed in (("posts", "60", "0"), ("labelled", "80", "7")):
        res = runner.invoke(app, ["generate", "junk", "--name", name, "--n-clean", n, "--n-junk", n, "--seed", seed,
                                  "--store", st])
        assert res.exit_code == 0, res.output
    return {"root": root, "store": st}


def _reference_lm(store: stores.Store, folder: Path) -> Path:
    """A tiny GPT-2 with a BPE tokenizer of the posts (untrained: the plumbing, not the quality, is tested)."""
    from curation.steps.tokenizer import train_bpe_tokenizer
    from curation.steps.train import LMConfig, build_gpt2, save_lm

    tok = train_bpe_tokenizer(store.read_samples("posts")["text"].to_list(), 300)
    return save_lm(build_gpt2(tok, LMConfig(n_layer=1, n_embd=16, n_head=2, max_length=32), seed=0), tok, folder)


def test_generate_junk_writes_real_and_simulated_text(junk_store) -> None:
    st = stores.open(junk_store["store"])
    df = st.read_samples("posts")
    assert df.height == 120 and set(df["category"]) == {"clean", "conspiracy", "clickbait", "brief", "spam",
                                                          "lifestyle", "quiz"}
    assert {"likes", "shares", "replies", "is_junk"} <= set(df.columns)
    res = runner.invoke(app, ["generate", "junk", "--name", "x", "--categories", "memes", "--store", junk_store["store"]])
    assert res.exit_code != 0 and "--categories" in res.output


def test_junk_flags_with_reasons_and_reports_the_ratio(junk_store) -> None:
    res = runner.invoke(app, ["junk", "--dataset", "posts", "--labelled", "labelled", "--curate", "posts_kept",
                              "--store", junk_store["store"]])
    assert res.exit_code == 0, res.output
    assert "junk ratio of dataset 'posts'" in res.output and "curated" in res.output
    st = stores.open(junk_store["store"])
    run_id = st.sql("SELECT run_id FROM runs WHERE kind = 'filter' ORDER BY created_at DESC LIMIT 1")["run_id"][0]
    flags = st.read_flags(run_id).join(st.read_samples("posts").select("sample_id", "category", "is_junk"),
                                       on="sample_id")
    flagged = flags.filter(flags["flagged"])
    assert flagged.height > 0 and all(r.startswith("junk [") for r in flagged["reason"].to_list())
    # on the simulated posts the filter finds most junk and keeps most clean text
    truth, got = flags["is_junk"].to_numpy(), flags["flagged"].to_numpy()
    assert got[truth].mean() > 0.8 and got[~truth].mean() < 0.3
    flagged_ids = set(flagged["sample_id"].to_list())
    posts = st.read_samples("posts")
    assert st.read_samples("posts_kept").height == sum(i not in flagged_ids for i in posts["sample_id"].to_list())


def test_model_evidence_runs_are_written_and_reused(junk_store) -> None:
    from curation.steps.junk import JunkRequest, run_junk

    st = stores.open(junk_store["store"])
    model = _reference_lm(st, junk_store["root"] / "ref")
    if "skipq" not in st.datasets()["name"].to_list():
        from curation.steps.records import ingest_records

        ingest_records(st, {"skipq": [{"prompt": "add 4 7 , 1 8\n", "completion": "ans = 6 5"},
                                      {"prompt": "sub 5 2 , 1 1\n", "completion": "ans = 4 1"}]},
                       config={"generator": "test"})
    req = JunkRequest(dataset="posts", rules=False, engagement="off", reference_model=model, push_queries="skipq",
                      max_length=32)
    with fast_gc():
        first = run_junk(st, req)
    assert set(first.evidence_runs) == {"perplexity", "push"}
    for name, run_id in first.evidence_runs.items():
        df = st.sql("SELECT score FROM self_scores WHERE run_id = ?", [run_id])
        assert df.height == 120 and np.isfinite(df["score"].to_numpy()).all(), name
    n_runs = st.sql("SELECT count(*) AS n FROM runs")["n"][0]
    with fast_gc():
        second = run_junk(st, req)
    assert second.evidence_runs == first.evidence_runs
    assert st.sql("SELECT count(*) AS n FROM runs")["n"][0] == n_runs + 1  # only the new flags run


@pytest.mark.parametrize("args, expected", [
    (["--dataset", "nope"], "--dataset nope"),
    (["--dataset", "posts", "--push-queries", "posts"], "--reference-model"),
    (["--dataset", "posts", "--budget", "0.1"], "--combine mean"),
    (["--dataset", "posts", "--engagement", "maybe"], "--engagement"),
    (["--dataset", "posts", "--score", "ppl=no-such-run"], "--score ppl"),
    (["--dataset", "posts", "--curate", "labelled"], "--curate labelled"),
])
def test_bad_requests_name_the_option_and_write_nothing(junk_store, args, expected) -> None:
    st = stores.open(junk_store["store"])
    before = st.sql("SELECT count(*) AS n FROM runs")["n"][0]
    res = runner.invoke(app, ["junk", *args, "--store", junk_store["store"]])
    message = res.output + str(res.exception)
    assert res.exit_code != 0 and expected in message, message
    assert stores.open(junk_store["store"]).sql("SELECT count(*) AS n FROM runs")["n"][0] == before
