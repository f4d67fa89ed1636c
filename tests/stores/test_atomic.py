"""Atomic writes: a file or folder exists at its final path only once complete, and killed writers'
temps are hidden and cleaned up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stores.atomic import atomic_folder, atomic_write_text, remove_stale_temp_files

ROOT = Path(__file__).resolve().parents[2]


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_text_writes_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "cache.json"
    assert atomic_write_text(target, '{"a": 1}') == target
    assert target.read_text() == '{"a": 1}'
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert _entries(target.parent) == ["cache.json"]


def test_atomic_write_text_failure_leaves_old_file(tmp_path: Path) -> None:
    target = tmp_path / "note.txt"
    atomic_write_text(target, "old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "new \ud800")  # a lone surrogate cannot be encoded as UTF-8
    assert target.read_text() == "old"
    assert _entries(tmp_path) == ["note.txt"]


def test_atomic_folder_appears_complete(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m1"
    with atomic_folder(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".")
        assert not target.exists()  # nothing at the final path while writing
        (tmp / "config.json").write_text("{}")
        (tmp / "nested").mkdir()
        (tmp / "nested" / "w.bin").write_bytes(b"123")
    assert (target / "config.json").read_text() == "{}"
    assert (target / "nested" / "w.bin").read_bytes() == b"123"
    assert _entries(target.parent) == ["m1"]


def test_atomic_folder_failure_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "m1"
    with pytest.raises(RuntimeError, match="midway"), atomic_folder(target) as tmp:
        (tmp / "config.json").write_text("{}")
        raise RuntimeError("midway")
    assert not target.exists()
    assert _entries(tmp_path) == []


def test_atomic_folder_replaces_existing(tmp_path: Path) -> None:
    target = tmp_path / "m1"
    with atomic_folder(target) as tmp:
        (tmp / "config.json").write_text("old")
        (tmp / "cache-of-old.json").write_text("stale")
    with atomic_folder(target) as tmp:
        (tmp / "config.json").write_text("new")
    assert _entries(target) == ["config.json"]
    assert (target / "config.json").read_text() == "new"
    assert _entries(tmp_path) == ["m1"]  # the old folder, moved aside, is deleted


def test_atomic_folder_failed_replacement_keeps_old(tmp_path: Path) -> None:
    target = tmp_path / "m1"
    with atomic_folder(target) as tmp:
        (tmp / "config.json").write_text("old")
    with pytest.raises(OSError, match="disk full"), atomic_folder(target) as tmp:
        (tmp / "config.json").write_text("new")
        raise OSError("disk full")
    assert (target / "config.json").read_text() == "old"
    assert _entries(tmp_path) == ["m1"]


def test_atomic_folder_refuses_to_replace_a_file(tmp_path: Path) -> None:
    target = tmp_path / "m1"
    target.write_text("a file")
    with pytest.raises(FileExistsError, match="not a folder"), atomic_folder(target) as tmp:
        (tmp / "config.json").write_text("{}")
    assert target.read_text() == "a file"
    assert _entries(tmp_path) == ["m1"]


def test_killed_folder_writer_leaves_only_a_hidden_temp_that_cleanup_removes(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m1"
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from stores.atomic import atomic_folder
        with atomic_folder(Path({str(target)!r})) as tmp:
            (tmp / "config.json").write_text("{{}}")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not (target / "config.json").is_file()  # what a resume checks: no model there
    litter = _entries(target.parent)
    assert len(litter) == 1 and litter[0].startswith(".m1.tmp-")
    (target.parent / "keep.txt").write_text("not a temp")
    (target.parent / f".live.tmp-{os.getpid()}-00ff").mkdir()  # a live writer's temp stays
    assert remove_stale_temp_files(tmp_path) == 1
    assert _entries(target.parent) == [f".live.tmp-{os.getpid()}-00ff", "keep.txt"]
