"""Ingest edge cases a new user hits (issue 10): wrong-typed role values, nested and drifting
metadata, broken gzip, ragged CSV. Every failure is one IngestError naming the file (and line)
and leaves nothing behind; every success keeps the values exactly."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import stores
from stores.errors import IngestError
from stores.ingest import ingest
from tests.helpers import write_jsonl

REPO = Path(__file__).resolve().parents[2]


def _assert_nothing_left(store: stores.Store) -> None:
    assert store.datasets().height == 0
    assert sorted(p for p in store.data_dir.rglob("*") if p.is_file()) == []
    assert set(store.runs("ingest")["status"].to_list()) <= {"failed"}


# ---------------------------------------------------------------------- 1. role field types
@pytest.mark.parametrize(
    ("value", "got"),
    [(5, "a number"), (1.5, "a number"), (True, "a boolean"), (["x"], "an array"), ({"a": 1}, "an object")],
)
def test_non_string_text_names_file_line_and_field(tmp_path: Path, store: stores.Store, value: object, got: str) -> None:
    rows = [{"text": "row 0"}, {"text": "row 1"}, {"text": value}, {"text": "row 3"}]
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    with pytest.raises(IngestError, match=rf"t\.jsonl:3: field 'text' must be a string, got {got}") as info:
        ingest(store, path, "t")
    assert "\n" not in str(info.value)
    _assert_nothing_left(store)


def test_line_cut_short_names_its_column(tmp_path: Path, store: stores.Store) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "a"}\n{"text": \n')
    with pytest.raises(IngestError, match=r"c\.jsonl:2:10: invalid JSON: Expecting value"):
        ingest(store, path, "c")


def test_line_numbers_count_blank_lines(tmp_path: Path, store: stores.Store) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b"}\n{"text": 7}\n')
    with pytest.raises(IngestError, match=r"b\.jsonl:4: field 'text' must be a string, got a number \(7\)"):
        ingest(store, path, "b")


def test_non_string_text_past_the_type_sample_is_caught(tmp_path: Path, store: stores.Store) -> None:
    rows = [{"text": f"row {i}"} for i in range(25_000)] + [{"text": 12}]
    path = write_jsonl(tmp_path / "late.jsonl", rows)
    with pytest.raises(IngestError, match=r"late\.jsonl:25001: field 'text' must be a string, got a number"):
        ingest(store, path, "late", batch_rows=5_000)
    _assert_nothing_left(store)


def test_all_numeric_text_is_an_error(tmp_path: Path, store: stores.Store) -> None:
    path = write_jsonl(tmp_path / "n.jsonl", [{"text": 1}, {"text": 2}])
    with pytest.raises(IngestError, match=r"n\.jsonl:1: field 'text' must be a string, got a number"):
        ingest(store, path, "n")


def test_prompt_completion_with_own_names(tmp_path: Path, store: stores.Store) -> None:
    rows = [{"q": "1+1=", "a": "2"}, {"q": "2+2=", "a": 4}]
    path = write_jsonl(tmp_path / "qa.jsonl", rows)
    with pytest.raises(IngestError, match=r"qa\.jsonl:2: field 'a' \(--completion-field\) must be a string, got a number \(4\)"):
        ingest(store, path, "qa", prompt_field="q", completion_field="a")
    _assert_nothing_left(store)


def test_non_string_text_in_gzip(tmp_path: Path, store: stores.Store) -> None:
    path = tmp_path / "z.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write('{"text": "a"}\n{"text": false}\n')
    with pytest.raises(IngestError, match=r"z\.jsonl\.gz:2: field 'text' must be a string, got a boolean"):
        ingest(store, path, "z")


# DuckDB guesses a type per column from the strings in it; a column of one lookalike kind is the trap
LOOKALIKES = [["5", "6"], ["007", "010"], ["1e3", "-0.50"], ["true", "false"], ["2024-01-01", "2024-01-02"],
              ["2024-01-01T10:00:00Z", "2024-02-01T00:00:00.5+02:00"], ["12:30:00", "01:02:03"],
              ["c3a7a1d4-6f3e-4f0e-9b5a-5b1f0b9a8c11", "00000000-0000-0000-0000-000000000000"],
              ["[1, 2]", '{"a": 1}'], ["null", "NaN"]]


@pytest.mark.parametrize("values", LOOKALIKES, ids=lambda v: v[0])
def test_strings_that_look_like_other_types_stay_strings_jsonl(tmp_path: Path, store: stores.Store, values: list[str]) -> None:
    ingest(store, write_jsonl(tmp_path / "s.jsonl", [{"text": s, "label": s} for s in values]), "s")
    df = store.read_samples("s")
    assert df["text"].to_list() == values
    assert df["label"].to_list() == values
    assert df["sample_id"].to_list() == [stores.sample_id({"text": s, "label": s}) for s in values]


@pytest.mark.parametrize("values", LOOKALIKES, ids=lambda v: v[0])
def test_strings_that_look_like_other_types_stay_strings_csv(tmp_path: Path, store: stores.Store, values: list[str]) -> None:
    path = tmp_path / "s.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", "completion", "n"])
        w.writerows([v, v, i] for i, v in enumerate(values * 3))
    ingest(store, path, "s")
    df = store.read_samples("s")
    assert df["prompt"].to_list() == values * 3 and df["completion"].to_list() == values * 3
    assert df["sample_id"].to_list() == [stores.sample_id({"prompt": s, "completion": s}) for s in values * 3]


def test_null_or_missing_text_keeps_its_error(tmp_path: Path, store: stores.Store) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"text": "a"}\n{"other": 1}\n')
    with pytest.raises(IngestError, match=r"record 2 has no value for 'text'"):
        ingest(store, path, "m")
    _assert_nothing_left(store)


def test_labels_of_one_scalar_type_and_nulls_ingest(tmp_path: Path, store: stores.Store) -> None:
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": None}, {"text": "c", "label": 2.5},
            {"text": "d", "label": 3}]
    ingest(store, write_jsonl(tmp_path / "l.jsonl", rows), "l")
    df = store.read_samples("l")
    assert df["label"].to_list() == [1.0, None, 2.5, 3.0]
    bools = [{"text": "a", "label": True}, {"text": "b", "label": False}]
    ingest(store, write_jsonl(tmp_path / "lb.jsonl", bools), "lb")
    df = store.read_samples("lb")
    assert df["label"].to_list() == [True, False]
    assert df["sample_id"][0] == stores.sample_id({"text": "a", "label": True})


def test_label_that_is_a_list_names_line(tmp_path: Path, store: stores.Store) -> None:
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": [1, 2]}]
    with pytest.raises(IngestError, match=r"l\.jsonl:2: field 'label' must be a single string, number or boolean, got an array"):
        ingest(store, write_jsonl(tmp_path / "l.jsonl", rows), "l")
    _assert_nothing_left(store)


def test_label_mixing_types_names_both_lines(tmp_path: Path, store: stores.Store) -> None:
    rows = [{"text": "a", "y": 1}, {"text": "b", "y": None}, {"text": "c", "y": "pos"}]
    path = write_jsonl(tmp_path / "l.jsonl", rows)
    with pytest.raises(IngestError, match=r"l\.jsonl:3: field 'y' \(--label-field\) is a string here but a number on line 1"):
        ingest(store, path, "l", label_field="y")
    _assert_nothing_left(store)


def test_label_type_change_past_the_sample(tmp_path: Path, store: stores.Store) -> None:
    rows = [{"text": f"t{i}", "label": i % 3} for i in range(25_000)]
    ok = rows + [{"text": "x", "label": 0.5}]  # int then float: one numeric type, re-detected
    ingest(store, write_jsonl(tmp_path / "ok.jsonl", ok), "ok")
    assert store.read_samples("ok")["label"][-1] == 0.5
    nulls = [{"text": f"t{i}", "label": None} for i in range(25_000)] + [{"text": "x", "label": 1}]
    ingest(store, write_jsonl(tmp_path / "nulls.jsonl", nulls), "nulls")
    assert store.read_samples("nulls")["label"][-1] == 1
    bad = rows + [{"text": "x", "label": "neg"}]
    with pytest.raises(IngestError, match=r"bad\.jsonl:25001: field 'label' is a string here but a number on line 1"):
        ingest(store, write_jsonl(tmp_path / "bad.jsonl", bad), "bad")


def test_parquet_text_column_of_wrong_type(tmp_path: Path, store: stores.Store) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"text": pa.array([1, 2], pa.int64())}), path)
    with pytest.raises(IngestError, match=r"p\.parquet: field 'text' has type BIGINT; text must be a string"):
        ingest(store, path, "p")
    _assert_nothing_left(store)


# ---------------------------------------------------------------------- 2. nested metadata
NESTED = [{"text": "a", "meta": {"a": [1, 2], "src": "x"}, "tags": ["p", "q"]},
          {"text": "b", "meta": {"a": [], "src": "y"}, "tags": []},
          {"text": "c", "meta": None, "tags": None}]


def _nested_inputs(tmp_path: Path) -> dict[str, Path]:
    import datasets

    paths = {"jsonl": write_jsonl(tmp_path / "n.jsonl", NESTED)}
    pq.write_table(pa.Table.from_pylist(NESTED), tmp_path / "n.parquet")
    paths["parquet"] = tmp_path / "n.parquet"
    datasets.Dataset.from_list(NESTED).save_to_disk(str(tmp_path / "hf"))
    paths["hf"] = tmp_path / "hf"
    return paths


def test_nested_metadata_is_kept_and_queryable(tmp_path: Path, store: stores.Store) -> None:
    for fmt, path in _nested_inputs(tmp_path).items():
        ingest(store, path, fmt)
        got = store.sql(f"SELECT meta.a AS a, meta.src AS src, tags FROM samples WHERE dataset = '{fmt}' ORDER BY ordinal")
        assert got["a"].to_list() == [[1, 2], [], None], fmt
        assert got["src"].to_list() == ["x", "y", None], fmt
        assert got["tags"].to_list() == [["p", "q"], [], None], fmt
        ids = store.read_samples(fmt)["sample_id"].to_list()
        assert ids == [stores.sample_id({"text": t}) for t in "abc"], fmt
    schema = pq.read_schema(store.dataset_files("jsonl")[0])
    assert pa.types.is_struct(schema.field("meta").type) and pa.types.is_list(schema.field("tags").type)


def test_nested_fields_in_tabular_data_give_the_same_ids_from_jsonl_and_parquet(tmp_path: Path, store: stores.Store) -> None:
    rows = [{"x": 1, "meta": {"a": [1, 2]}}, {"x": 1, "meta": {"a": [1, 3]}}, {"x": 1, "meta": {"a": [1, 2]}}]
    res = ingest(store, write_jsonl(tmp_path / "t.jsonl", rows), "tj")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    ingest(store, tmp_path / "t.parquet", "tp")
    assert res.n_duplicates == 1  # the nested field is content: rows 1 and 3 are the same, row 2 is not
    assert store.read_samples("tj")["sample_id"].to_list() == store.read_samples("tp")["sample_id"].to_list()


def test_nested_metadata_survives_curate(tmp_path: Path, store: stores.Store) -> None:
    from stores.curate import curate

    ingest(store, write_jsonl(tmp_path / "n.jsonl", NESTED), "n")
    curate(store, "small", "n", where="text <> 'b'")
    got = store.sql("SELECT meta.a AS a FROM samples WHERE dataset = 'small' ORDER BY ordinal")
    assert got["a"].to_list() == [[1, 2], None]


def test_field_that_is_always_null_is_kept(tmp_path: Path, store: stores.Store) -> None:
    rows = [{"text": "a", "x": None, "label": None}, {"text": "b", "x": None}]
    res = ingest(store, write_jsonl(tmp_path / "z.jsonl", rows), "z")
    df = store.read_samples("z")
    assert df["x"].to_list() == [None, None] and df["label"].to_list() == [None, None]
    assert res.fields[1]["role"] == "label"
    assert df["sample_id"][0] == stores.sample_id({"text": "a", "label": None})


# ---------------------------------------------------------------------- 3. schema drift
def test_metadata_drift_is_kept_as_json_text(tmp_path: Path, store: stores.Store) -> None:
    rows = [{"text": "a", "m": 1, "meta": {"k": 1}, "l": [1]},
            {"text": "b", "m": "x", "meta": {"k": "one"}, "l": ["x"]},
            {"text": "c", "m": [1, 2], "meta": {"k": [1]}, "l": [{"z": 1}]}]
    ingest(store, write_jsonl(tmp_path / "d.jsonl", rows), "d")
    df = store.read_samples("d")
    assert df["m"].to_list() == ["1", '"x"', "[1,2]"]
    assert df["text"].to_list() == ["a", "b", "c"]
    assert df["sample_id"].to_list() == [stores.sample_id({"text": t}) for t in "abc"]
    got = store.sql("SELECT meta.k AS k, l FROM samples WHERE dataset = 'd' ORDER BY ordinal")
    assert got["k"].to_list() == ["1", '"one"', "[1]"]
    assert got["l"].to_list() == [["1"], ['"x"'], ['{"z":1}']]


# ---------------------------------------------------------------------- 4. broken gzip
def _gzip_bytes(lines: list[str]) -> bytes:
    return gzip.compress("".join(lines).encode())


@pytest.mark.parametrize("name", ["t.jsonl.gz", "t.csv.gz"])
def test_truncated_gzip_is_one_clear_error(tmp_path: Path, store: stores.Store, name: str) -> None:
    if name.endswith("jsonl.gz"):
        lines = [json.dumps({"text": f"row {i} " + "w" * (i % 50)}) + "\n" for i in range(50_000)]
    else:
        lines = ["text,n\n"] + [f"row {i} {'w' * (i % 50)},{i}\n" for i in range(50_000)]
    raw = _gzip_bytes(lines)
    path = tmp_path / name
    path.write_bytes(raw[: int(len(raw) * 0.6)])
    with pytest.raises(IngestError, match=rf"{name.replace('.', r'[.]')}: truncated or corrupt gzip stream \(.*\); ") as info:
        ingest(store, path, "t")
    assert "\n" not in str(info.value) and "gzip -t" in str(info.value)
    _assert_nothing_left(store)


@pytest.mark.parametrize("name", ["c.jsonl.gz", "c.csv.gz"])
def test_file_that_is_not_gzip_is_one_clear_error(tmp_path: Path, store: stores.Store, name: str) -> None:
    path = tmp_path / name
    path.write_text('{"text": "a"}\n' if "jsonl" in name else "text\na\n")
    with pytest.raises(IngestError, match=r"truncated or corrupt gzip stream \(.*not .*gzip"):
        ingest(store, path, "c")
    _assert_nothing_left(store)


def _zstd_file(path: Path, text: str) -> Path:
    with pa.CompressedOutputStream(str(path), "zstd") as out:
        out.write(text.encode())
    return path


def test_zstd_csv_and_jsonl_ingest(tmp_path: Path, store: stores.Store) -> None:
    body = "".join(f"row {i} {i * 7919 % 1000},{i},{i / 7}\n" for i in range(20_000))
    ingest(store, _zstd_file(tmp_path / "a.csv.zst", "text,n,x\n" + body), "csv")
    assert store.dataset_info("csv")["n_samples"] == 20_000
    ingest(store, _zstd_file(tmp_path / "a.jsonl.zst", '{"text": "a"}\n{"text": "b"}\n'), "jsonl")
    assert store.read_samples("jsonl")["text"].to_list() == ["a", "b"]


def test_zstd_problems_name_the_line_or_the_stream(tmp_path: Path, store: stores.Store) -> None:
    path = _zstd_file(tmp_path / "n.jsonl.zst", '{"text": "a"}\n{"text": 5}\n')
    with pytest.raises(IngestError, match=r"n\.jsonl\.zst:2: field 'text' must be a string, got a number"):
        ingest(store, path, "n")
    full = _zstd_file(tmp_path / "full.jsonl.zst", "".join(json.dumps({"text": f"row {i}"}) + "\n" for i in range(50_000)))
    cut = tmp_path / "cut.jsonl.zst"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    with pytest.raises(IngestError, match=r"cut\.jsonl\.zst: truncated or corrupt zstd stream \(.*\); .*zstd -t"):
        ingest(store, cut, "cut")
    (tmp_path / "plain.jsonl.zst").write_text('{"text": "a"}\n')
    with pytest.raises(IngestError, match=r"plain\.jsonl\.zst: truncated or corrupt zstd stream"):
        ingest(store, tmp_path / "plain.jsonl.zst", "plain")
    _assert_nothing_left(store)


# ---------------------------------------------------------------------- 5. ragged CSV
@pytest.mark.parametrize(("row", "found"), [("5,6,7", 3), ("5", 1)])
def test_ragged_csv_row_names_line_and_field_counts(tmp_path: Path, store: stores.Store, row: str, found: int) -> None:
    path = tmp_path / "r.csv"
    path.write_text(f"a,b\n1,2\n3,4\n{row}\n8,9\n")
    with pytest.raises(IngestError, match=rf"r\.csv:4: expected 2 fields \(as in the header\), found {found}"):
        ingest(store, path, "r")
    _assert_nothing_left(store)


def test_ragged_csv_line_counts_quoted_newlines(tmp_path: Path, store: stores.Store) -> None:
    path = tmp_path / "q.tsv"
    path.write_text('text\tn\n"two\nlines"\t1\nok\t2\nbad\t3\t4\n')
    with pytest.raises(IngestError, match=r"q\.tsv:5: expected 2 fields \(as in the header\), found 3"):
        ingest(store, path, "q")


def test_ragged_csv_row_after_a_long_field(tmp_path: Path, store: stores.Store) -> None:
    path = tmp_path / "long.csv"
    path.write_text(f"text,n\n{'w' * 200_000},1\nshort,2\nbad,3,4\n")
    with pytest.raises(IngestError, match=r"long\.csv:4: expected 2 fields \(as in the header\), found 3"):
        ingest(store, path, "long")


def test_ragged_csv_row_past_the_sniff_sample(tmp_path: Path, store: stores.Store) -> None:
    lines = ["text,n"] + [f"row {i},{i}" for i in range(30_000)] + ["late,1,2"]
    path = tmp_path / "late.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(IngestError, match=r"late\.csv:30002: expected 2 fields \(as in the header\), found 3"):
        ingest(store, path, "late")
    _assert_nothing_left(store)


# ---------------------------------------------------------------------- the command line
def test_cli_prints_the_one_line_error(tmp_path: Path) -> None:
    raw = _gzip_bytes([json.dumps({"text": f"row {i}"}) + "\n" for i in range(20_000)])
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(raw[: int(len(raw) * 0.6)])
    proc = subprocess.run(
        [sys.executable, "-m", "curation", "ingest", str(path), "-d", "cut", "--store", str(tmp_path / "st")],
        capture_output=True, text=True, cwd=REPO,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "truncated or corrupt gzip stream" in lines[0], proc.stderr


# ---------------------------------------------------------------------- keys past the type sample
@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_a_key_first_seen_after_the_type_sample_is_kept(tmp_path: Path, store: stores.Store, suffix: str) -> None:
    rows = [{"text": f"row {i}"} for i in range(25_000)]
    rows[24_000]["late"] = "only here"
    rows[24_001]["late_num"] = 7
    path = write_jsonl(tmp_path / "late.jsonl", rows)
    if suffix == ".jsonl.gz":
        gz = tmp_path / "late.jsonl.gz"
        gz.write_bytes(gzip.compress(path.read_bytes()))
        path = gz
    res = ingest(store, path, "late")
    assert {"late", "late_num"} <= {f["name"] for f in res.fields}
    got = store.sql("SELECT late, late_num FROM samples WHERE dataset = 'late' AND (late IS NOT NULL "
                    "OR late_num IS NOT NULL) ORDER BY ordinal")
    assert got.rows() == [("only here", None), (None, 7)]
