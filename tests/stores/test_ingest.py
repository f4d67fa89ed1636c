"""Ingest: every format round-trips, ids are stable, bad input fails cleanly and leaves nothing."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import stores
from stores.errors import DatasetExistsError, IngestError
from stores.ingest import ingest
from tests.helpers import arith_rows, write_jsonl


def _files_under(store: stores.Store) -> list[Path]:
    return sorted(p for p in store.data_dir.rglob("*") if p.is_file())


def _write_all_formats(tmp_path: Path, rows: list[dict]) -> dict[str, Path]:
    paths = {"jsonl": write_jsonl(tmp_path / "in.jsonl", rows)}
    gz = tmp_path / "in.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    paths["jsonl.gz"] = gz
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    paths["parquet"] = tmp_path / "in.parquet"
    with open(tmp_path / "in.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    paths["csv"] = tmp_path / "in.csv"
    import datasets

    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "hf"))
    paths["hf"] = tmp_path / "hf"
    return paths


def test_every_format_round_trips_with_identical_ids(tmp_path: Path) -> None:
    rows = arith_rows(300)
    paths = _write_all_formats(tmp_path, rows)
    ids = {}
    for i, (fmt, path) in enumerate(paths.items()):
        store = stores.open(tmp_path / f"store{i}")
        res = ingest(store, path, "arith", batch_rows=70)
        assert res.n_samples == 300, fmt
        df = store.read_samples("arith")
        assert df["prompt"].to_list() == [r["prompt"] for r in rows], fmt
        assert df["completion"].to_list() == [r["completion"] for r in rows], fmt
        assert df["idx"].cast(pl.Int64).to_list() == list(range(300)), fmt
        assert df["ordinal"].to_list() == list(range(300)), fmt
        assert len(store.dataset_files("arith")) == 5, fmt  # 300 rows / 70 per shard
        ids[fmt] = df["sample_id"].to_list()
    first = ids["jsonl"]
    assert all(v == first for v in ids.values())
    assert first[0] == stores.sample_id({"prompt": rows[0]["prompt"], "completion": rows[0]["completion"]})


def test_ids_follow_roles_not_column_names(tmp_path: Path, store: stores.Store) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [{"q": "2+2=", "a": "4", "src": "x"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"prompt": "2+2=", "completion": "4"}])
    ingest(store, a, "a", prompt_field="q", completion_field="a")
    ingest(store, b, "b")
    ids = store.sql("SELECT dataset, sample_id FROM samples ORDER BY dataset")["sample_id"].to_list()
    assert ids[0] == ids[1]
    cols = store.read_samples("a").columns
    assert cols == ["dataset", "sample_id", "ordinal", "prompt", "completion", "src"]


def test_text_and_label_fields_and_reserved_names(tmp_path: Path, store: stores.Store) -> None:
    rows = [{"body": "hello", "y": 1, "sample_id": "orig-1", "text": "other"}]
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    res = ingest(store, path, "t", text_field="body", label_field="y")
    df = store.read_samples("t")
    assert df["text"][0] == "hello" and df["label"][0] == 1
    assert df["source_sample_id"][0] == "orig-1" and df["source_text"][0] == "other"
    assert df["sample_id"][0] == stores.sample_id({"text": "hello", "label": 1})
    assert res.roles == {"text": "body", "label": "y"}


def test_duplicates_counted_and_dropped(tmp_path: Path, store: stores.Store) -> None:
    rows = arith_rows(50) + [dict(r, idx=999) for r in arith_rows(10)]  # same content, other metadata
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    kept = ingest(store, path, "kept", batch_rows=16)
    assert (kept.n_samples, kept.n_duplicates) == (60, 10)
    dropped = ingest(store, path, "dropped", drop_duplicates=True, batch_rows=16)
    assert (dropped.n_samples, dropped.n_duplicates) == (50, 10)
    df = store.read_samples("dropped")
    assert df["sample_id"].n_unique() == 50 and df["ordinal"].to_list() == list(range(50))
    assert store.dataset_info("kept")["n_duplicates"] == 10


def test_malformed_json_names_line_and_ingests_nothing(tmp_path: Path, store: stores.Store) -> None:
    lines = [json.dumps(r) for r in arith_rows(5000)]
    lines[4321] = '{"prompt": "1 + 1 =", "completion": " 2",'
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(IngestError, match=r"bad\.jsonl:4322:\d+: invalid JSON"):
        ingest(store, path, "bad", batch_rows=1000)
    assert store.datasets().height == 0
    assert store.sql("SELECT count(*) AS n FROM samples")["n"][0] == 0
    assert _files_under(store) == []
    assert store.runs("ingest")["status"].to_list() == ["failed"]


def test_invalid_utf8_names_line_and_byte_offset(tmp_path: Path, store: stores.Store) -> None:
    good = b"".join(json.dumps(r).encode() + b"\n" for r in arith_rows(3))
    path = tmp_path / "enc.jsonl"
    path.write_bytes(good + b'{"prompt": "caf\xe9", "completion": "x"}\n')
    with pytest.raises(IngestError, match=rf"enc\.jsonl:4: invalid UTF-8 at byte {len(good) + 15} of the file"):
        ingest(store, path, "enc")
    assert store.datasets().height == 0


def test_missing_field_lists_available_fields(tmp_path: Path, store: stores.Store) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", arith_rows(3))
    with pytest.raises(IngestError, match=r"'body' \(--text-field\) not found; available fields: prompt, completion, op, idx"):
        ingest(store, path, "m", text_field="body")


def test_null_text_names_record(tmp_path: Path, store: stores.Store) -> None:
    rows = [{"text": "a"}, {"text": "b"}, {"text": None}]
    with pytest.raises(IngestError, match=r"record 3 has no value for 'text'"):
        ingest(store, write_jsonl(tmp_path / "n.jsonl", rows), "n")
    assert _files_under(store) == []


@pytest.mark.parametrize("content", ["", "prompt,completion\n", "\n\n"])
def test_empty_input_is_an_error(tmp_path: Path, store: stores.Store, content: str) -> None:
    path = tmp_path / ("e.csv" if "," in content else "e.jsonl")
    path.write_text(content)
    with pytest.raises(IngestError, match="empty input"):
        ingest(store, path, "e")
    assert store.datasets().height == 0


def test_reingest_refused_unless_replace(tmp_path: Path, store: stores.Store) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", arith_rows(10))
    first = ingest(store, path, "r")
    with pytest.raises(DatasetExistsError, match="--replace"):
        ingest(store, path, "r")
    second = ingest(store, write_jsonl(tmp_path / "r2.jsonl", arith_rows(4)), "r", replace=True)
    assert store.dataset_info("r")["n_samples"] == 4
    assert not store.shard_dir("samples", first.run_id).exists()
    statuses = dict(store.sql("SELECT run_id, status FROM runs").iter_rows())
    assert statuses == {first.run_id: "superseded", second.run_id: "finished"}
    assert store.sql("SELECT count(*) AS n FROM samples")["n"][0] == 4


def test_type_change_after_sample_is_handled(tmp_path: Path, store: stores.Store) -> None:
    rows = [{"text": f"t{i}", "meta": i} for i in range(30000)] + [{"text": "last", "meta": "not-a-number"}]
    res = ingest(store, write_jsonl(tmp_path / "ty.jsonl", rows), "ty")
    assert res.n_samples == 30001
    meta = store.read_samples("ty")["meta"]  # mixed int/string values are kept as JSON text
    assert (meta[0], meta[-1]) == ("0", '"not-a-number"')


def test_csv_error_names_file(tmp_path: Path, store: stores.Store) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(IngestError, match=r"bad\.csv:3: expected 2 fields \(as in the header\), found 3"):
        ingest(store, path, "c")


def test_unknown_suffix_asks_for_format(tmp_path: Path, store: stores.Store) -> None:
    path = tmp_path / "data.txt"
    path.write_text("x\n")
    with pytest.raises(IngestError, match="--format"):
        ingest(store, path, "x")


def test_run_records_config_and_versions(tmp_path: Path, store: stores.Store) -> None:
    res = ingest(store, write_jsonl(tmp_path / "c.jsonl", arith_rows(3)), "c", drop_duplicates=True)
    run = store.get_run(res.run_id)
    assert run["status"] == "finished" and run["kind"] == "ingest" and run["dataset"] == "c"
    assert run["config"]["drop_duplicates"] is True and run["config"]["format"] == "jsonl"
    assert {"python", "duckdb", "polars", "pyarrow"} <= set(run["versions"])


def test_datasetdict_folder_picks_split(tmp_path: Path, store: stores.Store) -> None:
    import datasets

    dd = datasets.DatasetDict(
        train=datasets.Dataset.from_list(arith_rows(6)), test=datasets.Dataset.from_list(arith_rows(3, 100))
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    assert ingest(store, tmp_path / "dd", "tr").n_samples == 6
    assert ingest(store, tmp_path / "dd", "te", split="test").n_samples == 3
    with pytest.raises(IngestError, match="splits .*train.*; choose one with --split"):
        ingest(store, tmp_path / "dd", "x", split="validation")


def test_tabular_rows_with_the_same_label_get_distinct_ids(tmp_path: Path) -> None:
    """Without text roles every field is content: rows sharing only a label are not duplicates."""
    src = tmp_path / "tab.csv"
    src.write_text("a,b,label\n1,2.5,0\n3,4.0,0\n1,2.5,0\n")
    store = stores.open(tmp_path / "s")
    res = ingest(store, src, "tab")
    assert res.n_samples == 3 and res.n_duplicates == 1  # only the repeated row
    df = store.read_samples("tab")
    assert df["sample_id"][0] == stores.sample_id({"a": 1, "b": 2.5, "label": 0})


def test_jsonl_integers_with_negatives_stay_bigint(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "k": -1 if i % 2 else i} for i in range(10)]
    store = stores.open(tmp_path / "s")
    ingest(store, write_jsonl(tmp_path / "x.jsonl", rows), "x")
    assert store.sql("SELECT typeof(k) AS t FROM samples LIMIT 1")["t"][0] == "BIGINT"
    assert sorted(store.sql("SELECT k FROM samples")["k"].to_list()) == sorted(r["k"] for r in rows)
    big = [{"text": f"b{i}", "k": (-1 if i % 2 else 2**70)} for i in range(4)]
    ingest(store, write_jsonl(tmp_path / "big.jsonl", big), "big")  # too big for BIGINT: still ingests
    assert store.sql("SELECT count(*) AS n FROM samples WHERE dataset = 'big'")["n"][0] == 4
