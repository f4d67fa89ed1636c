"""The noisy-CoT pipeline's data: generated TInt splits, or the user's own store datasets.

Generated (default): noise-free *test* and *dev* problems, then training traces with planted
noise that share no prompt with either; each dataset is regenerated only when its settings change.
From the store (``data.train``/``dev``/``test``): the datasets are checked for the roles the
pipeline needs (prompt/completion for training, a prompt and the answer field for dev and test).
Truth columns (``noise``, ``trace_changed``) are optional: without them the pipeline curates and
evaluates, but has no planted truth to score detection against.
"""

from __future__ import annotations

from dataclasses import dataclass

import stores
from attribution.data import char_tokenizer
from attribution.keys import short_digest
from attribution.models import load_tokenizer

from ...errors import PipelineError
from ...steps.records import generated_key, ingest_records
from ...steps.train import tokenizer_key, trace_tokenizer
from .config import NoisyCoTConfig

TRUTH_COLUMNS = ("noise", "trace_changed")


@dataclass
class Splits:
    """The datasets one pipeline run uses, and whether the training set carries the planted truth."""

    train: str
    test: str
    dev: str | None
    has_truth: bool


def prepare_splits(store: stores.Store, cfg: NoisyCoTConfig) -> Splits:
    """The train/dev/test datasets of a run: generated (and cached) or the configured store datasets."""
    d = cfg.data
    if d.from_store:
        _require_roles(store, d.train, {"prompt", "completion"}, "data.train")
        for key, name in (("data.test", d.test), ("data.dev", d.dev)):
            if name:
                _require_roles(store, name, {"prompt"}, key)
                _require_field(store, name, d.answer_field, key)
        return Splits(d.train, d.test, d.dev, _has_truth(store, d.train))
    test, dev = generate_eval_splits(store, cfg)
    train = generate_training_traces(store, cfg, f"{cfg.name}_train", d.dynamic_rate, d.static_rate)
    return Splits(train, test, dev, True)


def _fields(store: stores.Store, dataset: str) -> dict[str, dict]:
    return {f["name"]: f for f in store.dataset_info(dataset)["fields"]}


def _require_roles(store: stores.Store, dataset: str, roles: set[str], key: str) -> None:
    have = {f["role"] for f in _fields(store, dataset).values() if f["role"]}
    if not roles <= have:
        raise PipelineError(f"{key}: dataset {dataset!r} has roles {sorted(have) or 'none'}, needs "
                            f"{sorted(roles)}; ingest it with --prompt-field/--completion-field")


def _require_field(store: stores.Store, dataset: str, field: str, key: str) -> None:
    if field not in _fields(store, dataset):
        raise PipelineError(f"{key}: dataset {dataset!r} has no field {field!r} with the right answers; "
                            f"set data.answer_field (fields: {', '.join(_fields(store, dataset))})")


def _has_truth(store: stores.Store, dataset: str) -> bool:
    return set(TRUTH_COLUMNS) <= set(_fields(store, dataset))


def generate_eval_splits(store: stores.Store, cfg: NoisyCoTConfig) -> tuple[str, str | None]:
    """The noise-free test and dev splits (disjoint problems; generated once per setting)."""
    from curation.datasets import generate_tint_test, records_table

    d = cfg.data
    test, dev = f"{cfg.name}_test", f"{cfg.name}_dev"
    key = short_digest("tint-eval", d.n_test, d.n_dev, d.functions, d.max_digits, d.min_digits, cfg.seed)
    names = (test, dev) if d.n_dev else (test,)
    if all(generated_key(store, n) == key for n in names):
        return test, dev if d.n_dev else None
    rows = generate_tint_test(d.n_test + d.n_dev, seed=cfg.seed, functions=tuple(d.functions),
                              max_digits=d.max_digits, min_digits=d.min_digits)
    splits = {test: rows[: d.n_test], dev: rows[d.n_test :]}
    for name in names:
        ingest_records(store, {name: splits[name]}, config={"generator": "tint-test", "key": key,
                                                            "n": len(splits[name]), "split": name},
                       seed=cfg.seed, to_table=records_table, replace=True)
    return test, dev if d.n_dev else None


def generate_training_traces(store: stores.Store, cfg: NoisyCoTConfig, name: str, dynamic_rate: float,
                             static_rate: float) -> str:
    """Training traces with planted noise (no problem shared with test or dev) unless the same ones exist."""
    from curation.datasets import generate_tint, records_table

    d = cfg.data
    test, dev = generate_eval_splits(store, cfg)
    evals = [test] + ([dev] if dev else [])
    settings = dict(functions=tuple(d.functions), max_digits=d.max_digits, min_digits=d.min_digits,
                    dynamic_rate=dynamic_rate, p_dyn=d.p_dyn, static_rate=static_rate, p_c=d.p_c, p_l=d.p_l,
                    require_change=d.require_change)
    key = short_digest("tint", d.n_train, settings, cfg.seed, [generated_key(store, n) for n in evals])
    if generated_key(store, name) == key:
        return name
    held_out = [p for n in evals for p in store.read_samples(n, columns=["prompt"])["prompt"].to_list()]
    train = generate_tint(d.n_train, seed=cfg.seed, exclude_prompts=held_out, **settings)
    ingest_records(store, {name: train}, config={"generator": "tint", "key": key, "n": d.n_train, **settings},
                   seed=cfg.seed, to_table=records_table, replace=True)
    return name


def pipeline_tokenizer(store: stores.Store, cfg: NoisyCoTConfig, splits: Splits | None = None):
    """The tokenizer models are trained with, and the extra model-cache key it needs (empty for TInt's).

    ``chars`` on generated data is TInt's character set (the key every cached model was made
    with); on store data it is the characters of the training, dev and test texts; anything
    else is a local tokenizer folder.
    """
    if cfg.tokenizer != "chars":
        tok = load_tokenizer(cfg.tokenizer)
        return tok, (tokenizer_key(tok),)
    if not cfg.data.from_store:
        from curation.datasets import CHARSET

        return trace_tokenizer(CHARSET), ()
    chars: set[str] = set()
    names = [n for n in (splits.train, splits.dev, splits.test) if n] if splits else [cfg.data.train]
    for name in names:
        cols = [c for c in ("prompt", "completion") if c in _fields(store, name)]
        for col in cols:
            for text in store.read_samples(name, columns=[col])[col].to_list():
                chars.update(text or "")
    tok = char_tokenizer("".join(sorted(chars)))
    return tok, (tokenizer_key(tok),)


__all__ = ["Splits", "generate_eval_splits", "generate_training_traces", "pipeline_tokenizer",
           "prepare_splits"]
