"""The worked example in docs/pipelines.md runs as printed, on a tiny model, and resumes."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import stores
from stores.ingest import ingest
from tests.helpers import save_tiny_lm, write_jsonl

DOC = Path(__file__).resolve().parents[2] / "docs" / "pipelines.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, "docs/pipelines.md should hold one Python example"
    return blocks[0]


def test_the_docs_pipeline_example_runs_and_resumes(tmp_path: Path) -> None:
    store = stores.open(tmp_path / "st")
    rows = [{"prompt": f"{i}+{i % 5}=", "completion": f"{i + i % 5}", "answer": str(i + i % 5)} for i in range(40)]
    ingest(store, write_jsonl(tmp_path / "t.jsonl", rows[:32]), "mine_train")
    ingest(store, write_jsonl(tmp_path / "q.jsonl", rows[32:]), "mine_test")
    tok_dir = save_tiny_lm(tmp_path / "tok")
    model = SimpleNamespace(model_dump=lambda: {"n_layer": 1, "n_embd": 16, "n_head": 2, "steps": 5, "batch_size": 8,
                                                "max_length": 16})
    cfg = SimpleNamespace(name="mine", seed=0, tokenizer=str(tok_dir), train="mine_train", test="mine_test",
                          answer_field="answer", answer_pattern=r"^(\d+)$", budget=0.25, model=model)
    namespace: dict = {}
    exec(compile(_example(), str(DOC), "exec"), namespace)  # noqa: S102 (our own docs)
    got = namespace["execute"](store, cfg)
    assert set(got) == {"before", "after"} and all(0 <= v <= 1 for v in got.values())
    trains = store.runs("train").height
    assert trains == 2
    assert namespace["execute"](store, cfg) == got and store.runs("train").height == trains  # resumed, not retrained
    curated = [n for n in store.datasets()["name"] if n.startswith("mine_curated_")]
    assert len(curated) == 2 and all(store.dataset_info(n)["n_samples"] == 24 for n in curated)
