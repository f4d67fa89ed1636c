"""datatrove's rule sets, offline, as junk evidence: verdicts on known texts and a real flags run."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import stores
from filters.junk.rules import RULE_SETS, JunkRulesFilter, category, rule_verdicts
from stores.ingest import ingest
from tests.helpers import write_jsonl

PROSE = (
    "The committee met on Tuesday to review the budget for the coming year. Members discussed the cost of "
    "repairing the old bridge and agreed that the work could not wait much longer. The chair said that the "
    "town would ask the state for help, and that a public meeting would be held next month so that residents "
    "could share their views. Several members asked for a clearer estimate before any vote is taken. The "
    "engineer will return with figures in two weeks, and the committee will decide then how to proceed."
)
SPAM = "BUY NOW!!! best deals click here\n" * 30
BRIEF = "omg so true"


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch):
    def refuse(*args, **kwargs):
        raise OSError("network access during a rule check")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_verdicts_offline_on_known_texts(no_network) -> None:
    v = rule_verdicts([PROSE, SPAM, BRIEF])
    assert all(v[r][0] is None for r in RULE_SETS)  # plain prose passes every set
    assert v["gopher_repetition"][1] is not None and category(v["gopher_repetition"][1]) == "spam or repetitive"
    assert v["gopher_quality"][2] == "gopher_short_doc" and category("gopher_short_doc") == "extremely brief"
    with pytest.raises(ValueError, match="unknown rule set"):
        rule_verdicts([PROSE], ["magic"])


def test_filter_flags_the_junk_with_reasons(tmp_path: Path, no_network) -> None:
    store = stores.open(tmp_path / "s")
    ingest(store, write_jsonl(tmp_path / "d.jsonl", [{"text": t} for t in (PROSE, SPAM, BRIEF)]), "d", text_field="text")
    frun = JunkRulesFilter(min_failed=1).run(store, "d")
    flags = store.read_flags(frun.run_id)
    text = dict(zip(store.read_samples("d")["sample_id"].to_list(), (PROSE, SPAM, BRIEF), strict=True))
    verdict = {text[s]: (f, r) for s, f, r in zip(flags["sample_id"], flags["flagged"], flags["reason"], strict=True)}
    assert verdict[PROSE] == (False, "passes every rule set; kept")
    assert verdict[SPAM][0] and "gopher_repetition" in verdict[SPAM][1] and "spam or repetitive" in verdict[SPAM][1]
    assert verdict[BRIEF][0] and "extremely brief" in verdict[BRIEF][1]
    with pytest.raises(ValueError, match="min_failed"):
        JunkRulesFilter(min_failed=9)
