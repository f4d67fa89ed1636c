"""Curating with edits: spans cut out of a text field, new ids, the audit in curated_edits, extra drops."""

from __future__ import annotations

import pyarrow as pa
import pytest

from stores.curate import curate
from stores.edits import cut, edited_id
from stores.errors import StoreError
from stores.ingest import ingest
from tests.helpers import write_jsonl


def _edits(rows: list[tuple[str, str, int, int, str]]) -> pa.Table:
    cols = list(zip(*rows, strict=True)) if rows else [[], [], [], [], []]
    return pa.table({"sample_id": pa.array(cols[0], pa.string()), "field": pa.array(cols[1], pa.string()),
                     "start": pa.array(cols[2], pa.int64()), "end": pa.array(cols[3], pa.int64()),
                     "reason": pa.array(cols[4], pa.string())})


def test_cut_joins_remaining_pieces_and_merges_overlaps():
    text = "aaaa BBBB cccc DDDD eeee"
    assert cut(text, [(5, 10)], "|") == "aaaa |cccc DDDD eeee"
    assert cut(text, [(15, 20), (5, 10), (8, 12)], "|") == "aaaa |cc |eeee"
    assert cut(text, [(0, len(text))], "|") == ""
    assert cut(text, [], "|") == text


def test_curate_with_edits_and_drops_writes_audit_and_new_ids(store, tmp_path):
    rows = [{"text": "keep me whole"}, {"text": "before SECRET after"}, {"text": "drop this one"}]
    ingest(store, write_jsonl(tmp_path / "d.jsonl", rows), "d")
    df = store.read_samples("d", columns=["sample_id", "text"])
    ids = dict(zip(df["text"], df["sample_id"], strict=True))
    secret = "before SECRET after".index("SECRET")
    edits = _edits([(ids["before SECRET after"], "text", secret, secret + 6, "planted item x")])
    drops = pa.table({"sample_id": [ids["drop this one"]], "reason": ["too dirty"]})
    res = curate(store, "c", "d", flag_runs=[], edits=edits, drops=drops, separator=" ~ ")
    assert (res.n_kept, res.n_dropped) == (2, 1)
    out = store.read_samples("c", columns=["sample_id", "text"])
    assert out["text"].to_list() == ["keep me whole", "before  ~  after"]
    new_id = out["sample_id"][1]
    assert new_id != ids["before SECRET after"]
    assert new_id == edited_id(ids["before SECRET after"], [type("E", (), {"field": "text", "start": secret,
                                                                                 "end": secret + 6})()])
    audit = store.sql("SELECT sample_id, new_sample_id, field, start, \"end\", removed, reason FROM curated_edits "
                      "WHERE curated = 'c'")
    assert audit.row(0) == (ids["before SECRET after"], new_id, "text", secret, secret + 6, "SECRET", "planted item x")
    drop = store.sql("SELECT sample_id, reason FROM curated_drops WHERE curated = 'c'")
    assert drop.row(0) == (ids["drop this one"], "too dirty")
    # the curated set's fingerprint differs from a curation that only drops: ids changed
    only_drop = curate(store, "c2", "d", flag_runs=[], drops=drops)
    assert store.dataset_info("c")["fingerprint"] != store.dataset_info(only_drop.name)["fingerprint"]


def test_bad_edits_are_clear_errors_and_write_nothing(store, tmp_path):
    ingest(store, write_jsonl(tmp_path / "d.jsonl", [{"text": "abc", "n": 1}]), "d")
    sid = store.read_samples("d", columns=["sample_id"])["sample_id"][0]
    with pytest.raises(StoreError, match="no text field 'n'"):
        curate(store, "c", "d", flag_runs=[], edits=_edits([(sid, "n", 0, 1, "x")]))
    with pytest.raises(StoreError, match="bad span"):
        curate(store, "c", "d", flag_runs=[], edits=_edits([(sid, "text", 2, 1, "x")]))
    with pytest.raises(StoreError, match="nothing to curate"):
        curate(store, "c", "d", flag_runs=[], edits=_edits([]))
    assert store.sql("SELECT count(*) AS n FROM datasets WHERE name = 'c'")["n"][0] == 0
