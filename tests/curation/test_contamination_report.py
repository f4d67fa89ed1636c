"""The contamination pipeline's report: a real store, the pipeline run on store datasets (methods
ngram, coverage, code), the page written by ``curation.report.write_report`` and read back.

Checks what a user relies on: the sections exist; a dirty item's matched text is marked on both
sides (item and document) exactly at the recorded spans; benchmark and document text is escaped;
the clean subset lists the clean item's own name; the planted-truth table renders any method
names; and the page still renders after the training set and a curated set are dropped.
"""

from __future__ import annotations

import html
import json
import random
import re
import shutil
from pathlib import Path

import pytest

import stores
from curation.pipelines.contamination.config import ContaminationConfig
from curation.pipelines.contamination.pipeline import execute
from curation.pipelines.contamination.report import highlight, natural_key, sections, shorten
from curation.report import write_report
from stores.ingest import ingest

SCRIPT = '<script>alert("pwned")</script>'
ITEMS = [
    {"id": "q0", "question": "Janet has 17 red apples and gives 5 of them to her brother who then eats two of "
                             "them quickly.", "answer": "She has 12 apples left after giving 5 away."},
    {"id": "q1", "question": "What is the capital city of the country that hosted the summer olympics in 2004 "
                             "and why?", "answer": "Athens, because Greece hosted them."},
    {"id": "q2", "question": f"Write a page that prints {SCRIPT} when a < b && b > c holds, then explain why "
                             "the browser runs that inline snippet at all.", "answer": "Because it is not escaped."},
]
PLANTED_Q0 = ("JANET has 17 red apples, and gives 5 of them to her\nbrother who then eats two of them quickly. "
              "She has 12 apples left")


def _filler(rng: random.Random, n: int) -> str:
    """Consonant-vowel nonsense words, never in any item."""
    return " ".join("".join(rng.choice("bcdfghjklmnpqrstvwxz") + rng.choice("aeiou") for _ in range(3))
                    for _ in range(n))


def _build(root: Path) -> tuple[stores.Store, str]:
    """A store with a 60-document training set holding q0 (reformatted, embedded) and q2 (verbatim,
    with its markup), a 3-item benchmark, and the contamination pipeline run on them."""
    rng = random.Random(0)
    docs = [{"id": f"d{i}", "text": _filler(rng, 80)} for i in range(60)]
    docs[5]["text"] += " " + PLANTED_Q0
    docs[9]["text"] = _filler(rng, 40) + " " + ITEMS[2]["question"] + "\n" + ITEMS[2]["answer"] + " " + _filler(rng, 40)
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.jsonl").write_text("\n".join(json.dumps(d) for d in docs))
    (root / "bench.jsonl").write_text("\n".join(json.dumps(x) for x in ITEMS))
    store = stores.open(root / "store")
    ingest(store, root / "train.jsonl", "train")
    ingest(store, root / "bench.jsonl", "bench")
    cfg = ContaminationConfig.model_validate({"pipeline": "contamination", "name": "t",
                                              "data": {"train": "train", "benchmarks": ["bench"]},
                                              "methods": ["ngram", "coverage", "code"]})
    return store, execute(store, cfg).run_id


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, stores.Store, str, str]:
    """(folder, store, pipeline run id, the page's HTML)."""
    root = tmp_path_factory.mktemp("contamination_report")
    store, run_id = _build(root)
    written = write_report(store, root / "r.html", run_id)
    return root, store, run_id, written[0].read_text(encoding="utf-8")


def _section(page: str, sid: str) -> str:
    m = re.search(rf'<section id="{re.escape(sid)}">(.*?)</section>', page, re.S)
    assert m, f"no section {sid!r}"
    return m.group(1)


def _marks(fragment: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r"<mark>(.*?)</mark>", fragment, re.S)]


def test_page_has_the_four_sections_with_counts(built) -> None:
    _, _, _, page = built
    found = _section(page, "contamination")
    for sid in ("dirty-items", "clean-subsets", "curated"):
        assert _section(page, sid).strip()
    # bench: 3 items, 2 dirty, 1 clean; both evidence runs listed
    assert re.search(r"<td>bench</td><td class='num'>3</td><td class='num'>2</td><td class='num'>1</td>", found)
    assert "n-gram overlap" in found and "coverage (Llama 2 style)" in found
    assert "against the planted truth" not in found  # metrics is None for store datasets


def test_dirty_item_is_marked_on_both_sides_at_the_recorded_spans(built) -> None:
    _, store, _, page = built
    dirty = _section(page, "dirty-items")
    blocks = re.split(r"<h3>", dirty)[1:]
    q0 = next(b for b in blocks if b.startswith("bench: q0"))
    item_cell, doc_cell = re.findall(r"<td><div class='text'>(.*?)</div></td>", q0, re.S)
    item_marks, doc_marks = _marks(item_cell), _marks(doc_cell)
    assert item_marks and doc_marks
    assert "Janet has 17 red apples" in item_marks[0]
    assert "JANET has 17 red apples, and gives 5" in doc_marks[0]
    # exactly the spans the verdict's best row recorded
    row = store.sql("SELECT example_document, example_span FROM contamination_items WHERE item_name = 'q0'").row(0)
    d0, d1 = map(int, row[1].split(":"))
    text = store.sql("SELECT text FROM samples WHERE dataset = 'train' AND sample_id = ?", [row[0]])["text"][0]
    assert doc_marks[0] == text[d0:d1]
    best = store.sql("SELECT item_start, item_end FROM contamination_matches WHERE sample_id = ? AND hit "
                     "ORDER BY score DESC LIMIT 1", [row[0]]).row(0)
    item_text = ITEMS[0]["question"] + "\n" + ITEMS[0]["answer"]
    assert item_marks[0] == item_text[best[0]:best[1]]
    assert len(html.unescape(re.sub(r"<[^>]+>", "", doc_cell))) < len(text)  # an excerpt, not the whole document


def test_benchmark_and_document_markup_is_escaped(built) -> None:
    _, _, _, page = built
    assert "<script>alert" not in page
    dirty = _section(page, "dirty-items")
    q2 = next(b for b in re.split(r"<h3>", dirty)[1:] if b.startswith("bench: q2"))
    item_cell, doc_cell = re.findall(r"<td><div class='text'>(.*?)</div></td>", q2, re.S)
    for cell in (item_cell, doc_cell):
        assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in cell
        assert "a &lt; b &amp;&amp; b &gt; c" in cell
        assert any(SCRIPT in m for m in _marks(cell))
    assert page.count("<script>") == 1  # the page's own self-check only


def test_clean_subset_lists_the_clean_items_names_and_its_sql(built) -> None:
    _, store, _, page = built
    clean = _section(page, "clean-subsets")
    listed = re.search(r"<pre class='clean-items'>(.*?)</pre>", clean, re.S)
    assert listed and html.unescape(listed.group(1)).split("\n") == ["q1"]
    dirty = re.search(r"<pre class='dirty-items'>(.*?)</pre>", clean, re.S)
    assert dirty and dirty.group(1).split("\n") == ["q0", "q2"]
    query = html.unescape(re.search(r'curation sql "(SELECT item_name .*?)"</pre>', clean).group(1))
    assert "NOT dirty" in query and "benchmark = 'bench'" in query
    assert store.sql(query)["item_name"].to_list() == ["q1"]


def test_curated_outputs_show_counts_and_the_first_cut(built) -> None:
    _, store, _, page = built
    cur = _section(page, "curated")
    for name in ("t_decontaminated", "t_cut"):
        n_kept, n_dropped = store.sql("SELECT n_kept, n_dropped FROM curated WHERE name = ?", [name]).row(0)
        assert re.search(rf"<td>{name}</td><td class='num'>{n_kept}</td><td class='num'>{n_dropped}</td>", cur)
    assert "the first spans cut from t_cut" in cur
    assert "FROM curated_edits WHERE curated = &#x27;t_cut&#x27;" in cur


def test_planted_metrics_table_takes_any_method_and_form(built) -> None:
    _, store, run_id, _ = built
    run = store.get_run(run_id)
    config = dict(run["config"])
    form = {"item_recall": 0.5, "doc_recall": 0.5, "doc_precision": 1.0, "n_items": 4}
    config["metrics"] = {
        "ngram": {"doc_precision": 1.0, "doc_recall": 0.5, "doc_auroc": 0.75, "hard_negatives_flagged": 0,
                  "forms": {"verbatim": {**form, "item_recall": 1.0}, "paraphrase": form}},
        "brand_new": {"doc_precision": None, "doc_recall": 0.25, "doc_auroc": float("nan"),
                      "hard_negatives_flagged": 3, "forms": {}},
        "combined": {"doc_precision": 0.9, "doc_recall": 0.5, "doc_auroc": 0.8, "hard_negatives_flagged": 1,
                     "forms": {"verbatim": form}},
    }
    body = dict((sid, h) for sid, _, h in sections(store, run, config))["contamination"]
    table = body[body.index("against the planted truth"):]
    assert "<th>paraphrase<div class='muted'>4 items</div></th>" in table
    assert re.search(r"<td>n-gram overlap</td><td class='num'>50.0%</td><td class='num'>100.0%</td>", table)
    assert re.search(r"<td>brand new</td><td class='num'>-</td><td class='num'>-</td><td class='num'>-</td>", table)
    assert table.index("brand new") < table.index("verdict (combined)")


def test_still_renders_after_its_datasets_are_dropped(built, tmp_path: Path) -> None:
    root, _, run_id, _ = built
    shutil.copytree(root / "store", tmp_path / "store")
    store = stores.open(tmp_path / "store")
    store.drop_dataset("train")
    store.drop_dataset("t_cut")
    page = write_report(store, tmp_path / "r.html", run_id)[0].read_text(encoding="utf-8")
    dirty = _section(page, "dirty-items")
    assert "The training set train is no longer in the store" in dirty
    assert "(document text not in the store)" in dirty
    assert any("Janet has 17 red apples" in m for m in _marks(dirty))  # the item side still shows
    cur = _section(page, "curated")
    assert "since dropped from the store" in cur and "t_decontaminated" in cur
    assert "the first spans cut" not in cur
    assert "<pre class='clean-items'>q1</pre>" in _section(page, "clean-subsets")


def test_highlight_escapes_clips_and_windows() -> None:
    assert highlight("a<b>c", 1, 4) == "a<mark>&lt;b&gt;</mark>c"
    assert highlight("abc", -5, 99) == "<mark>abc</mark>"
    assert highlight("a & b", None, None) == "a &amp; b"
    assert "<mark>" not in highlight("abc", 2, 2)
    long = " ".join(f"w{i}" for i in range(200))
    s = long.index("w100")
    out = highlight(long, s, s + 4, context=30)
    assert out.startswith("…") and out.endswith("…") and "<mark>w100</mark>" in out and len(out) < 100
    assert out[1] == "w" and out[-2].isdigit()  # windows start and end at whole words
    big = highlight("x" * 2000, 0, 2000, max_mark=100)
    assert big.count("<mark>") == 2 and len(big) < 200


def test_names_sort_naturally_and_text_shortens() -> None:
    assert sorted(["q10", "q2", "HumanEval/1", "q1"], key=natural_key) == ["HumanEval/1", "q1", "q2", "q10"]
    s = shorten("word " * 100, 50)
    assert len(s) <= 50 and " … " in s
    assert shorten("a\n b", 50) == "a b"
