"""Catalog schema: the DuckDB tables every store has, the Parquet shard tables, and their views.

Metadata tables (``meta``, ``runs``, ``datasets``, ``behaviours``, ``curated``, ``shards``) live in
``catalog.duckdb``. Bulk tables (``samples``, ``scores``, ``score_parts``, ``self_scores``,
``flags``, ``curated_drops``) are immutable Parquet shards under ``data/<table>/run=<run_id>/``; the catalog
exposes each as a view over the shards of *finished* runs, so unfinished or failed work is never
visible to a reader.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1

CATALOG_DDL = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status VARCHAR NOT NULL,
    config JSON,
    versions JSON,
    seed BIGINT,
    model_fingerprint VARCHAR,
    dataset VARCHAR,
    parent_run VARCHAR,
    error VARCHAR,
    pid INTEGER,
    host VARCHAR
);
CREATE TABLE IF NOT EXISTS datasets (
    name VARCHAR PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    source VARCHAR,
    n_samples BIGINT NOT NULL,
    n_duplicates BIGINT NOT NULL,
    fields JSON,
    fingerprint VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS behaviours (
    name VARCHAR PRIMARY KEY,
    dataset VARCHAR NOT NULL,
    query_ids VARCHAR[],
    measurement VARCHAR NOT NULL,
    description VARCHAR,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS curated (
    name VARCHAR PRIMARY KEY,
    parent_dataset VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    filter_runs VARCHAR[],
    predicate VARCHAR,
    n_kept BIGINT NOT NULL,
    n_dropped BIGINT NOT NULL,
    run_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS shards (
    table_name VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    shard INTEGER NOT NULL,
    path VARCHAR NOT NULL,
    n_rows BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
"""

# Fixed schemas of the shard tables. ``samples`` has these leading columns and then the
# dataset's own fields, so its views union shards by column name.
SHARD_SCHEMAS: dict[str, pa.Schema] = {
    "samples": pa.schema(
        [("dataset", pa.string()), ("sample_id", pa.string()), ("ordinal", pa.int64())]
    ),
    "scores": pa.schema(
        [
            ("run_id", pa.string()),
            ("behaviour", pa.string()),
            ("query_id", pa.string()),
            ("sample_id", pa.string()),
            ("score", pa.float32()),
        ]
    ),
    "self_scores": pa.schema(
        [
            ("run_id", pa.string()),
            ("sample_id", pa.string()),
            ("method", pa.string()),
            ("score", pa.float32()),
        ]
    ),
    # Decompositions of pairwise scores, on request: per module (``module`` set, ``position``
    # null) or per training token (``position``/``token`` set, ``module`` null = all modules).
    "score_parts": pa.schema(
        [
            ("run_id", pa.string()),
            ("behaviour", pa.string()),
            ("query_id", pa.string()),
            ("sample_id", pa.string()),
            ("module", pa.string()),
            ("position", pa.int32()),
            ("token", pa.string()),
            ("score", pa.float32()),
        ]
    ),
    "flags": pa.schema(
        [
            ("run_id", pa.string()),
            ("filter", pa.string()),
            ("sample_id", pa.string()),
            ("score", pa.float64()),
            ("flagged", pa.bool_()),
            ("reason", pa.string()),
        ]
    ),
    # A corpus n-gram index (contamination): one row per word position of each document (its
    # ordinal), the hash of the n words starting there (see filters/contamination/ngrams.py).
    # Lean on purpose (it has a row per word of the corpus): no run_id column, as indexes are
    # read per run through their shard paths, and no position, as matches are located in the text.
    "ngram_index": pa.schema(
        [
            ("ordinal", pa.int64()),
            ("hash", pa.uint64()),
        ]
    ),
    # Contamination evidence: one row per (benchmark item, training document) a method matched.
    # ``hit`` says whether the pair passes the method's rule at its settings; spans are [start, end)
    # character offsets in the item text and in the document text.
    "contamination_matches": pa.schema(
        [
            ("run_id", pa.string()),
            ("method", pa.string()),
            ("benchmark", pa.string()),
            ("item_id", pa.string()),
            ("sample_id", pa.string()),
            ("score", pa.float64()),
            ("hit", pa.bool_()),
            ("item_start", pa.int32()),
            ("item_end", pa.int32()),
            ("doc_start", pa.int32()),
            ("doc_end", pa.int32()),
            ("detail", pa.string()),
        ]
    ),
    # The item-level verdict of a contamination run: one row per benchmark item.
    "contamination_items": pa.schema(
        [
            ("run_id", pa.string()),
            ("benchmark", pa.string()),
            ("item_id", pa.string()),
            ("item_name", pa.string()),
            ("dirty", pa.bool_()),
            ("score", pa.float64()),
            ("methods", pa.string()),
            ("forms", pa.string()),
            ("n_documents", pa.int64()),
            ("example_document", pa.string()),
            ("example_span", pa.string()),
            ("reason", pa.string()),
        ]
    ),
    # Spans cut out of samples by a curation (contamination's cut mode): the audit of each edit.
    # An edited sample gets a new id (``new_sample_id``): its content changed.
    "curated_edits": pa.schema(
        [
            ("run_id", pa.string()),
            ("curated", pa.string()),
            ("sample_id", pa.string()),
            ("new_sample_id", pa.string()),
            ("field", pa.string()),
            ("start", pa.int32()),
            ("end", pa.int32()),
            ("removed", pa.string()),
            ("reason", pa.string()),
        ]
    ),
    # Unlearning (curation unlearn): the samples a run unlearned, and its before/after metrics per
    # model (original, unlearned, retrained) and split (forget, retain, test...).
    "unlearn_samples": pa.schema(
        [
            ("run_id", pa.string()),
            ("sample_id", pa.string()),
            ("role", pa.string()),
        ]
    ),
    "unlearn_metrics": pa.schema(
        [
            ("run_id", pa.string()),
            ("model", pa.string()),
            ("split", pa.string()),
            ("metric", pa.string()),
            ("value", pa.float64()),
        ]
    ),
    "curated_drops": pa.schema(
        [
            ("run_id", pa.string()),
            ("curated", pa.string()),
            ("sample_id", pa.string()),
            ("reason", pa.string()),
        ]
    ),
    # A gradient index (curation index build): one row per training sample, its random projection
    # of the preconditioned gradient (the same length within a run; see stores/vectors.py).
    "gradient_vectors": pa.schema(
        [
            ("run_id", pa.string()),
            ("sample_id", pa.string()),
            ("vector", pa.list_(pa.float32())),
        ]
    ),
}

SHARD_TABLES = tuple(SHARD_SCHEMAS)
OPEN_SCHEMA_TABLES = frozenset({"samples"})  # tables whose shards may carry extra columns

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.int64(): "BIGINT",
    pa.uint64(): "UBIGINT",
    pa.int32(): "INTEGER",
    pa.bool_(): "BOOLEAN",
    pa.list_(pa.float32()): "FLOAT[]",
}


def sql_literal(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def view_sql(table: str, paths: list[str]) -> str:
    """SELECT statement behind the view of a shard table, given its visible shard paths."""
    if not paths:
        cols = ", ".join(
            f"CAST(NULL AS {_DUCK_TYPES[f.type]}) AS {f.name}" for f in SHARD_SCHEMAS[table]
        )
        return f"SELECT {cols} WHERE false"
    files = ", ".join(sql_literal(p) for p in paths)
    union = ", union_by_name = true" if table in OPEN_SCHEMA_TABLES else ""
    return f"SELECT * FROM read_parquet([{files}], hive_partitioning = false{union})"
