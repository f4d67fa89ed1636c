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


def kill_a_running_task(task_name: str = "_call_shard", timeout_s: float = 5.0) -> int | None:
    """SIGKILL one Ray worker running a task named ``task_name`` (title ``ray::<name>``); its pid, or None.

    Polls for up to ``timeout_s`` seconds, as a task may be between shards when this is called.
    """
    import time

    import psutil

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for proc in psutil.process_iter(["cmdline"]):
            if " ".join(proc.info["cmdline"] or []).startswith(f"ray::{task_name}"):
                proc.kill()
                return proc.pid
        time.sleep(0.01)
    return None
