"""Ingest on a real local Ray cluster: parts read by workers, the dataset a local ingest writes, the same errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import stores
import stores.ingest_parallel as parallel
from curation.cli import app
from stores.errors import IngestError
from stores.executors import RayExecutor
from stores.ingest import ingest

ROWS = "SELECT * FROM samples ORDER BY ordinal"


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows(n: int) -> list[dict]:
    return [{"text": f"doc {i} " + "w" * (i % 37), "label": i % 3, "meta": {"n": i}} for i in range(n)]


def _both(tmp_path: Path, path: Path, **kwargs) -> tuple:
    local = ingest(stores.open(tmp_path / "local"), path, "d", **kwargs)
    on_ray = ingest(stores.open(tmp_path / "ray"), path, "d", executor=RayExecutor(workers=2), **kwargs)
    return local, on_ray, stores.open(tmp_path / "local"), stores.open(tmp_path / "ray")


def test_jsonl_parts_on_ray_give_the_local_dataset(tmp_path: Path, ray_cluster, monkeypatch) -> None:
    monkeypatch.setattr(parallel, "PART_BYTES", 20_000)  # a few hundred lines per part: 5+ parts
    rows = _rows(1500)
    path = _jsonl(tmp_path / "in.jsonl", rows + rows[100:160] + rows[:3])
    assert len(parallel.split_input(path, "jsonl")) >= 5
    local, on_ray, ls, rs = _both(tmp_path, path, drop_duplicates=True, batch_rows=400)
    assert (on_ray.n_samples, on_ray.n_duplicates, on_ray.n_rows_read) == (1500, 63, 1563)
    assert (local.n_samples, local.n_duplicates, local.fingerprint, local.fields) == \
        (on_ray.n_samples, on_ray.n_duplicates, on_ray.fingerprint, on_ray.fields)
    assert rs.sql(ROWS).equals(ls.sql(ROWS))
    assert rs.dataset_info("d")["n_samples"] == 1500
    assert not (rs.root / ".tmp" / f"ingest-{on_ray.run_id}").exists()  # stage files removed


def test_a_parquet_folder_is_read_file_by_file(tmp_path: Path, ray_cluster) -> None:
    folder = tmp_path / "pq"
    folder.mkdir()
    rows = _rows(900)
    for i in range(3):
        pq.write_table(pa.Table.from_pylist(rows[i * 300:(i + 1) * 300]), folder / f"part-{i}.parquet")
    local, on_ray, ls, rs = _both(tmp_path, folder)
    assert on_ray.n_samples == 900 and local.fingerprint == on_ray.fingerprint
    assert rs.sql(ROWS).equals(ls.sql(ROWS))


def test_errors_in_a_later_part_read_as_a_local_ingests(tmp_path: Path, ray_cluster, monkeypatch) -> None:
    monkeypatch.setattr(parallel, "PART_BYTES", 10_000)
    rows = _rows(800)
    rows[650]["text"] = None
    missing = _jsonl(tmp_path / "missing.jsonl", rows)
    rows[650]["text"] = 17
    wrong = _jsonl(tmp_path / "wrong.jsonl", rows)
    for path in (missing, wrong):
        messages = []
        for name, executor in (("local", None), ("ray", RayExecutor(workers=2))):
            with pytest.raises(IngestError) as err:
                ingest(stores.open(tmp_path / f"{path.stem}-{name}"), path, "d", executor=executor)
            messages.append(str(err.value))
        assert messages[0] == messages[1] and ("651" in messages[0])
        assert stores.open(tmp_path / f"{path.stem}-ray").sql("SELECT count(*) FROM shards").item() == 0


def test_the_ingest_command_takes_an_executor(tmp_path: Path, ray_cluster) -> None:
    path = _jsonl(tmp_path / "in.jsonl", _rows(50))
    res = CliRunner().invoke(app, ["ingest", str(path), "-d", "d", "--executor", "ray", "--workers", "2",
                                   "--store", str(tmp_path / "st")])
    assert res.exit_code == 0, res.output
    assert stores.open(tmp_path / "st").get_run(stores.open(tmp_path / "st").runs("ingest")["run_id"][0])[
        "config"]["executor"] == "ray"
