"""Export subsets and materialise curated datasets with an audit trail of every drop."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import stores
from stores.curate import curate
from stores.errors import DatasetExistsError, QueryError, StoreError
from stores.export import export
from stores.ingest import ingest
from tests.helpers import arith_rows, write_jsonl


@pytest.fixture
def loaded(tmp_path: Path, store: stores.Store) -> stores.Store:
    ingest(store, write_jsonl(tmp_path / "a.jsonl", arith_rows(100)), "arith", batch_rows=30)
    return store


def _flag(store: stores.Store, ids: list[str], filter: str = "toy", flagged: bool = True) -> str:
    with store.run("filter", dataset="arith", config={"filter": filter}) as run:
        run.write("flags", {
            "filter": [filter] * len(ids), "sample_id": ids, "score": [0.9] * len(ids),
            "flagged": [flagged] * len(ids), "reason": [f"{filter} says so"] * len(ids),
        })
    return run.id


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ".jsonl.gz", ".csv"])
def test_export_round_trips_to_same_ids(tmp_path: Path, loaded: stores.Store, suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    n = export(loaded, "arith", out, where="idx >= 40 AND op = '+'")
    assert n == 60
    ingest(loaded, out, "again")
    want = loaded.sql("SELECT sample_id FROM samples WHERE dataset = 'arith' AND idx >= 40 ORDER BY ordinal")
    got = loaded.read_samples("again")
    assert got["sample_id"].to_list() == want["sample_id"].to_list()
    assert "source_sample_id" in got.columns  # the exported id column is kept as metadata


def test_export_bad_predicate_leaves_no_file(tmp_path: Path, loaded: stores.Store) -> None:
    out = tmp_path / "x.parquet"
    with pytest.raises(QueryError, match="no_such_column"):
        export(loaded, "arith", out, where="no_such_column > 1")
    assert list(tmp_path.glob("*x.parquet*")) == []


def test_curate_drops_flagged_and_records_reasons(loaded: stores.Store) -> None:
    ids = loaded.read_samples("arith")["sample_id"].to_list()
    run_a = _flag(loaded, ids[:5], "a")
    run_b = _flag(loaded, ids[3:8], "b")
    _flag(loaded, ids[50:60], "c", flagged=False)  # scored but not flagged: kept
    res = curate(loaded, "arith-clean", "arith")
    assert (res.n_kept, res.n_dropped) == (92, 8)
    assert res.flag_runs == sorted([run_a, run_b, loaded.runs("filter")["run_id"][0]])
    kept = loaded.read_samples("arith-clean")
    assert kept["sample_id"].to_list() == ids[8:] and kept["ordinal"].to_list() == list(range(92))
    drops = loaded.sql("SELECT sample_id, reason FROM curated_drops WHERE curated = 'arith-clean'")
    reasons = dict(drops.iter_rows())
    assert reasons[ids[4]] == f"a [{run_a}]: a says so; b [{run_b}]: b says so"
    assert reasons[ids[0]] == f"a [{run_a}]: a says so"
    row = loaded.sql("SELECT * FROM curated WHERE name = 'arith-clean'").row(0, named=True)
    assert row["parent_dataset"] == "arith" and row["n_dropped"] == 8
    info = loaded.dataset_info("arith-clean")
    assert info["source"] == "curated:arith" and info["n_samples"] == 92


def test_curate_by_filter_name_and_predicate(loaded: stores.Store) -> None:
    ids = loaded.read_samples("arith")["sample_id"].to_list()
    _flag(loaded, ids[:5], "a")
    _flag(loaded, ids[5:10], "b")
    res = curate(loaded, "only-a", "arith", filters=["a"], where="idx < 90")
    assert (res.n_kept, res.n_dropped) == (85, 15)
    reasons = loaded.sql("SELECT reason FROM curated_drops WHERE curated = 'only-a'")["reason"].to_list()
    assert sum(r.startswith("excluded by predicate: idx < 90") for r in reasons) == 10


def test_curate_refuses_nothing_to_do_and_existing_name(loaded: stores.Store) -> None:
    with pytest.raises(StoreError, match="no finished filter runs"):
        curate(loaded, "c", "arith")
    curate(loaded, "c", "arith", where="idx < 10")
    with pytest.raises(DatasetExistsError):
        curate(loaded, "c", "arith", where="idx < 20")
    res = curate(loaded, "c", "arith", where="idx < 20", replace=True)
    assert loaded.dataset_info("c")["n_samples"] == 20 == res.n_kept
    assert loaded.sql("SELECT count(*) AS n FROM curated_drops WHERE curated = 'c'")["n"][0] == 80


def test_curated_dataset_is_a_dataset(loaded: stores.Store) -> None:
    curate(loaded, "small", "arith", where="idx < 10")
    df = loaded.sql("SELECT dataset, count(*) AS n FROM samples GROUP BY 1 ORDER BY 1")
    assert df.rows() == [("arith", 100), ("small", 10)]
    assert isinstance(loaded.read_samples("small"), pl.DataFrame)


def test_predicate_may_use_columns_named_like_flag_fields(tmp_path: Path, store: stores.Store) -> None:
    rows = [{"text": f"t{i}", "reason": "keep" if i % 2 else "junk"} for i in range(10)]
    ingest(store, write_jsonl(tmp_path / "r.jsonl", rows), "arith")
    _flag(store, [store.read_samples("arith")["sample_id"][1]], "a")
    res = curate(store, "kept", "arith", where="reason = 'keep'")
    assert (res.n_kept, res.n_dropped) == (4, 6)


def test_an_empty_flag_run_list_applies_no_flags(tmp_path: Path) -> None:
    """`flag_runs=[]` means "no flags" (a predicate alone), not "every flag run of the parent"."""
    store = stores.open(tmp_path / "s")
    rows = [{"text": f"t{i}", "keep": i % 2 == 0} for i in range(10)]
    ingest(store, write_jsonl(tmp_path / "d.jsonl", rows), "d")
    ids = store.read_samples("d", columns=["sample_id"])["sample_id"].to_list()
    with store.run("filter", dataset="d") as run:
        run.write("flags", {"filter": ["f"] * 10, "sample_id": ids, "score": [1.0] * 10,
                            "flagged": [True] * 10, "reason": ["all"] * 10}, shard=0)
    assert curate(store, "all_flagged", "d").n_kept == 0
    res = curate(store, "by_where", "d", flag_runs=[], where="keep")
    assert res.n_kept == 5 and res.flag_runs == []


def test_a_dataset_with_no_rows_reads_as_an_empty_frame(loaded: stores.Store) -> None:
    from stores.curate import curate

    curate(loaded, "nothing", "arith", flag_runs=[], where="false")
    full = loaded.read_samples("arith")
    empty = loaded.read_samples("nothing")
    assert empty.height == 0 and empty.schema == full.schema
    assert loaded.read_samples("nothing", columns=["sample_id", "prompt"]).columns == ["sample_id", "prompt"]
