"""Synthetic datasets with planted, known problems, for judging filters (TInt traces)."""

from __future__ import annotations

from .tint import (
    NOISE_KINDS,
    TintConfig,
    TintConfigError,
    TintSummary,
    generate_from_config,
    generate_tint,
    generate_tint_test,
    records_table,
    summarize,
    write_jsonl,
    write_parquet,
)
from .tint_traces import CHARSET, DEFAULT_FUNCTIONS, FUNCTIONS, Problem, parse_prompt, run_trace
from .tint_verify import VerifyResult, verify_trace

__all__ = [
    "CHARSET",
    "DEFAULT_FUNCTIONS",
    "FUNCTIONS",
    "NOISE_KINDS",
    "Problem",
    "TintConfig",
    "TintConfigError",
    "TintSummary",
    "VerifyResult",
    "generate_from_config",
    "generate_tint",
    "generate_tint_test",
    "parse_prompt",
    "run_trace",
    "summarize",
    "verify_trace",
    "write_jsonl",
    "write_parquet",
    "records_table",
]
