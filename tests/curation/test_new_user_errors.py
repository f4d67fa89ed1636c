"""What a new user hits at the command line: one clear line instead of a traceback, honest help text.

Each test reproduces a failure found by trying the CLI as a new user (issue 10) and runs the real
entry point (:func:`curation.cli.main`), so the error handling is the one a user sees.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import torch

import stores
from curation.cli import main
from stores.progress import StepProgress, progress_mode
from tests.helpers import save_tiny_lm, write_jsonl


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """Run ``curation ARGS`` in-process as the console script does: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["curation", *args])
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else int(code)), captured.out, captured.err


def one_line_error(err: str) -> str:
    """The error a user sees, checked to be a single line without a traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture
def lm_store(tmp_path: Path) -> tuple[Path, Path]:
    """A store with datasets train (12 samples), q (2) and empty (0), and a tiny LM with 32 positions."""
    store = tmp_path / "st"
    s = stores.open(store)
    rows = [{"prompt": f"{i}+{i % 5}=", "completion": f" {i + i % 5}"} for i in range(12)]
    from stores.curate import curate
    from stores.ingest import ingest

    ingest(s, write_jsonl(tmp_path / "train.jsonl", rows), "train")
    ingest(s, write_jsonl(tmp_path / "q.jsonl", rows[:2]), "q")
    curate(s, "empty", "train", flag_runs=[], where="false")  # a 0-row dataset, as a strict --where makes
    return store, save_tiny_lm(tmp_path / "lm", n_positions=32)


def _attribute(store: Path, model: Path, *extra: str) -> list[str]:
    return ["attribute", "--train", "train", "--queries", "q", "--model", str(model), "--batch-size", "4",
            "--store", str(store), *extra]


def _behaviours(store: Path) -> list[str]:
    return stores.open(store).sql("SELECT name FROM behaviours")["name"].to_list()


# ---------------------------------------------------------------------- model folders
def test_missing_model_folder_says_so(lm_store, tmp_path, monkeypatch, capsys) -> None:
    store, _ = lm_store
    code, _, err = run_main(monkeypatch, capsys, *_attribute(store, tmp_path / "no-such-model"))
    line = one_line_error(err)
    assert code == 1 and "no-such-model" in line and "no such folder" in line and "tokenizer" not in line
    assert _behaviours(store) == []


def test_model_folder_without_weights_says_so(lm_store, tmp_path, monkeypatch, capsys) -> None:
    store, lm = lm_store
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((lm / "config.json").read_text())
    code, _, err = run_main(monkeypatch, capsys, *_attribute(store, bare))
    assert code == 1 and "no weights found" in one_line_error(err)


def test_pickle_checkpoint_with_an_unsafe_global_is_refused_in_one_line(lm_store, tmp_path, monkeypatch,
                                                                        capsys) -> None:
    store, lm = lm_store
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text((lm / "config.json").read_text())
    torch.save({"weights": torch.zeros(2), "hook": print}, folder / "pytorch_model.bin")  # an unsafe global
    code, _, err = run_main(monkeypatch, capsys, *_attribute(store, folder))
    line = one_line_error(err)
    assert code == 1 and "pytorch_model.bin" in line and "safetensors" in line


def test_missing_tokenizer_is_one_line(lm_store, tmp_path, monkeypatch, capsys) -> None:
    store, lm = lm_store
    code, _, err = run_main(monkeypatch, capsys, *_attribute(store, lm, "--tokenizer", str(tmp_path)))
    assert code == 1 and "tokenizer" in one_line_error(err)


# ---------------------------------------------------------------------- context length
def test_max_length_defaults_to_the_model_context(lm_store, monkeypatch, capsys) -> None:
    store, lm = lm_store
    code, out, err = run_main(monkeypatch, capsys, *_attribute(store, lm))
    assert code == 0, err
    assert "32 tokens per sample" in out
    assert _behaviours(store) == ["q-completions"]


def test_max_length_beyond_the_model_context_is_refused(lm_store, monkeypatch, capsys) -> None:
    store, lm = lm_store
    code, _, err = run_main(monkeypatch, capsys, *_attribute(store, lm, "--max-length", "256"))
    line = one_line_error(err)
    assert code == 1 and "--max-length 256" in line and "32 positions" in line
    assert _behaviours(store) == []  # a failed run registers no behaviour
    assert stores.open(store).runs("attribute").height == 0


# ---------------------------------------------------------------------- empty inputs
def test_empty_training_set_is_one_line(lm_store, monkeypatch, capsys) -> None:
    store, lm = lm_store
    args = _attribute(store, lm)
    args[args.index("train")] = "empty"
    code, _, err = run_main(monkeypatch, capsys, *args)
    line = one_line_error(err)
    assert code == 1 and "'empty' has no samples" in line
    assert _behaviours(store) == []


def test_empty_query_set_is_one_line(lm_store, monkeypatch, capsys) -> None:
    store, lm = lm_store
    args = _attribute(store, lm)
    args[args.index("q")] = "empty"
    code, _, err = run_main(monkeypatch, capsys, *args)
    assert code == 1 and "'empty' has no samples" in one_line_error(err)
    assert _behaviours(store) == []


# ---------------------------------------------------------------------- help and version
def test_help_has_no_bool_placeholders_and_plain_usage(monkeypatch, capsys) -> None:
    code, out, _ = run_main(monkeypatch, capsys, "ingest", "--help")
    assert code == 0
    assert "<bool>" not in out and "{path}" not in out
    assert "Usage: curation ingest [OPTIONS] PATH" in out
    assert "--replace" in out and "--drop-duplicates" in out


def test_attribute_help_says_behaviour_or_queries_is_required(monkeypatch, capsys) -> None:
    code, out, _ = run_main(monkeypatch, capsys, "attribute", "--help")
    text = " ".join(out.split())
    assert code == 0 and "One of --behaviour (a registered behaviour) or --queries" in text


def test_version(monkeypatch, capsys) -> None:
    from stores.store import package_versions

    code, out, _ = run_main(monkeypatch, capsys, "--version")
    assert code == 0 and out.strip() == f"curation {package_versions()['curation']}"


def test_long_errors_are_not_wrapped_at_80_columns(tmp_path, monkeypatch, capsys) -> None:
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "input.jsonl"
    deep.parent.mkdir(parents=True)
    deep.write_text('{"text": "a"}\n{"text": \n')
    code, _, err = run_main(monkeypatch, capsys, "ingest", str(deep), "-d", "x", "--store", str(tmp_path / "st"))
    line = one_line_error(err)
    assert code == 1 and len(line) > 120 and str(deep) in line


# ---------------------------------------------------------------------- pipelines
def test_budget_of_one_is_refused_before_any_work(tmp_path, monkeypatch, capsys) -> None:
    cfg = tmp_path / "p.yaml"
    cfg.write_text("name: p\nfilter: {budget: 1.0}\n")
    code, _, err = run_main(monkeypatch, capsys, "run", str(cfg), "--store", str(tmp_path / "st"))
    assert code == 1 and "Traceback" not in err  # a config error: the file, then one line per key at fault
    assert err.startswith(f"error: {cfg}: invalid pipeline config")
    assert "filter.budget" in err and "leave nothing to retrain on" in err
    assert not (tmp_path / "st").exists()


# ---------------------------------------------------------------------- progress when not a terminal
class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_prints_plain_lines_when_not_a_terminal(monkeypatch) -> None:
    monkeypatch.delenv("CURATION_PROGRESS", raising=False)
    stream = io.StringIO()
    with StepProgress("scores", 10, unit="samples", stream=stream, interval=0.0) as bar:
        for _ in range(10):
            bar.advance(1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # one per advance, and the final line
    assert lines[0].startswith("scores: 1/10 samples (10%)") and lines[-1].startswith("scores: 10/10 samples (100%)")
    assert "\x1b" not in stream.getvalue()  # plain text, no terminal codes


def test_progress_lines_are_periodic_not_per_step(monkeypatch) -> None:
    monkeypatch.delenv("CURATION_PROGRESS", raising=False)
    stream = io.StringIO()
    with StepProgress("train", 1000, unit="steps", stream=stream, interval=3600.0) as bar:
        for _ in range(1000):
            bar.advance(1)
    assert stream.getvalue().count("\n") == 1  # only the final line within the interval


def test_progress_mode_follows_the_stream_and_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("CURATION_PROGRESS", raising=False)
    assert progress_mode(True, io.StringIO()) == "lines"
    assert progress_mode(True, _Tty()) == "bar"
    assert progress_mode(False, _Tty()) == "off"
    monkeypatch.setenv("CURATION_PROGRESS", "off")
    assert progress_mode(True, _Tty()) == "off"
    monkeypatch.setenv("CURATION_PROGRESS", "sometimes")
    with pytest.raises(ValueError, match="CURATION_PROGRESS"):
        progress_mode(True, io.StringIO())


def test_resumed_progress_counts_only_new_work_in_its_rate(monkeypatch) -> None:
    monkeypatch.delenv("CURATION_PROGRESS", raising=False)
    bar = StepProgress("x", 100, done=90, stream=io.StringIO(), interval=3600.0)
    assert bar.rate == 0 and bar.count == 90
    bar.close()
    assert json.dumps(bar.line())  # a plain string


def test_loading_a_model_prints_no_third_party_progress_bars(tmp_path, capfd) -> None:
    from transformers.utils import logging as hf_logging

    from attribution.models import load_causal_lm, load_tokenizer

    folder = save_tiny_lm(tmp_path / "lm")
    hf_logging.enable_progress_bar()  # as a fresh process has it
    capfd.readouterr()
    load_causal_lm(folder)
    load_tokenizer(folder)
    captured = capfd.readouterr()
    assert "Loading" not in captured.err + captured.out and "%|" not in captured.err + captured.out
