"""The worked-example notebooks execute from top to bottom without errors (slow: a few minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_three_notebooks_with_stored_outputs() -> None:
    import nbformat

    assert {p.name for p in NOTEBOOKS} >= {"sql_over_influence_scores.ipynb", "curating_noisy_cot.ipynb",
                                           "write_your_own_filter.ipynb"}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.outputs for c in code), f"{path.name}: a code cell has no stored output"
        assert not any(o.output_type == "error" for c in code for o in c.outputs), path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parents[1])}}).execute()  # raises on a failing cell
