"""Filter evidence on a real local Ray cluster: n-gram indexes, MinHash passes and junk rules equal local runs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import stores
from filters.contamination.check import check_contamination
from filters.contamination.ngrams import NgramSettings
from filters.junk.filter import JunkFilter
from filters.junk.rules import JunkRulesFilter
from stores.executors import RayExecutor
from stores.ingest import ingest
from tests.filters.test_junk_classifier import junk_corpus
from tests.helpers import write_jsonl

ITEMS = [
    ("apples", "Janet has 17 red apples and gives 5 of them to her brother who then eats two of them quickly.",
     "She has 12 apples left after giving 5 away."),
    ("train", "A train leaves the station at noon travelling at sixty miles per hour towards the distant coast.",
     "It arrives at four in the afternoon after two hundred and forty miles."),
    ("garden", "Maria plants nine rows of tulips with eleven bulbs in each row of her small garden this spring.",
     "She plants ninety nine bulbs in total across the nine rows."),
]
MATCHES = ("SELECT method, benchmark, item_id, sample_id, hit, score FROM contamination_matches "
           "WHERE run_id IN (SELECT run_id FROM runs WHERE kind = 'contamination') ORDER BY ALL")


def _corpus(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    words = "the of a river stone market winter light table garden train city north paper song".split()
    docs = []
    for i in range(240):
        filler = " ".join(rng.choice(words) for _ in range(rng.randint(30, 90)))
        text = f"document {i} {filler}"
        if i % 37 == 5:  # an exact copy inside the text
            _, q, a = ITEMS[i % 3]
            text = f"{filler} {q} {a} {filler}"
        elif i % 41 == 7:  # a light paraphrase: a few words changed
            _, q, a = ITEMS[(i + 1) % 3]
            text = f"{filler} {q.replace('the', 'that').replace('of', 'from')} {a}"
        docs.append({"text": text})
    return docs


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("corpus")
    bench = [{"id": k, "question": q, "answer": a} for k, q, a in ITEMS]
    return write_jsonl(tmp / "train.jsonl", _corpus()), write_jsonl(tmp / "bench.jsonl", bench)


def _checked(root: Path, files: tuple[Path, Path], executor=None) -> stores.Store:
    store = stores.open(root)
    ingest(store, files[0], "train", batch_rows=50)  # 5 sample shards: 5 tasks
    ingest(store, files[1], "bench")
    check_contamination(store, "train", ["bench"], ngram=NgramSettings(batch_rows=20), executor=executor)
    return store


def test_contamination_evidence_on_ray_equals_local(tmp_path: Path, corpus_files, ray_cluster) -> None:
    local = _checked(tmp_path / "local", corpus_files)
    on_ray = _checked(tmp_path / "ray", corpus_files, RayExecutor(workers=2))
    found = on_ray.sql(MATCHES)
    assert found.equals(local.sql(MATCHES))
    assert found.filter(found["hit"]).height >= 6  # the planted copies are found
    index = "SELECT ordinal, hash FROM ngram_index ORDER BY ALL"
    assert on_ray.sql(index).equals(local.sql(index))
    assert on_ray.sql("SELECT count(*) FROM shards WHERE table_name = 'ngram_index'").item() == 14  # 4 files x 3 batches + 2
    flags = "SELECT sample_id, flagged, score, reason FROM flags ORDER BY ALL"
    assert on_ray.sql(flags).equals(local.sql(flags))
    config = on_ray.get_run(on_ray.runs("ngram_index")["run_id"][0])["config"]
    assert config["executor"] == "ray"


def test_junk_rules_on_ray_equal_local(tmp_path: Path, ray_cluster) -> None:
    texts, cats = junk_corpus(n_clean=20, n_per=6, seed=3)
    path = write_jsonl(tmp_path / "posts.jsonl", [{"text": t, "category": c} for t, c in zip(texts, cats, strict=True)])
    out = {}
    for name, executor in (("local", None), ("ray", RayExecutor(workers=2))):
        store = stores.open(tmp_path / name)
        ingest(store, path, "posts", batch_rows=15)
        for filt in (JunkRulesFilter(min_failed=1, executor=executor), JunkFilter(min_rules=2, executor=executor)):
            run = filt.run(store, "posts")
            out.setdefault(name, []).append(store.sql("SELECT sample_id, flagged, score, reason FROM flags "
                                                      "WHERE run_id = ? ORDER BY ALL", [run.run_id]))
    assert all(a.equals(b) for a, b in zip(out["local"], out["ray"], strict=True))
    assert out["ray"][0]["flagged"].sum() > 0
