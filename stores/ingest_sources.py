"""The input of an ingest as a DuckDB relation: jsonl, CSV/TSV, Parquet or a ``datasets`` folder.

:class:`InputSource` reads the input in a private in-memory DuckDB with a memory limit and can
describe its columns; :mod:`stores.ingest` builds the query that turns it into samples.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import duckdb
import pyarrow as pa

from .errors import IngestError
from .ingest_diagnosis import find_csv_problem
from .ingest_files import csv_delimiter, open_input
from .schema import sql_literal


class InputSource:
    """A DuckDB relation over the input in a private connection, re-creatable for a retry."""

    def __init__(self, path: Path, fmt: str, split: str | None, tmp_dir: Path, memory_limit: str):
        self.path, self.fmt, self.split = path, fmt, split
        self.con = duckdb.connect()
        self.con.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
        self.con.execute(f"SET temp_directory = {sql_literal(str(tmp_dir))}")
        self.con.execute("SET preserve_insertion_order = true")
        self._hf_files = self._hf_arrow_files() if fmt == "hf" else []

    def relation_sql(
        self,
        full_sample: bool,
        columns: list[tuple[str, str]] | None = None,
        csv_types: Mapping[str, str] | None = None,
    ) -> str:
        """FROM-clause expression reading the whole input.

        For jsonl, passing the ``columns`` found by :meth:`describe` skips a second type detection
        (and lets the caller read a column as raw ``JSON``); for CSV, ``csv_types`` overrides the
        sniffed type of some columns (role fields are read as ``VARCHAR``, exactly as written).
        """
        p = sql_literal(str(self.path))
        sample = ", sample_size = -1" if full_sample else ""
        if self.fmt == "jsonl":
            if columns:
                spec = ", ".join(f"{sql_literal(c)}: {sql_literal(t)}" for c, t in columns)
                sample = f", columns = {{{spec}}}"
            return (
                f"read_json({p}, format = 'newline_delimited', records = true, "
                f"maximum_object_size = 33554432{sample})"
            )
        if self.fmt == "csv":
            if csv_types:
                spec = ", ".join(f"{sql_literal(c)}: {sql_literal(t)}" for c, t in csv_types.items())
                sample += f", types = {{{spec}}}"
            return f"read_csv({p}, header = true, delim = {sql_literal(self.csv_delimiter)}{sample})"
        if self.fmt == "parquet":
            target = str(self.path / "**" / "*.parquet") if self.path.is_dir() else str(self.path)
            return f"read_parquet({sql_literal(target)})"
        self.con.register("hf_source", self._hf_reader())
        return "hf_source"

    def _hf_arrow_files(self) -> list[Path]:
        folder = self.path
        if (folder / "dataset_dict.json").exists():
            splits = json.loads((folder / "dataset_dict.json").read_text()).get("splits", [])
            split = self.split or ("train" if "train" in splits else None)
            if split not in splits:
                raise IngestError(
                    f"{folder}: a DatasetDict with splits {', '.join(splits)}; choose one with --split"
                )
            folder = folder / split
        state_file = folder / "state.json"
        if not state_file.exists():
            raise IngestError(f"{folder}: no state.json; expected a folder written by Dataset.save_to_disk")
        state = json.loads(state_file.read_text())
        files = [folder / f["filename"] for f in state.get("_data_files", [])]
        missing = [str(f) for f in files if not f.exists()]
        if missing or not files:
            raise IngestError(f"{folder}: state.json lists missing Arrow files: {', '.join(missing) or '(none listed)'}")
        return files

    def _hf_reader(self) -> pa.RecordBatchReader:
        first = pa.ipc.open_stream(pa.memory_map(str(self._hf_files[0])))
        schema = first.schema.remove_metadata()

        def batches() -> Iterator[pa.RecordBatch]:
            for i, f in enumerate(self._hf_files):
                reader = first if i == 0 else pa.ipc.open_stream(pa.memory_map(str(f)))
                for b in reader:
                    yield b.replace_schema_metadata(None)

        return pa.RecordBatchReader.from_batches(schema, batches())

    @property
    def csv_delimiter(self) -> str:
        """Field separator of a CSV/TSV input, from its suffix."""
        return csv_delimiter(self.path)

    def describe(self, full_sample: bool) -> list[tuple[str, str]]:
        """Column names and DuckDB types of the input."""
        rows = self.con.execute(f"DESCRIBE SELECT * FROM {self.relation_sql(full_sample)}").fetchall()
        described = [(r[0], r[1]) for r in rows]
        if self.fmt == "jsonl" and not full_sample and self._keys_beyond(described):
            return self.describe(True)  # keys the type sample never saw: detect on every line
        if self.fmt == "jsonl" and not full_sample:
            # DuckDB's JSON reader calls integers HUGEINT when negatives mix with positives, which
            # lands in Parquet as DECIMAL(38,0); BIGINT is what the data is. A value that does not
            # fit fails the cast and triggers the full-sample re-read, which keeps HUGEINT.
            described = [(c, "BIGINT" if t in ("HUGEINT", "UHUGEINT") else t) for c, t in described]
        if self.fmt == "csv":
            self._check_csv_header(len(described))
        return described

    def _keys_beyond(self, described: list[tuple[str, str]]) -> bool:
        """Whether any line of a jsonl input has a top-level key the sampled columns lack.

        DuckDB types a jsonl file's columns from its first lines (20,480 by default); a key that
        first appears later would otherwise be dropped without a word. One pass over the keys only.
        """
        p = sql_literal(str(self.path))
        known = [c for c, _ in described]
        row = self.con.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT unnest(json_keys(json)) AS k FROM "
            f"read_json_objects({p}, format = 'newline_delimited', maximum_object_size = 33554432) "
            f"WHERE json_type(json) = 'OBJECT') WHERE k NOT IN (SELECT unnest(?::VARCHAR[]))", [known]).fetchall()
        return bool(row and row[0][0])

    def _check_csv_header(self, n_detected: int) -> None:
        with open_input(self.path, text=True) as fh:
            header = next(csv.reader(fh, delimiter=self.csv_delimiter), [])
        if header and len(header) != n_detected:
            problem = find_csv_problem(self.path, self.csv_delimiter)
            if problem:
                raise IngestError(problem)
            raise IngestError(
                f"{self.path}:1: header has {len(header)} fields but the rows parse as {n_detected}; "
                "the file is not consistent CSV (check quoting and field counts)"
            )

    def close(self) -> None:
        self.con.close()
