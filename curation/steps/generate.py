"""Generated datasets with planted, known problems, written into the store (``curation generate``)."""

from __future__ import annotations

from dataclasses import dataclass

import stores
from curation.datasets import (
    TintConfig,
    TintSummary,
    generate_tint,
    generate_tint_test,
    records_table,
    summarize,
)
from stores.store import validate_name

from ..errors import RequestError
from .records import ingest_records


@dataclass
class GeneratedTint:
    """What :func:`generate_tint_datasets` wrote: dataset names, runs and a summary of the traces."""

    train: str
    test: str | None
    n_test: int
    run_id: str
    ingest_runs: dict[str, str]
    summary: TintSummary


@dataclass
class TintRecords:
    """TInt traces made in memory: training records and noise-free test records (no shared prompt)."""

    train: list[dict]
    test: list[dict]
    cfg: TintConfig
    seed: int


def make_tint_records(n: int, cfg: TintConfig, *, seed: int = 0, test_n: int = 0) -> TintRecords:
    """Generate ``n`` training traces (noise as ``cfg`` says) and ``test_n`` noise-free test traces.

    In memory only, so a bad setting (:class:`~curation.datasets.TintConfigError`, or
    :class:`~curation.errors.RequestError` for the counts) fails before any store is touched.
    """
    if n <= 0:
        raise RequestError(f"--n: expected a positive number of traces, got {n}")
    if test_n < 0:
        raise RequestError(f"--test-n: expected 0 or more test traces, got {test_n}")
    train = generate_tint(n, seed=seed, **cfg.as_dict())
    test = generate_tint_test(
        test_n, seed=seed, functions=cfg.functions, max_digits=cfg.max_digits, min_digits=cfg.min_digits,
        list_len=cfg.list_len, max_lines=cfg.max_lines, exclude_prompts={r["prompt"] for r in train},
    ) if test_n else []
    return TintRecords(train, test, cfg, seed)


def write_tint_datasets(
    store: stores.Store, records: TintRecords, name: str, *, test_name: str | None = None, replace: bool = False,
) -> GeneratedTint:
    """Write generated traces as dataset ``name`` (and ``test_name``, default ``NAME_test``) in one run.

    Both names are checked before either dataset is written.
    """
    names = [validate_name(name)]
    if records.test:
        test_name = validate_name(test_name or f"{name}_test")
        if test_name == name:
            raise RequestError("--test-name: the test set needs a name of its own")
        names.append(test_name)
    config = {"generator": "tint", "n": len(records.train), "test_n": len(records.test), "datasets": names,
              **records.cfg.as_dict()}
    written = ingest_records(store, dict(zip(names, (records.train, records.test), strict=False)), config=config,
                             seed=records.seed, dataset=name, to_table=records_table, replace=replace)
    return GeneratedTint(train=name, test=names[1] if records.test else None, n_test=len(records.test),
                         run_id=written.run_id, ingest_runs=written.ingest_runs, summary=summarize(records.train))
