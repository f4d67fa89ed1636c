"""`curation check` on a healthy store and on one with a damaged shard, through the real entry point."""

from __future__ import annotations

from pathlib import Path

import stores
from stores.ingest import ingest
from tests.curation.test_new_user_errors import run_main
from tests.helpers import arith_rows, write_jsonl


def _store(tmp_path: Path) -> Path:
    root = tmp_path / "st"
    ingest(stores.open(root), write_jsonl(tmp_path / "a.jsonl", arith_rows(50)), "a")
    return root


def test_check_of_a_healthy_store_exits_0(tmp_path, monkeypatch, capsys) -> None:
    root = _store(tmp_path)
    code, out, _ = run_main(monkeypatch, capsys, "check", "--store", str(root))
    assert code == 0, out
    assert out.startswith((f"store {root.resolve()}: OK", f"store {root}: OK")), out


def test_check_names_a_truncated_shard_and_exits_1(tmp_path, monkeypatch, capsys) -> None:
    root = _store(tmp_path)
    shard = next((root / "data" / "samples").glob("run=*/part-*.parquet"))
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    code, out, _ = run_main(monkeypatch, capsys, "check", "--store", str(root))
    assert code == 1 and "DAMAGED" in out
    assert any(line.strip().startswith("ERROR") and shard.name in line and "[shard_size]" in line
               for line in out.splitlines()), out
    code, _, err = run_main(monkeypatch, capsys, "sql", "SELECT count(*) FROM samples", "--store", str(root))
    assert code == 1 and "curation check" in err and "Traceback" not in err
