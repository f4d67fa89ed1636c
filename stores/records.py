"""Values that catalog records hold: naive UTC timestamps, package version stamps, fetched rows."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from importlib import metadata

_VERSIONED_PACKAGES = (
    "curation",
    "duckdb",
    "polars",
    "pyarrow",
    "torch",
    "transformers",
    "kronfluence",
)


def first_row(rows: list[tuple]) -> tuple | None:
    """First row of a fully fetched result, or None (DuckDB wants results fetched to the end)."""
    return rows[0] if rows else None


def utcnow() -> datetime:
    """Current UTC time without tzinfo (the catalog stores naive UTC timestamps)."""
    return datetime.now(UTC).replace(tzinfo=None)


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run's results depend on, for the run record."""
    import platform

    out = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out
