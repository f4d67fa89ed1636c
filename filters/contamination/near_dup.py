"""Near-duplicate evidence: which benchmark items have a near duplicate in which training documents.

Method (spec ``filters.md`` section 3, "Near duplicates"):

* Text is normalised as by the lm-eval janitor: lowercase, ASCII punctuation deleted, split on
  whitespace (non-ASCII capitals lowercased too, as ``normalize.py``'s ``words`` does). Shingles
  are runs of ``shingle_words`` consecutive words (word 5-grams by default).
* Items (small) are held in memory; documents stream past in batches (bounded memory), each cut
  into overlapping windows as long as the items looked for, so an item buried in a long document
  is compared with a passage of its own size, not diluted by the whole document. Items form length
  classes (longest / shortest <= ``length_ratio``); a class's window is the geometric mean of the
  two, moved by ``window_stride`` x its length. A document shorter than a window is one window.
* MinHash signatures of b x r = 14 x 8 values; an (item, window) pair is a candidate when a band
  of r values agrees: probability 1 - (1 - s^r)^b at Jaccard s (:func:`candidate_probability`),
  0.5 at s = 0.685 (:func:`lsh_threshold`) and 0.65 at the "threshold near 0.72", which is the
  rule of thumb (1/b)^(1/r) = 0.719 (:func:`approx_threshold`), not the curve's midpoint.
* Candidates are confirmed by the exact Jaccard of the two shingle *sets* (strings, not hashes).
  The best window of each (item, document) is refined (its ends move by up to one stride to the
  span of highest Jaccard), so the score does not depend on where window boundaries fall. That
  exact Jaccard is the score; pairs >= ``threshold`` are reported with their character spans.

Default ``threshold = 0.5``: for two sets of equal size, Jaccard 0.5 means two thirds of the
shingles are shared, i.e. long verbatim runs in common, which unrelated text practically never has
at the 5-gram level. It sits below the LSH's 0.685 midpoint on purpose: the LSH decides recall and
confirmation only rejects its random band collisions (candidate probability 9e-4 at s = 0.3); it
does not throw away a 0.6 match the LSH happened to catch. Each changed word costs up to
``shingle_words`` shingles: copies with three words changed scored a median 0.80 (bench below).

Measured (``bench/minhash_libs.py`` -> ``bench/results/minhash_libs.json``, 2 cores, one run):

* Library, ``library="auto"`` = rensa. 20,000 documents of ~200 words, 112 permutations: rensa
  ``RMinHash.digest_matrix_from_token_sets`` 288,000 signatures/s (198,000 per CPU-second: it
  used both cores), datasketch ``MinHash.bulk`` 3,790/s (bytes encoding included); LSH insert
  20,000 + query 20,000: rensa 0.039 s, datasketch 1.98 s. Both follow 1 - (1 - s^r)^b in every
  Jaccard bin (0.7-0.8: formula 0.756, datasketch 0.752, rensa 0.773) and agree on 98.8% of the
  pairs with Jaccard >= 0.8. This module's windowed path: rensa 2.9 MB/s, datasketch 0.10 MB/s
  (1 MB). ``library="datasketch"`` stays selectable (cheap: only signatures and banding
  differ) to cross-check rensa's R-MinHash, a fast-similarity-sketching variant of MinHash.
* Throughput: 4.2 MB/s of document text (3.2 MB per CPU-second) on 20 MB of generated text, 400
  items (gensim's Lee corpus) in 6 length classes; rensa's signature matrix is about half of it.
* Recall, 20 MB: verbatim plants 100/100, no wrong match. Three words changed: 3% / 42% / 71% of
  items of 20-59 / 60-119 / 120-199 words (5-gram Jaccard of short edited items is low).
  ``window_stride`` 0.5 instead of 0.25 (10 MB): verbatim recall 0.84 instead of 1.00, at 5.5
  instead of 4.3 MB/s; ``length_ratio`` 2.0: 0.98 at 5.3 MB/s.
* Paraphrase mode ``NearDupSettings(shingle_words=1, stopwords=True)`` (Jaccard of content-word
  sets, built-in stopwords removed): reordered copies 98% (5-grams: 0%), three words changed 83%,
  no wrong match on random carrier text; coincidental overlap between real texts on one topic is
  not measured there, so use it to measure paraphrase exposure, not as a default.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import re
import string
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

LIBRARIES = ("auto", "rensa", "datasketch")

#: a small English stopword list (function words), in normalised form (no apostrophes)
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can cannot could did do does doing dont down during each either few for
from further had has have having he her here hers herself him himself his how i if im in into is
isnt it its itself ive just let me more most my myself neither no nor not now of off on once only
or other ought our ours ourselves out over own same shall she should so some such than that thats
the their theirs them themselves then there these they this those through thus to too under until
up upon very was we were what when where whether which while who whom whose why will with would
yet you your yours yourself yourselves
""".split())

#: columns of :func:`near_duplicate_table`
NEAR_DUP_SCHEMA = pa.schema([
    ("item_id", pa.string()), ("sample_id", pa.string()), ("score", pa.float64()),
    ("item_start", pa.int32()), ("item_end", pa.int32()),
    ("doc_start", pa.int32()), ("doc_end", pa.int32()), ("detail", pa.string()),
])

_PUNCT = string.punctuation.encode()
_DELETE_PUNCT = str.maketrans("", "", string.punctuation)
_PIECE = re.compile(r"\S+")
_BATCH_WORDS = 2_000_000  # a batch also closes at this many words (bounds memory for long docs)
Pairs = list[tuple[int, int]]
Tokens = Callable[[int], list[str]]


def candidate_probability(s: float, bands: int, rows: int) -> float:
    """P(a pair of Jaccard ``s`` shares at least one LSH band) = 1 - (1 - s^rows)^bands."""
    return 1.0 - (1.0 - s**rows) ** bands


def lsh_threshold(bands: int, rows: int) -> float:
    """The Jaccard at which a pair becomes a candidate with probability 1/2 (closed-form root)."""
    return (1.0 - 0.5 ** (1.0 / bands)) ** (1.0 / rows)


def approx_threshold(bands: int, rows: int) -> float:
    """The textbook LSH threshold approximation (1/b)^(1/r) (0.719 for b=14, r=8)."""
    return (1.0 / bands) ** (1.0 / rows)


def normalise_words(text: str) -> list[str]:
    """Janitor-style words of ``text``: lowercased, ASCII punctuation deleted, split on whitespace.

    Works on UTF-8 bytes (ASCII bytes never occur inside a multi-byte character), which is several
    times faster than ``str.translate`` with a deletion table.
    """
    raw = text.lower().encode("utf-8", "surrogatepass").translate(None, _PUNCT)
    return raw.decode("utf-8", "surrogatepass").split()


def word_spans(text: str, stopwords: bool = False,
               limit: int | None = None) -> tuple[list[str], list[int], list[int]]:
    """The words of :func:`normalise_words` (stopwords dropped if asked) with their character spans.

    ``limit``: stop after that many words (spans are only needed up to the last matched word).
    """
    words, starts, ends = [], [], []
    for m in _PIECE.finditer(text):
        if limit is not None and len(words) >= limit:
            break
        w = m.group().lower()
        if not w.isalnum():   # alphanumeric pieces hold no ASCII punctuation: skip the translate
            w = w.translate(_DELETE_PUNCT)
        if w and not (stopwords and w in STOPWORDS):
            words.append(w)
            starts.append(m.start())
            ends.append(m.end())
    return words, starts, ends


def shingles(words: Sequence[str], k: int) -> list[str]:
    """The ``k``-word shingles of ``words`` in order (``len(words) - k + 1`` of them, or none)."""
    if k == 1:
        return list(words)
    return list(map(" ".join, zip(*(words[i:] for i in range(k)), strict=False)))


def jaccard(a: set | frozenset, b: set | frozenset) -> float:
    """Exact Jaccard similarity |a & b| / |a | b| of two sets (0 for two empty sets)."""
    inter = len(a & b)
    union = len(a) + len(b) - inter
    return inter / union if union else 0.0


@dataclass
class NearDupSettings:
    """Settings of the near-duplicate evidence; the defaults are the spec's (5-grams, b=14, r=8)."""

    shingle_words: int = 5           # words per shingle: 5-grams; 1 + stopwords = content-word sets
    bands: int = 14                  # LSH bands b: a pair is a candidate when any band agrees
    rows: int = 8                    # signature values per band r; a signature holds b * r values
    threshold: float = 0.5           # exact Jaccard a candidate must reach to be reported
    window_words: int | None = None  # window length in (content) words; None: per item-length class
    stopwords: bool = False          # drop built-in English stopwords first (paraphrase mode)
    seed: int = 0                    # seed of the MinHash functions: same seed, same output
    library: str = "auto"            # "rensa", "datasketch", or "auto" (rensa, measured faster)
    window_stride: float = 0.25      # window step as a fraction of its length (ends within 1/8)
    length_ratio: float = 1.5        # longest / shortest item sharing one window length

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting out of range."""
        checks = [
            (self.shingle_words >= 1, "shingle_words must be >= 1"),
            (self.bands >= 1 and self.rows >= 1, "bands and rows must be >= 1"),
            (0.0 < self.threshold <= 1.0, "threshold must be in (0, 1]"),
            (self.window_words is None or self.window_words >= self.shingle_words,
             "window_words must be None or >= shingle_words"),
            (self.library in LIBRARIES, f"library must be one of {LIBRARIES}"),
            (0.0 < self.window_stride <= 1.0, "window_stride must be in (0, 1]"),
            (self.length_ratio >= 1.0, "length_ratio must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"NearDupSettings: {message}, got {self}")


@dataclass
class NearDupMatch:
    """One (item, document) pair with a confirmed near duplicate: the best-matching window."""

    item_id: str
    sample_id: str
    score: float      # exact Jaccard of the item's and the window's shingle sets
    doc_start: int    # character span [doc_start, doc_end) of the window in the original document
    doc_end: int
    item_start: int   # character span of the item's shingles found in the window (usually all)
    item_end: int
    detail: str       # a reason, e.g. "jaccard 0.83 over 5-word shingles, window 140 words"


@dataclass
class WindowClass:
    """Items compared with document windows of one length (in shingles), and the window's step."""

    window: int
    stride: int
    items: list[int] = field(default_factory=list)   # positions in the index's checkable items


@dataclass
class _Item:
    key: str
    shingles: list[str]
    set: frozenset[str]
    starts: list[int]
    ends: list[int]


class _RensaBackend:
    """Signatures and banding with rensa, items in one ``RMinHashLSH`` per length class.

    rensa builds a whole batch of window signatures in one call (a matrix), but its LSH answers a
    matrix query only with flags: "more than one indexed key shares a band with this row". Each
    item is therefore indexed under two keys (``i`` and ``i + n``), so a flag means "some item is
    a candidate"; the few flagged windows are then sketched again as objects (the string shingles
    hash to the same signature) and queried for the items themselves.
    """

    def __init__(self, classes: list[list[list[str]]], s: NearDupSettings):
        import rensa

        self._rensa, self._s, self._perm = rensa, s, s.bands * s.rows
        self._lsh, self._n = [], []
        for c in classes:
            lsh = rensa.RMinHashLSH(approx_threshold(s.bands, s.rows), self._perm, s.bands)
            hashed = rensa.RMinHash.hash_token_sets(c)
            for start in (0, len(c)):
                lsh.insert_matrix(rensa.RMinHash.digest_matrix_from_token_hash_sets(
                    hashed, self._perm, s.seed), start)
            self._lsh.append(lsh)
            self._n.append(len(c))

    def prepare(self, doc_shingles: list[list[str]]) -> np.ndarray:
        """All shingles of a batch hashed (rensa's token hash) into one flat array."""
        hashed = self._rensa.RMinHash.hash_token_sets(doc_shingles)
        total = sum(map(len, hashed))
        return np.fromiter(itertools.chain.from_iterable(hashed), np.uint64, total)

    def candidates(self, c: int, prepared: np.ndarray, token_index: np.ndarray,
                   row_offsets: np.ndarray, window_tokens: Tokens) -> Pairs:
        """(item in class, window) pairs sharing a band."""
        r = self._rensa.RMinHash
        mat = r.digest_matrix_from_flat_token_hashes(prepared[token_index], row_offsets, self._perm,
                                                     self._s.seed)
        flagged = [w for w, f in enumerate(self._lsh[c].query_duplicate_flags_matrix(mat)) if f]
        if not flagged:
            return []
        sketches = r.from_token_sets([window_tokens(w) for w in flagged], self._perm, self._s.seed)
        found = self._lsh[c].query_all(sketches)
        n = self._n[c]
        return sorted({(k % n, w) for w, keys in zip(flagged, found, strict=True) for k in keys})


class _DatasketchBackend:
    """Signatures and banding with datasketch: one ``MinHashLSH`` of items per class, queried."""

    def __init__(self, classes: list[list[list[str]]], s: NearDupSettings):
        from datasketch import MinHash, MinHashLSH

        self._minhash, self._kw = MinHash, {"num_perm": s.bands * s.rows, "seed": s.seed}
        self._lsh = []
        for c in classes:
            lsh = MinHashLSH(num_perm=s.bands * s.rows, params=(s.bands, s.rows))
            for i, m in enumerate(MinHash.bulk([[x.encode() for x in sh] for sh in c], **self._kw)):
                lsh.insert(i, m, check_duplication=False)
            self._lsh.append(lsh)

    def prepare(self, doc_shingles: list[list[str]]) -> list[bytes]:
        """All shingles of a batch as bytes, flat (datasketch hashes bytes)."""
        return [x.encode() for sh in doc_shingles for x in sh]

    def candidates(self, c: int, prepared: list[bytes], token_index: np.ndarray,
                   row_offsets: np.ndarray, window_tokens: Tokens) -> Pairs:
        """(item in class, window) pairs sharing a band."""
        bounds = row_offsets.tolist()
        idx = token_index.tolist()
        rows = ([prepared[t] for t in idx[bounds[w]:bounds[w + 1]]] for w in range(len(bounds) - 1))
        lsh = self._lsh[c]
        return [(i, w) for w, m in enumerate(self._minhash.generator(rows, **self._kw))
                for i in lsh.query(m)]


def _row(pair: object, where: str) -> tuple[str, str]:
    """An input ``(id, text)`` row, or a ``TypeError`` naming the row and what was expected."""
    if isinstance(pair, tuple | list) and len(pair) == 2 and isinstance(pair[1], str):
        return str(pair[0]), pair[1]
    raise TypeError(f"{where}: expected (id, text: str), got {pair!r:.60}")


def _resolve_library(name: str) -> str:
    """``auto``: rensa (measured faster) where it is installed, else datasketch."""
    if name == "auto":
        return "rensa" if importlib.util.find_spec("rensa") else "datasketch"
    return name


def _windows(counts: np.ndarray, window: int, stride: int) -> tuple[np.ndarray, ...]:
    """Windows (document, start, end) in shingle positions over documents of ``counts`` shingles:
    starts step by ``stride``, the last ends at the document's end, a short document is one."""
    n_win = np.where(counts <= window, 1, -(-(counts - window) // stride) + 1)
    doc = np.repeat(np.arange(len(counts)), n_win)
    j = np.arange(int(n_win.sum())) - np.repeat(np.cumsum(n_win) - n_win, n_win)
    c = counts[doc]
    start = np.minimum(j * stride, np.maximum(c - window, 0))
    return doc, start, np.minimum(start + window, c)


def _refine(item: frozenset[str], sh: list[str], a: int, b: int, stride: int) -> tuple[int, int]:
    """The span near window [a, b) (ends moved up to ``stride``) of highest Jaccard with ``item``.

    Spans are ranked by the Jaccard estimated from positions (hits / (|item| + length - hits)); the
    caller recomputes the exact Jaccard of the winner and keeps the better of it and the window.
    """
    lo, hi = max(0, a - stride), min(len(sh), b + stride)
    hits = np.fromiter((x in item for x in sh[lo:hi]), np.int64, hi - lo)
    cum = np.concatenate([[0], np.cumsum(hits)])
    starts = np.arange(lo, min(a + stride, hi - 1) + 1)
    ends = np.arange(max(b - stride, lo + 1), hi + 1)
    h = cum[ends[None, :] - lo] - cum[starts[:, None] - lo]
    length = ends[None, :] - starts[:, None]
    est = np.where(length > 0, h / np.maximum(len(item) + length - h, 1), -1.0)
    si, ei = np.unravel_index(int(np.argmax(est)), est.shape)
    return int(starts[si]), int(ends[ei])


class NearDupIndex:
    """MinHash LSH index over benchmark items; :meth:`match` streams training documents past it.

    ``items`` are ``(item_id, text)`` pairs with unique ids. Items with no shingle (fewer words
    than ``shingle_words`` after normalisation) cannot be matched: their ids are in ``skipped``.
    """

    def __init__(self, items: Sequence[tuple[str, str]], settings: NearDupSettings | None = None):
        s = settings if settings is not None else NearDupSettings()
        s.validate()
        self.settings = s
        self.library = _resolve_library(s.library)
        self.skipped: list[str] = []
        self._items: list[_Item] = []
        seen: set[str] = set()
        for pos, pair in enumerate(items):
            key, text = _row(pair, f"items[{pos}]")
            if key in seen:
                raise ValueError(f"items[{pos}]: duplicate item_id {key!r}")
            seen.add(key)
            words, starts, ends = word_spans(text, s.stopwords)
            sh = shingles(words, s.shingle_words)
            if sh:
                self._items.append(_Item(key, sh, frozenset(sh), starts, ends))
            else:
                self.skipped.append(key)
        self.window_classes = self._classes()
        groups = [[self._items[i].shingles for i in wc.items] for wc in self.window_classes]
        backend = _RensaBackend if self.library == "rensa" else _DatasketchBackend
        self._backend = backend(groups, s)
        self._class_of = {i: c for c, wc in enumerate(self.window_classes) for i in wc.items}

    def __len__(self) -> int:
        """Number of checkable (indexed) items."""
        return len(self._items)

    def _classes(self) -> list[WindowClass]:
        """Window length classes: one given window, or items grouped by length (geometric mean)."""
        s, k = self.settings, self.settings.shingle_words
        if not self._items:
            return []
        if s.window_words is not None:
            w = s.window_words - k + 1
            stride = max(1, round(w * s.window_stride))
            return [WindowClass(w, stride, list(range(len(self._items))))]
        order = sorted(range(len(self._items)), key=lambda i: (len(self._items[i].shingles), i))
        out: list[WindowClass] = []
        group: list[int] = []
        for i in [*order, None]:
            n = len(self._items[i].shingles) if i is not None else math.inf
            if group and n > len(self._items[group[0]].shingles) * s.length_ratio:
                lo, hi = len(self._items[group[0]].shingles), len(self._items[group[-1]].shingles)
                w = max(1, round(math.sqrt(lo * hi)))
                out.append(WindowClass(w, max(1, round(w * s.window_stride)), sorted(group)))
                group = []
            if i is not None:
                group.append(i)
        return out

    def _words(self, text: str) -> list[str]:
        words = normalise_words(text)
        return [w for w in words if w not in STOPWORDS] if self.settings.stopwords else words

    def match(self, docs: Iterable[tuple[str, str]], batch_size: int = 1000,
              progress: Callable[[int], None] | None = None) -> Iterator[NearDupMatch]:
        """Stream ``(sample_id, text)`` documents; yield the best confirmed match per (item, doc).

        Documents are read ``batch_size`` at a time (fewer if a batch reaches 2 million words), so
        memory is bounded by the batch, not the corpus. Matches come in document order, then item
        order. ``progress`` is called with the number of documents of each finished batch.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        batch: list[tuple[str, str]] = []
        words: list[list[str]] = []
        n_words, end = 0, object()
        for pos, pair in enumerate(itertools.chain(docs, [end])):
            if pair is not end:
                batch.append(_row(pair, f"document {pos}"))
                words.append(self._words(batch[-1][1]))
                n_words += len(words[-1])
            if batch and (pair is end or len(batch) >= batch_size or n_words >= _BATCH_WORDS):
                yield from self._match_batch(batch, words)
                if progress:
                    progress(len(batch))
                batch, words, n_words = [], [], 0

    def _match_batch(self, batch: list[tuple[str, str]],
                     words: list[list[str]]) -> list[NearDupMatch]:
        """Candidates of every window class, confirmed and refined, as matches."""
        s = self.settings
        doc_sh = [shingles(w, s.shingle_words) for w in words]
        live = [d for d, sh in enumerate(doc_sh) if sh]
        if not live or not self._items:
            return []
        sh_live = [doc_sh[d] for d in live]
        counts = np.fromiter(map(len, sh_live), np.int64, len(sh_live))
        offsets = np.concatenate([[0], np.cumsum(counts)])
        prepared = self._backend.prepare(sh_live)
        best: dict[tuple[int, int], tuple[float, int, int]] = {}   # (doc, item) -> (jaccard, a, b)
        for c, wc in enumerate(self.window_classes):
            wdoc, wstart, wend = _windows(counts, wc.window, wc.stride)
            lengths = wend - wstart
            row_offsets = np.zeros(len(wdoc) + 1, np.uint64)
            np.cumsum(lengths, out=row_offsets[1:])
            first = row_offsets[:-1].astype(np.int64)
            token_index = (np.arange(int(lengths.sum()))
                           + np.repeat(offsets[wdoc] + wstart - first, lengths))
            def window_tokens(w: int, wdoc=wdoc, wstart=wstart, wend=wend) -> list[str]:
                return sh_live[int(wdoc[w])][int(wstart[w]):int(wend[w])]

            for i_local, w in self._backend.candidates(c, prepared, token_index, row_offsets,
                                                       window_tokens):
                item, d, a, b = wc.items[i_local], int(wdoc[w]), int(wstart[w]), int(wend[w])
                score = jaccard(self._items[item].set, set(sh_live[d][a:b]))
                if score > best.get((d, item), (-1.0,))[0]:
                    best[(d, item)] = (score, a, b)
        confirmed: dict[int, list[tuple[int, float, int, int]]] = {}
        for (d, item), (score, a, b) in sorted(best.items()):
            if score <= 0.0:
                continue
            it, sh = self._items[item], sh_live[d]
            ra, rb = _refine(it.set, sh, a, b, self.window_classes[self._class_of[item]].stride)
            refined = jaccard(it.set, set(sh[ra:rb]))
            if refined > score:
                score, a, b = refined, ra, rb
            if score >= s.threshold:
                confirmed.setdefault(d, []).append((item, score, a, b))
        return [m for d, found in confirmed.items()
                for m in self._as_matches(batch[live[d]], words[live[d]], sh_live[d], found)]

    def _as_matches(self, doc: tuple[str, str], words: list[str], sh: list[str],
                    found: list[tuple[int, float, int, int]]) -> list[NearDupMatch]:
        """Matches of one document, with character spans in the original texts and a detail."""
        s, k = self.settings, self.settings.shingle_words
        need = max(b for *_, b in found) + k - 1
        norm, starts, ends = word_spans(doc[1], s.stopwords, limit=need)
        if norm != words[:need]:   # the two paths implement one normalisation: never a wrong span
            raise RuntimeError(f"document {doc[0]!r}: word spans disagree with normalised words")
        unit = "words" if not s.stopwords else "content words"
        what = f"{k}-word shingles" if k > 1 else unit
        what += " (stopwords removed)" if s.stopwords else ""
        out = []
        for item, score, a, b in found:
            it, window = self._items[item], set(sh[a:b])
            hit = [p for p, x in enumerate(it.shingles) if x in window]
            p0, p1 = (hit[0], hit[-1]) if hit else (0, len(it.shingles) - 1)
            detail = (f"jaccard {score:.2f} over {what}, window {b - a + k - 1} {unit} "
                      f"(minhash lsh b={s.bands} r={s.rows}, {self.library})")
            out.append(NearDupMatch(it.key, doc[0], score, starts[a], ends[b + k - 2],
                                    it.starts[p0], it.ends[p1 + k - 1], detail))
        return out


def near_duplicate_table(index: NearDupIndex, docs: Iterable[tuple[str, str]],
                         batch_size: int = 1000,
                         progress: Callable[[int], None] | None = None) -> pa.Table:
    """All matches of ``docs`` against ``index`` as a table of :data:`NEAR_DUP_SCHEMA`.

    One row per (item, document) with a confirmed near duplicate: the column layout of
    ``contamination_matches`` minus the run, method, benchmark and hit columns the caller adds.
    """
    cols: dict[str, list] = {name: [] for name in NEAR_DUP_SCHEMA.names}
    for m in index.match(docs, batch_size=batch_size, progress=progress):
        for name in NEAR_DUP_SCHEMA.names:
            cols[name].append(getattr(m, name))
    return pa.Table.from_pydict(cols, schema=NEAR_DUP_SCHEMA)
