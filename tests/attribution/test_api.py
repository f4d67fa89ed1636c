"""The engine's carriers and homes: Samples, store helpers, EngineConfig help, keys, module structure.

Cheap (no model is trained). The key values are golden: they were computed by the code that wrote
existing stores, so a change here would make those stores recompute instead of resume.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Subset, TensorDataset

import stores
from attribution.config import EngineConfig, field_help
from attribution.data import (
    Samples,
    char_tokenizer,
    completion_dataset_from_store,
    completion_samples,
    tabular_samples,
)
from attribution.keys import (
    array_fingerprint,
    data_fingerprint,
    digest,
    ids_fingerprint,
    model_fingerprint,
)
from attribution.strategies import STRATEGIES, check_strategy
from stores.ingest import ingest
from tests.helpers import write_jsonl

PACKAGE = Path(__file__).resolve().parents[2] / "attribution"


def test_samples_check_lengths_and_take_subsets() -> None:
    ds = TensorDataset(torch.arange(8).reshape(4, 2), torch.tensor([0, 1, 0, 1]))
    s = Samples(ds, ("a", "b", "c", "d"), "digits")
    assert s.ids == ["a", "b", "c", "d"] and len(s) == 4 and s.dataset == "digits"
    sub = s.subset([2, 0])
    assert sub.ids == ["c", "a"] and sub.dataset == "digits" and isinstance(sub.data, Subset)
    assert torch.equal(sub.data[0][0], ds[2][0])
    with pytest.raises(ValueError, match="dataset 'digits' has 4 samples but 3 ids"):
        Samples(ds, ["a", "b", "c"], "digits")
    with pytest.raises(ValueError, match="has 4 samples but 5 ids"):
        Samples(ds, list("abcde"))


def test_store_helpers_give_samples(tmp_path: Path) -> None:
    store = stores.open(tmp_path / "s")
    rows = [{"prompt": f"{i}+1=", "completion": f"{i + 1}"} for i in range(5)]
    ingest(store, write_jsonl(tmp_path / "c.jsonl", rows), "arith")
    tok = char_tokenizer("0123456789+= ")
    data, ids = completion_dataset_from_store(store, "arith", tok, 12)
    s = completion_samples(store, "arith", tok, 12)
    assert s.ids == ids and s.dataset == "arith" and torch.equal(s.data.input_ids, data.input_ids)
    picked = completion_samples(store, "arith", tok, 12, ids=[ids[3], ids[1]])
    assert picked.ids == [ids[3], ids[1]] and torch.equal(picked.data.labels[0], data.labels[3])
    ingest(store, write_jsonl(tmp_path / "t.jsonl", [{"x1": 1.0, "x2": 2.0, "label": 0},
                                                      {"x1": 3.0, "x2": 4.0, "label": 1}]), "tab")
    t, names = tabular_samples(store, "tab")
    assert names == ["x1", "x2"] and t.dataset == "tab" and len(t) == 2
    assert torch.equal(t.data.tensors[0], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))


def test_every_engine_field_has_help() -> None:
    helps = field_help(EngineConfig)
    assert list(helps) == [f.name for f in dataclasses.fields(EngineConfig)]
    assert all(text.strip() for text in helps.values()), helps
    assert "ekfac" in helps["strategy"]


def test_strategies_have_one_home() -> None:
    import attribution.engine as engine

    assert engine.STRATEGIES is STRATEGIES == ("ekfac", "kfac", "diagonal", "identity", "ekfac_cg")
    check_strategy("kfac")
    with pytest.raises(ValueError, match="unknown strategy 'exact'; expected one of ekfac"):
        EngineConfig(strategy="exact")


def test_keys_are_those_existing_stores_were_written_with() -> None:
    assert digest("a", 1, {"b": [2, None]}) == "e0e32344defe553059b4e6f4"
    assert ids_fingerprint(["t0", "t1"]) == "1fcf6d69f68e27eb14c8a0fddaac7423"
    ds = TensorDataset(torch.arange(6).reshape(3, 2), torch.tensor([0, 1, 0]))
    assert data_fingerprint(ds) == "b569a4aac1bcbfb5f062e059fdd8fb40"
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.arange(6.0).reshape(2, 3))
        model.bias.copy_(torch.tensor([0.5, -1.0]))
    assert model_fingerprint(model) == "d101bc20d394878a68acfbcdedbb57c0"
    assert array_fingerprint(np.array([[1, 2], [3, 4]], dtype=np.int64)) == "7b61382e2ef9145a54f58c13"


def _internal_imports(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports (module level or not, TYPE_CHECKING included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            elif node.module and node.module.startswith("attribution"):
                rest = node.module.split(".")[1:]
                found |= {rest[0]} if rest else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("attribution.")}
    return found - {path.stem}


def test_package_has_no_import_cycle_and_small_modules() -> None:
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    graph = {name: _internal_imports(p) & set(modules) for name, p in modules.items()}
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 1:
            raise AssertionError(f"import cycle: {' -> '.join(path[path.index(name):] + [name])}")
        if state.get(name) == 2:
            return
        state[name] = 1
        for dep in sorted(graph[name]):
            visit(dep, path + [name])
        state[name] = 2

    for name in sorted(graph):
        visit(name, [])
    assert "engine" not in graph["candidates"]
    long = {name: n for name, p in modules.items() if (n := len(p.read_text().splitlines())) > 500}
    assert not long, f"modules over 500 lines: {long}"
