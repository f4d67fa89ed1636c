"""Names in a store: user-given names checked safe for paths and SQL, and generated run ids."""

from __future__ import annotations

import re
import secrets

from .errors import StoreError
from .records import utcnow

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def validate_name(name: str, what: str = "dataset") -> str:
    """Check a dataset/behaviour/curated name is safe in paths and SQL; return it."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise StoreError(
            f"invalid {what} name {name!r}: use 1-128 characters from letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return name


def new_run_id(kind: str) -> str:
    """A readable, unique run id such as ``ingest-20261128-091502-3fa2c1``."""
    return f"{kind}-{utcnow():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
