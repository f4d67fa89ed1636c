"""A seeded *planted contamination corpus*: training documents with benchmark items hidden inside.

Contamination detectors (filters.md section 3) are judged on data where the truth is known.
:func:`build_planted_corpus` makes such data from offline sources only
(:mod:`~curation.datasets.contamination_sources`): three benchmarks (``humaneval``, ``gsm``,
``mmlu``), a training corpus of carrier documents, and ground truth saying which item was
planted in which document, in which *form*, at which character span.

Carrier documents are built by sampling consecutive paragraphs (Wikipedia, news, essays) or
sentences (movie reviews) from gensim's test data and concatenating them up to a target length
drawn from a log-normal distribution (median about 220 words, clipped to 20..5,000 words), so
that ``n_docs`` can reach tens of MB; paragraphs therefore repeat across documents once the
corpus outgrows the roughly 2.5 MB of distinct source prose.

A ``planted_fraction`` of each benchmark's items is planted, each in exactly one form (chosen by
the seed, balanced over the forms that apply to its benchmark) and exactly once: as its own
document (sometimes with a short header, or bundled with other items as a problem set),
appended to a carrier document, or inserted between its paragraphs or sentences. Items that
share a 13-gram with each other are planted or left out together, so an item with form ``None``
never appears in any document. Forms (:data:`FORMS`):

=============== ===========================================================================
verbatim        question and answer as written
question_only   only the question
reformatted     same words, changed case / whitespace / punctuation, re-wrapped to 30-50 chars
embedded        question and answer in the middle of a carrier of at least 2,000 words
paraphrased     synonyms for up to 45% of content words (a third on average), sentences and
                conditional clauses reordered, person names swapped (gsm, mmlu)
renumbered      the same GSM template re-instantiated with other numbers and names (gsm)
renamed_code    the solution function with renamed identifiers and no docstring (humaneval)
=============== ===========================================================================

Hard negatives are documents on the topic of a benchmark item that share no 8-word n-gram with
any item (checked here under two punctuation normalisations); their ``forms`` are
``["hard_negative"]`` and they contain no item. Everything is deterministic by ``seed``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

from . import contamination_sources as src
from . import contamination_text as ctext

FORMS = ("verbatim", "question_only", "reformatted", "embedded", "paraphrased", "renumbered",
         "renamed_code")
APPLICABLE = {
    "humaneval": ("verbatim", "question_only", "reformatted", "embedded", "renamed_code"),
    "gsm": ("verbatim", "question_only", "reformatted", "embedded", "paraphrased", "renumbered"),
    "mmlu": ("verbatim", "question_only", "reformatted", "embedded", "paraphrased"),
}
HARD_NEGATIVE = "hard_negative"
EMBED_MIN_WORDS = 2000
NEGATIVE_NGRAM = 8  # hard negatives share no n-gram this long with any item
CLUSTER_NGRAM = 13  # items sharing an n-gram this long are planted (or not) together


@dataclass
class PlantedCorpus:
    """Training documents, benchmarks and the truth about what was planted where.

    ``train`` documents: ``id``, ``text``, ``source`` (carrier source or ``"planted"``),
    ``forms`` and ``items`` (``"benchmark:item_id"``, ``forms[i]`` is the form of ``items[i]``;
    a hard negative has ``forms == ["hard_negative"]`` and no items) and ``spans`` (``[start,
    end)`` of each planted copy in ``text``, in the order of ``items``). ``benchmarks`` maps a
    name to items ``{id, question, answer, form}`` (form ``None``: never planted).
    ``plantings`` has one record per planted copy (doc, span, placement and form details) and
    ``hard_negatives`` one per hard-negative document.
    """

    train: list[dict]
    benchmarks: dict[str, list[dict]]
    seed: int
    plantings: list[dict] = field(default_factory=list)
    hard_negatives: list[dict] = field(default_factory=list)

    def document_truth(self) -> dict[str, set[str]]:
        """Document id -> the ``benchmark:item_id`` keys planted in it (empty when clean)."""
        return {d["id"]: set(d["items"]) for d in self.train}

    def item_forms(self) -> dict[str, str | None]:
        """``benchmark:item_id`` -> the form it was planted in, or None if never planted."""
        return {f"{b}:{it['id']}": it["form"] for b, items in self.benchmarks.items()
                for it in items}

    def write(self, folder: Path) -> dict[str, Path]:
        """Write ``train.jsonl`` and one ``<benchmark>.jsonl`` per benchmark, atomically.

        Returns name -> path (``"train"`` and the benchmark names). Spans and plantings stay in
        memory only: the files hold the fields the toolkit ingests.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tables = {"train": [{k: d[k] for k in ("id", "text", "source", "forms", "items")}
                            for d in self.train]}
        for name, items in self.benchmarks.items():
            tables[name] = [{k: it[k] for k in ("id", "question", "answer", "form")}
                            for it in items]
        paths = {}
        for name, rows in tables.items():
            paths[name] = _write_jsonl_atomic(folder / f"{name}.jsonl", rows)
        return paths


def _write_jsonl_atomic(path: Path, rows: list[dict]) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ----------------------------------------------------------------------------- items & forms


def _load_items(seed: int, n_humaneval: int | None, n_gsm: int, n_mmlu: int | None):
    ok, spare = src.gsm_templates()
    rng = Random(f"{seed}:items")
    templates = sorted(rng.sample(list(ok), min(max(0, n_gsm), len(ok))))
    humaneval, mmlu = src.load_humaneval(), src.load_mmlu()
    if n_humaneval is not None:
        humaneval = [humaneval[i] for i in sorted(rng.sample(range(len(humaneval)),
                                                             min(n_humaneval, len(humaneval))))]
    if n_mmlu is not None:
        mmlu = [mmlu[i] for i in sorted(rng.sample(range(len(mmlu)), min(n_mmlu, len(mmlu))))]
    unused = [t for t in list(ok) + list(spare) if t not in templates]
    return {"humaneval": humaneval, "gsm": src.load_gsm(templates, seed), "mmlu": mmlu}, unused


def _clusters(items: list[src.Item]) -> list[list[int]]:
    """Groups of item indices linked by a shared normalised 13-gram (in first-seen order)."""
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[str, ...], int] = {}
    for i, it in enumerate(items):
        words = ctext.normalized_words(f"{it.question} {it.answer}")
        for gram in ctext.ngrams(words, CLUSTER_NGRAM):
            j = owner.setdefault(gram, i)
            if root(j) != root(i):
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(items)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _choose_forms(items: list[src.Item], allowed: list[str], fraction: float,
                  rng: Random) -> list[str | None]:
    """Seeded planted/unplanted split by cluster, then forms balanced over ``allowed``."""
    forms: list[str | None] = [None] * len(items)
    if not allowed:
        return forms
    target = round(fraction * len(items))
    clusters = _clusters(items)
    rng.shuffle(clusters)
    planted: list[int] = []
    for cluster in clusters:
        if len(planted) >= target:
            break
        planted.extend(cluster)
    rng.shuffle(planted)
    cycle = list(allowed)
    for k, i in enumerate(planted):
        if k % len(cycle) == 0:
            rng.shuffle(cycle)
        forms[i] = cycle[k % len(cycle)]
    return forms


def _join(item: src.Item, rng: Random, plain: bool = False) -> str:
    if item.benchmark == "humaneval":
        return "" if item.question.endswith("\n") else "\n"
    return "\n" if plain else rng.choice(["\n", "\n\n", " ", "\nAnswer: ", "\nA: "])


def _copy_text(item: src.Item, form: str, rng: Random, seed: int) -> tuple[str, dict]:
    """The planted copy of ``item`` in ``form``, plus details for the truth record."""
    if form in ("verbatim", "embedded"):
        return item.question + _join(item, rng) + item.answer, {}
    if form == "question_only":
        return item.question, {}
    if form == "reformatted":
        return ctext.reformat(item.question + _join(item, rng, True) + item.answer, rng), {}
    if form == "paraphrased":
        names: dict[str, str] = {}
        q = ctext.paraphrase(item.question, rng, names=names)
        return q + "\n" + ctext.paraphrase(item.answer, rng, names=names), {"names": names}
    if form == "renumbered":
        for attempt in range(50):
            label = f"{seed}:renumber:{item.id}:{attempt}"
            try:
                other = src.gsm_instance(item.template, Random(label))
            except (ValueError, ArithmeticError, IndexError):
                continue
            if other.question != item.question and other.answer != item.answer:
                break
        else:
            raise RuntimeError(f"{item.id}: re-instantiation never changed the text")
        details = {"template": item.template, "instance_seed": label}
        return other.question + _join(item, rng) + other.answer, details
    if form == "renamed_code":
        code = ctext.function_source(item.question, item.answer, item.entry_point)
        renamed, mapping = ctext.rename_code(code, rng)
        return renamed, {"renames": mapping}
    raise ValueError(f"unknown form {form!r}; expected one of {FORMS}")


_WRAPPERS = {
    "humaneval": [("", ""), ("```python\n", "```"), ("# solution\n", ""),
                  ("Here is the code I ended up with:\n\n", "\nAny suggestions welcome.")],
    "gsm": [("", ""), ("Practice problem\n\n", ""), ("Worked example:\n", ""),
            ("Can someone check my working on this one?\n\n", "\n\nThanks!")],
    "mmlu": [("", ""), ("Review question\n\n", ""), ("Quiz\n\n", "\n\nFrom the course notes."),
             ("Q: ", "")],
}


# ----------------------------------------------------------------------------- assembly


@dataclass
class _Doc:
    source: str
    paragraphs: list[str]  # carrier paragraphs (empty for standalone documents)
    copies: list[tuple[str, str, str, str]] = field(default_factory=list)  # key, form, text, how
    at: int = -1  # paragraph boundary where copies go (-1: standalone, len: appended)
    sentence_split: bool = False  # insert between two sentences of paragraph ``at``
    header: str = ""
    footer: str = ""


def _render(doc: _Doc) -> tuple[str, list[list[int]]]:
    spans: list[list[int]] = []
    parts: list[str] = []
    pos = 0

    def put(text: str, span: bool = False) -> None:
        nonlocal pos
        if span:
            spans.append([pos, pos + len(text)])
        parts.append(text)
        pos += len(text)

    def put_copies() -> None:
        put(doc.header)
        for k, (_, _, text, _) in enumerate(doc.copies):
            if k:
                put("\n\n")
            put(text, span=True)
        put(doc.footer)

    paras = list(doc.paragraphs)
    if not doc.copies:
        put("\n\n".join(paras))
    elif doc.at < 0:
        put_copies()
    else:
        before, after = paras[:doc.at], paras[doc.at:]
        if doc.sentence_split and after:
            sentences = re.split(r"(?<=[.!?])\s+", after[0])
            cut = max(1, len(sentences) // 2)
            before = before + [" ".join(sentences[:cut])]
            after = [" ".join(sentences[cut:])] + after[1:]
            after = [p for p in after if p]
        if before:
            put("\n\n".join(before) + "\n\n")
        put_copies()
        if after:
            put("\n\n" + "\n\n".join(after))
    return "".join(parts), spans


def _middle_boundary(paragraphs: list[str]) -> tuple[int, bool]:
    """Paragraph boundary nearest the middle of the words (or a sentence split inside one)."""
    total = sum(len(p.split()) for p in paragraphs)
    acc, best, best_gap = 0, 0, total
    for i, p in enumerate(paragraphs):
        if 0 < i and abs(acc - total / 2) < best_gap:
            best, best_gap = i, abs(acc - total / 2)
        acc += len(p.split())
    if best_gap > 0.15 * total:  # no paragraph boundary near the middle: split the middle one
        acc = 0
        for i, p in enumerate(paragraphs):
            if acc + len(p.split()) >= total / 2:
                return i, True
            acc += len(p.split())
    return best, False


def _item_index(items: dict[str, list[src.Item]]) -> set[tuple[str, ...]]:
    """Every normalised 8-gram of every item (question, answer and across the two)."""
    index: set[tuple[str, ...]] = set()
    for bench_items in items.values():
        for it in bench_items:
            for delete in (True, False):
                words = ctext.normalized_words(f"{it.question} {it.answer}", delete=delete)
                index |= ctext.ngrams(words, NEGATIVE_NGRAM)
    return index


def shares_ngram(text: str, index: set[tuple[str, ...]], n: int = NEGATIVE_NGRAM) -> bool:
    """Whether ``text`` has a normalised n-gram in ``index`` (under either normalisation)."""
    return any(not index.isdisjoint(ctext.ngrams(ctext.normalized_words(text, delete=d), n))
               for d in (True, False))


def _hard_negatives(items: dict[str, list[src.Item]], spare_templates: list[int],
                    pools: src.CarrierPools, n: int, seed: int) -> list[dict]:
    """``n`` verified hard-negative texts, cycling over the benchmarks in a seeded order."""
    rng = Random(f"{seed}:negatives")
    benches = [b for b in ("humaneval", "gsm", "mmlu")
               if (spare_templates if b == "gsm" else items.get(b))]
    rng.shuffle(benches)
    if not benches or n == 0:
        return []
    index = _item_index(items)
    out: list[dict] = []
    for k in range(n * 3):
        if len(out) == n:
            break
        bench = benches[k % len(benches)]
        for _ in range(20):
            if bench == "gsm":
                template = rng.choice(spare_templates)
                try:
                    inst = src.gsm_instance(template, Random(rng.getrandbits(64)))
                except (ValueError, ArithmeticError, IndexError):  # some templates can fail
                    continue
                text, about = f"{inst.question}\n{inst.answer}", f"gsm template {template}"
            else:
                item = rng.choice(items[bench])
                about = item.key
                if bench == "humaneval":
                    text = src.negative_code(item, rng)
                else:
                    words = [w for w in ctext.content_words(item.question.split("\n(A)")[0])
                             if len(w) > 4 and w not in ctext.SYNONYMS]
                    text = src.negative_notes(item, rng, words)
            if rng.random() < 0.4:
                _, paras = src.carrier_document(pools, rng, rng.randint(60, 300))
                text = "\n\n".join([text] + paras if rng.random() < 0.5 else paras + [text])
            if not shares_ngram(text, index):
                out.append({"text": text, "benchmark": bench, "about": about})
                break
    return out


def _embed_host(host: _Doc, pools: src.CarrierPools, rng: Random) -> None:
    """Make ``host`` a carrier of at least 2,000 words (redrawn if shorter), split mid-way."""
    if sum(len(p.split()) for p in host.paragraphs) < EMBED_MIN_WORDS:
        n_words = rng.randint(EMBED_MIN_WORDS + 200, 2 * EMBED_MIN_WORDS)
        while True:
            host.source, host.paragraphs = src.carrier_document(pools, rng, n_words)
            if host.source in ("enwiki", "news"):
                break
    host.at, host.sentence_split = _middle_boundary(host.paragraphs)


def _plant(items: dict[str, list[src.Item]], forms: list[str], fraction: float,
           carriers: list[_Doc], pools: src.CarrierPools, seed: int):
    """Choose forms, make the copies and place them; returns (docs, form_of, details_of)."""
    free = list(range(len(carriers)))
    Random(f"{seed}:hosts").shuffle(free)
    extra: list[_Doc] = []
    form_of: dict[str, str | None] = {}
    details_of: dict[str, dict] = {}
    rng = Random(f"{seed}:plant")
    standalone: dict[str, list[tuple[str, str, str, str]]] = {b: [] for b in items}
    for bench, bench_items in items.items():
        allowed = [f for f in APPLICABLE[bench] if f in forms]
        chosen = _choose_forms(bench_items, allowed, fraction, Random(f"{seed}:forms:{bench}"))
        for item, form in zip(bench_items, chosen, strict=True):
            form_of[item.key] = form
            if form is None:
                continue
            text, details = _copy_text(item, form, Random(f"{seed}:copy:{item.key}"), seed)
            if details:
                details_of[item.key] = details
            r = rng.random()
            if form == "embedded":
                if free:
                    host = carriers[free.pop()]
                else:  # more embedded items than carriers: an extra long carrier
                    host = _Doc("enwiki", [])
                    extra.append(host)
                _embed_host(host, pools, Random(f"{seed}:long:{item.key}"))
                host.copies.append((item.key, form, text, "embedded"))
            elif r < 0.4 or not free:
                standalone[bench].append((item.key, form, text, "standalone"))
            else:
                host = carriers[free.pop()]
                if r < 0.7:
                    host.at, how = len(host.paragraphs), "appended"
                else:
                    n_paras, how = len(host.paragraphs), "inside"
                    host.at = rng.randrange(1, n_paras) if n_paras > 1 else 0
                    host.sentence_split = n_paras == 1 or rng.random() < 0.3
                host.copies.append((item.key, form, text, how))
    for bench, copies in standalone.items():  # own documents, sometimes a 2-3 item problem set
        k = 0
        while k < len(copies):
            size = rng.choice([2, 3]) if rng.random() < 0.2 else 1
            doc = _Doc("planted", [], copies=copies[k:k + size])
            doc.header, doc.footer = rng.choice(_WRAPPERS[bench])
            extra.append(doc)
            k += size
    return carriers + extra, form_of, details_of


def build_planted_corpus(seed: int = 0, *, n_docs: int = 2000, planted_fraction: float = 0.5,
                         n_gsm: int = 200, n_hard_negatives: int = 100,
                         forms: Sequence[str] | None = None, n_humaneval: int | None = None,
                         n_mmlu: int | None = None) -> PlantedCorpus:
    """Build the planted corpus for ``seed`` (same seed and arguments: identical output).

    ``n_docs`` carrier documents (standalone planted documents and hard negatives come on top);
    ``planted_fraction`` of each benchmark's items planted once each, in one of ``forms``
    (default: all of :data:`FORMS`); ``n_gsm`` GSM items, capped at the number of distinct
    GSM templates (85) since each item must be the only instance of its template;
    ``n_humaneval`` / ``n_mmlu`` (default all: 164 and 282) subsample the other benchmarks.
    """
    forms = list(FORMS) if forms is None else list(dict.fromkeys(forms))
    if unknown := [f for f in forms if f not in FORMS]:
        raise ValueError(f"unknown forms {unknown}; expected a subset of {FORMS}")
    if not 0.0 <= planted_fraction <= 1.0:
        raise ValueError(f"planted_fraction must be in [0, 1], got {planted_fraction}")
    if n_docs < 0 or n_hard_negatives < 0:
        raise ValueError("n_docs and n_hard_negatives must be >= 0")
    items, spare_templates = _load_items(seed, n_humaneval, n_gsm, n_mmlu)
    pools = src.load_carriers()
    lengths, carrier_rng = Random(f"{seed}:lengths"), Random(f"{seed}:carriers")
    carriers = [_Doc(*src.carrier_document(pools, carrier_rng, src.carrier_length(lengths)))
                for _ in range(n_docs)]
    planted, form_of, details_of = _plant(items, forms, planted_fraction, carriers, pools, seed)
    docs = []
    for doc in planted:
        text, spans = _render(doc)
        docs.append({"text": text, "source": doc.source, "forms": [c[1] for c in doc.copies],
                     "items": [c[0] for c in doc.copies], "spans": spans,
                     "_how": [c[3] for c in doc.copies]})
    for neg in _hard_negatives(items, spare_templates, pools, n_hard_negatives, seed):
        docs.append({"text": neg.pop("text"), "source": "planted", "forms": [HARD_NEGATIVE],
                     "items": [], "spans": [], "_how": [], "_negative": neg})
    Random(f"{seed}:shuffle").shuffle(docs)
    width = max(6, len(str(len(docs))))
    plantings, hard = [], []
    for i, doc in enumerate(docs):
        doc_id = f"doc-{i:0{width}d}"
        for key, form, span, how in zip(doc["items"], doc["forms"][:len(doc["items"])],
                                        doc["spans"], doc.pop("_how"), strict=True):
            plantings.append({"item": key, "form": form, "doc": doc_id, "span": span,
                              "placement": how, **details_of.get(key, {})})
        if "_negative" in doc:
            hard.append({"doc": doc_id, **doc.pop("_negative")})
        docs[i] = {"id": doc_id, **doc}
    plantings.sort(key=lambda p: p["item"])
    benchmarks = {b: [{"id": it.id, "question": it.question, "answer": it.answer,
                       "form": form_of[it.key]} for it in bench_items]
                  for b, bench_items in items.items()}
    return PlantedCorpus(docs, benchmarks, seed, plantings, hard)
