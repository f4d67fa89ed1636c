"""The ``executor`` section of pipeline configs: the executor it names, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.config import ConfigError, load_config, settings_help
from stores.executors import LocalExecutor, RayExecutor


@pytest.mark.parametrize("pipeline", ["noisy_cot", "contamination"])
def test_a_pipeline_config_names_its_executor(tmp_path: Path, pipeline: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"pipeline: {pipeline}\nexecutor:\n  kind: ray\n  ray_address: auto\n  workers: 3\n")
    executor = load_config(path).executor.make()
    assert isinstance(executor, RayExecutor) and (executor.address, executor.workers) == ("auto", 3)
    path.write_text(f"pipeline: {pipeline}\n")
    assert isinstance(load_config(path).executor.make(), LocalExecutor)
    assert "executor.kind" in settings_help(type(load_config(path)))


def test_a_bad_executor_is_an_error_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("pipeline: contamination\nexecutor:\n  kind: slurm\n")
    with pytest.raises(ConfigError, match="executor.kind"):
        load_config(path)
    path.write_text("pipeline: noisy_cot\nexecutor:\n  workers: 0\n")
    with pytest.raises(ConfigError, match="executor.workers"):
        load_config(path)
