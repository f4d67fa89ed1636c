"""Shared fixtures: a fresh store per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import stores

os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")  # as attribution/__init__.py: before any torch product


@pytest.fixture
def store(tmp_path: Path) -> stores.Store:
    """A new, empty store in a temp folder."""
    return stores.open(tmp_path / "store")


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray cluster of 2 CPUs for the session (idle, it used 4% of one core here: cheaper than restarts)."""
    ray = pytest.importorskip("ray")
    from stores.executors import RayExecutor

    RayExecutor(num_cpus=2).ray()  # starts it the way --executor ray does without an address
    yield ray
    ray.shutdown()


def ray_task_processes(task_name: str) -> list:
    """Live Ray worker processes running a task named ``task_name`` now (their title is ``ray::<name>``)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if cmd.startswith(f"ray::{task_name}"):
            found.append(proc)
    return found
