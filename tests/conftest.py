"""Shared fixtures: a fresh store per test."""

from __future__ import annotations

from pathlib import Path

import pytest

import stores


@pytest.fixture
def store(tmp_path: Path) -> stores.Store:
    """A new, empty store in a temp folder."""
    return stores.open(tmp_path / "store")
