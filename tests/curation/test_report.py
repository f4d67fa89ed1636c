"""The HTML report: plots with labelled axes, flags with their traces and categories, words for
internal names, the pipeline page pointing at its attribution run, and the browser check's
message when no Chromium is installed. A pipeline run is recorded from hand-made evidence (no
training), so these tests take seconds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import stores
from curation.report import (
    CSS,
    build_report,
    histogram_svg,
    log_ticks,
    roc_svg,
    use_log_scale,
    write_report,
)
from filters import Budget, NoisyCoTFilter
from filters.noisy_cot import reason_category
from stores.ingest import ingest
from tests.helpers import write_jsonl

N = 200


class _Page(HTMLParser):
    """Collects, per element kind, the text the reader sees (outside <pre>, <details> bodies,
    <script> and <style>), the SVG <text> elements with their attributes, and the links."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.table_text: list[str] = []
        self.prose: list[str] = []
        self.svg_texts: list[tuple[dict[str, str], str]] = []
        self.rects: list[dict[str, str]] = []
        self.links: list[str] = []
        self.sections: dict[str, str] = {}
        self._text_attrs: dict[str, str] | None = None
        self._section: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.stack.append(tag)
        if tag == "text":
            self._text_attrs = a
        if tag == "rect":
            self.rects.append(a)
        if tag == "a":
            self.links.append(a.get("href", ""))
        if tag == "section":
            self._section = a.get("id")
            self.sections[self._section] = ""

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop() == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._section:
            self.sections[self._section] += data
        if "text" in self.stack and self._text_attrs is not None:
            self.svg_texts.append((self._text_attrs, data))
            return
        hidden = {"pre", "script", "style", "svg"}
        in_details_body = "details" in self.stack and "summary" not in self.stack
        if hidden & set(self.stack) or in_details_body:
            return
        (self.table_text if "table" in self.stack else self.prose).append(data)


def _parse(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    return p


def _texts(svg: str, cls: str) -> list[tuple[dict[str, str], str]]:
    return [(a, t) for a, t in _parse(svg).svg_texts if a.get("class") == cls]


# ------------------------------------------------------------------------------------- plots
def test_histogram_has_labelled_ticked_axes() -> None:
    rng = np.random.default_rng(0)
    svg = histogram_svg(rng.normal(size=500), "scores", "influence score")
    ticks = [t for _, t in _texts(svg, "tick")]
    assert len(ticks) >= 6 and "0" in ticks  # x and y ticks
    assert [t for _, t in _texts(svg, "xlabel")] == ["influence score"]
    assert [t for _, t in _texts(svg, "ylabel")] == ["number of samples"]
    assert "log scale" not in svg


def test_histogram_uses_a_log_axis_where_values_span_decades() -> None:
    rng = np.random.default_rng(0)
    self_influence = 10 ** rng.normal(3.5, 0.5, size=3000)  # three orders of magnitude, right-skewed
    assert self_influence.max() / self_influence.min() > 100 and use_log_scale(self_influence)
    svg = histogram_svg(self_influence, "self-influence", "self-influence")
    (label,) = [t for _, t in _texts(svg, "xlabel")]
    assert label == "self-influence (log scale)"
    ticks = [t for _, t in _texts(svg, "tick")]
    assert {"1,000", "10⁴"} <= set(ticks)
    # values <= 0 cannot sit on a log axis: left out, and the axis label says how many
    with_zeros = np.r_[self_influence, [0.0, -1.0, 0.0]]
    (label,) = [t for _, t in _texts(histogram_svg(with_zeros, "s", "self-influence"), "xlabel")]
    assert label == "self-influence (log scale; 3 values ≤ 0 not shown)"
    # a uniform spread starting near 0 stays linear, and so do signed values
    assert not use_log_scale(rng.random(3000))
    assert not use_log_scale(np.r_[self_influence, -self_influence])
    assert log_ticks(1.1e-2, 3.0e2) == [0.1, 1, 10, 100]
    assert log_ticks(1.1e3, 1.8e5) == [2e3, 5e3, 1e4, 2e4, 5e4, 1e5]  # 2 and 5 times when few powers of ten


def test_histogram_marks_the_highlighted_samples() -> None:
    values = np.linspace(0, 1, 100)
    svg = histogram_svg(values, "filter scores", "score", highlight=values > 0.8, highlight_label="flagged")
    assert f"{int((values > 0.8).sum())} flagged in red" in svg and 'fill="#d1495b"' in svg


def test_roc_has_axes_ticks_and_a_title_clear_of_the_frame() -> None:
    fpr = np.linspace(0, 1, 11)
    svg = roc_svg({"completion loss": (fpr, np.sqrt(fpr), 0.667), "random": (fpr, fpr, 0.5)},
                  "ROC: dynamic-noise traces vs unaffected ones")
    page = _parse(svg)
    (frame,) = [r for r in page.rects if r.get("class") == "frame"]
    (title_attrs, title), = _texts(svg, "title")
    assert title.startswith("ROC: dynamic-noise")
    title_bottom = float(title_attrs["y"]) + 4  # baseline + descenders of a 13px font
    assert title_bottom < float(frame["y"]), "the title overlaps the frame"
    legend_top = min(float(a["y"]) for a, t in page.svg_texts if "(0.667)" in t or "AUROC" in t) - 11
    assert title_bottom < legend_top, "the title overlaps the legend"
    assert [t for _, t in _texts(svg, "xlabel")] == ["false positive rate"]
    assert [t for _, t in _texts(svg, "ylabel")] == ["true positive rate"]
    ticks = [t for _, t in _texts(svg, "tick")]
    assert ticks.count("0.2") == 2 and ticks.count("1") == 2
    assert "completion loss (0.667)" in svg


def test_sql_boxes_wrap_instead_of_overflowing() -> None:
    rule = re.search(r"pre\.sql\{([^}]*)\}", CSS)
    assert rule and "white-space:pre-wrap" in rule.group(1) and "overflow-wrap:anywhere" in rule.group(1)


# ------------------------------------------------------------------------------ a pipeline run
@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[stores.Store, str, dict[str, str]]:
    """A store with a recorded noisy-CoT pipeline run over hand-made evidence: 200 traces (every
    fifth one noisy), self-influence spanning three decades, loss, random, influence on 4
    failing answers with token scores for one pair, and the noisy_cot filter's flags."""
    tmp = tmp_path_factory.mktemp("report")
    store = stores.open(tmp / "store")
    kinds = ["clean", "clean", "dynamic", "clean", "static"]
    rows = [{"prompt": f"add {i} , {i % 9}\n", "completion": f"s = {i % 10}\nc = 1\nans = {i + i % 9}",
             "noise": kinds[i % 5], "trace_changed": kinds[i % 5] != "clean"} for i in range(N)]
    ingest(store, write_jsonl(tmp / "train.jsonl", rows), "toy_train")
    fails = [{"prompt": f"sub {j} , 3\n", "completion": f"ans = {j + 7}"} for j in range(4)]
    ingest(store, write_jsonl(tmp / "fails.jsonl", fails), "toy_train_failures")
    df = store.read_samples("toy_train", columns=["sample_id", "noise"])
    ids, bad = df["sample_id"].to_list(), (df["noise"] != "clean").to_numpy()
    qids = store.read_samples("toy_train_failures", columns=["sample_id"])["sample_id"].to_list()
    rng = np.random.default_rng(0)
    runs: dict[str, str] = {}
    evidence = {"self_influence": ("self_ekfac", 10 ** (rng.normal(3.3, 0.4, N) + 0.8 * bad)),
                "loss": ("loss", rng.gamma(4.0, 0.5, N) * (1 + 2 * bad)), "random": ("random", rng.random(N))}
    for name, (method, values) in evidence.items():
        with store.run("baseline" if name != "self_influence" else "self-influence", dataset="toy_train") as run:
            run.write("self_scores", {"sample_id": ids, "method": [method] * N, "score": values}, shard=0)
        runs[name] = run.id
    store.add_behaviour("toy-wrong-answers", "toy_train_failures", "completion_nll",
                        description="the model's own wrong answers to failing dev problems")
    with store.run("attribute", dataset="toy_train") as run:
        run.write("scores", {"behaviour": ["toy-wrong-answers"] * (N * 4), "query_id": qids * N,
                             "sample_id": np.repeat(ids, 4).tolist(),
                             "score": rng.normal(size=N * 4) - 0.5 * np.repeat(bad, 4)}, shard=0)
    runs["query_push"] = run.id
    toks = ["add", " 1", " ,", " 1", "\n", "ans", " =", " 2"]
    with store.run("token-scores", dataset="toy_train") as run:
        run.write("score_parts", {"behaviour": ["toy-wrong-answers"] * len(toks) * N, "query_id": [qids[0]] * (len(toks) * N),
                                  "sample_id": np.repeat(ids, len(toks)).tolist(), "module": [None] * len(toks) * N,
                                  "position": list(range(len(toks))) * N, "token": toks * N,
                                  "score": rng.normal(size=len(toks) * N).astype(np.float32)}, shard=0)
    runs["token_scores"] = run.id
    flags = NoisyCoTFilter(self_influence_run=runs["self_influence"], loss_run=runs["loss"],
                           query_run=runs["query_push"], budget=Budget(fraction=0.2)).run(store, "toy_train", seed=0)
    runs["flags"] = flags.run_id
    metrics = {"auroc": 0.91234, "precision": 0.8, "recall": 0.4, "hits": 16, "n_flagged": 20, "n_positive": 40,
               "precision_at_budget": 0.8, "recall_at_budget": 0.4}
    config = {"pipeline": "noisy_cot", "accuracy": {"noisy": 0.61, "curated": 0.7, "clean_only": 0.9233333333},
              "dev_accuracy": {"noisy": 0.6}, "budget": 0.2,
              "budgets": [{"budget": 0.0, "dev_acc": 0.6, "test_acc": 0.61, "flags_run": None},
                          {"budget": 0.2, "dev_acc": 0.72, "test_acc": 0.7, "flags_run": flags.run_id}],
              "recovery": {"noisy_acc": 0.61, "curated_acc": 0.7, "clean_acc": 0.9233333333, "budget": 0.2,
                           "gap_recovered": 0.2878},
              "detection": {k: {m: metrics for m in ("random", "loss", "self_influence", "query_push", "combined")}
                            for k in ("dynamic", "static", "overall")},
              "n_flagged": 40, "runs": runs, "flag_runs": {"combined": flags.run_id}}
    with store.run("pipeline", config=config, seed=0, dataset="toy_train") as run:
        pass
    return store, run.id, runs


def test_flags_show_trace_text_and_count_by_category(pipeline) -> None:
    store, run_id, runs = pipeline
    page = build_report(store, run_id)
    flags = store.read_flags(runs["flags"]).sort("score", descending=True)
    top = flags.row(0, named=True)
    text = store.sql("SELECT prompt || completion AS t FROM samples WHERE sample_id = ?", [top["sample_id"]])["t"][0]
    # the whole trace in an expandable <details>, a one-line start in its summary, the id small
    assert f"<div class='text'>{text}</div></details><div class='id' title='{top['sample_id']}'>" in page.replace(
        "&#x27;", "'")
    first_line = text.splitlines()[0].strip()
    assert re.search(rf"<summary class='text'>{re.escape(first_line)} ↵ ", page)
    # counts by category, not by the (unique) reason text
    flagged = flags.filter(flagged=True)["reason"].to_list()
    expected: dict[str, int] = {}
    for r in flagged:
        expected[reason_category(r)] = expected.get(reason_category(r), 0) + 1
    assert set(expected) <= {"high completion loss", "high self-influence", "pushes failing answers"}
    section = page[page.index("flagged counts by reason"):]
    table = section[: section.index("</table>")]
    for category, n in expected.items():
        assert f"<tr><td>{category}</td><td class='num'>{n:,}</td>" in table
    assert table.count("<tr>") == len(expected) + 1
    # the SQL shown under the table gives the same counts
    sql = re.search(r'curation sql "(SELECT CASE .*?)"</pre>', section).group(1).replace("&#x27;", "'")
    by_sql = dict(store.sql(sql).iter_rows())
    assert by_sql == expected


def test_tables_use_words_and_formatted_numbers(pipeline) -> None:
    store, run_id, _ = pipeline
    page = _parse(build_report(store, run_id))
    tables = " ".join(page.table_text)
    prose = "".join(page.prose)
    for internal in ("clean_only", "query_push", "self_influence", '{"', "0.9233", "precision_at_budget"):
        assert internal not in tables and internal not in prose, internal
    for words in ("clean traces only", "push on failing answers", "noisy traces", "completion loss", "self-influence",
                  "92.3%", "61.0%", "80.0%", "0.912", "all noisy traces"):
        assert words in tables + prose, words
    assert "Curation recovered 28.8% of the accuracy gap" in prose


def test_pipeline_report_points_to_its_attribution_run(pipeline, tmp_path: Path) -> None:
    store, run_id, runs = pipeline
    attribution = runs["query_push"]
    alone = build_report(store, run_id)
    assert "<h2>Attribution runs</h2>" in alone
    assert f"curation report {attribution} --store {store.root} --out" in alone  # the command that writes it
    written = write_report(store, tmp_path / "report.html", run_id)
    assert [p.name for p in written] == ["report.html", f"report-{attribution}.html"]
    main = _parse(written[0].read_text())
    assert f"report-{attribution}.html" in main.links  # a relative link, in the same folder
    sub = written[1].read_text()
    assert "report.html" in _parse(sub).links and "most positive (helped)" in sub and 'class="tok"' in sub
    assert "sub 0 , 3" in sub  # the query's text


def test_every_section_has_content(pipeline) -> None:
    store, run_id, runs = pipeline
    for rid in (run_id, runs["flags"], runs["self_influence"], runs["query_push"]):
        page = _parse(build_report(store, rid))
        for sid, text in page.sections.items():
            assert text.strip(), f"{rid}: empty section {sid}"


def test_pipeline_sections_come_from_the_registry_by_pipeline_name(pipeline, monkeypatch) -> None:
    from curation.report import pages, pipeline_sections, register_sections

    store, run_id, runs = pipeline
    noisy_cot = pipeline_sections("noisy_cot")
    assert noisy_cot is not None and noisy_cot.__module__ == "curation.pipelines.noisy_cot.report"
    config = store.get_run(run_id)["config"]
    # a run recorded before the config named its pipeline is a noisy_cot run: the same page
    with store.run("pipeline", config={k: v for k, v in config.items() if k != "pipeline"}, seed=0,
                   dataset="toy_train") as unnamed:
        pass
    ids = list(_parse(build_report(store, unnamed.id)).sections)
    assert ids == list(_parse(build_report(store, run_id)).sections)
    assert ids[-5:] == ["pipeline", "detection", "evidence", "attribution", "config"]
    # another pipeline registers its own sections; the generic ones (attribution runs, config) stay
    monkeypatch.setattr(pages, "PIPELINE_SECTIONS", dict(pages.PIPELINE_SECTIONS))  # undone after the test
    register_sections("toy")(lambda store, run, config: [("toy", "toy results", f"<p>{len(config['runs'])} runs</p>")])
    with store.run("pipeline", config={"pipeline": "toy", "runs": runs}, dataset="toy_train") as toy:
        pass
    page = _parse(build_report(store, toy.id))
    assert list(page.sections) == ["toy", "attribution", "config"] and f"{len(runs)} runs" in page.sections["toy"]
    # a pipeline with no sections anywhere says so instead of showing nothing
    assert pipeline_sections("no_such_pipeline") is None
    with store.run("pipeline", config={"pipeline": "no_such_pipeline"}, dataset="toy_train") as other:
        pass
    page = _parse(build_report(store, other.id))
    assert list(page.sections) == ["pipeline", "config"] and "no_such_pipeline" in page.sections["pipeline"]


# ------------------------------------------------------------------------------ browser check
def test_report_check_without_chromium_says_so_in_one_sentence(tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    page.write_text("<!doctype html><section id='x'><h2>x</h2>y</section>")
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PATH"} | {"PATH": str(empty)}
    res = subprocess.run([sys.executable, "-m", "curation.report_check", str(page)], capture_output=True, text=True,
                         env=env, cwd=Path(__file__).parents[2], timeout=60)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert res.stderr.strip().count("\n") == 0 and "needs Chromium" in res.stderr and "apt install chromium" in res.stderr
