"""Where one benchmark item occurs in one document: matched runs, hits and token coverage.

Pure computation over two token sequences (:class:`~filters.contamination.normalize.Tokens`).
The index (:mod:`filters.contamination.ngrams`) only proposes candidate (item, document) pairs;
this module decides, for each pair, by the rules below:

* **longest match**: the longest run of consecutive item tokens found in the same order in the
  document (masked tokens, so re-numbered copies count; the exact-token length is kept too).
  The janitor's rule, "an n-gram of the item occurs in the document", is ``longest >= n``.
* **hits**: how many distinct ``k``-grams of the item occur in the document, wherever: the
  absolute-hit rule, which still fires when re-wrapping or edits break a copy into fragments,
  and does not fade when the copy is a small part of a long document. Hits compare exact
  tokens (numbers included): with digits masked, lists of numbers would match each other.
* **content**: the most digit-free tokens inside one aligned run. A masked run only stands for
  a re-numbered copy when its digit-free tokens alone reach the rule's length; otherwise the
  janitor's own rule (an exact run, numbers equal) applies.
* **coverage** (Llama 2 style): the fraction of item tokens inside matches at least
  ``min_run`` tokens long, where matches on the same alignment separated by at most ``skip``
  mismatched tokens count as one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .normalize import Tokens, WordHasher, ngram_hashes


@dataclass
class Run:
    """A maximal aligned match: item tokens ``i0..i1`` equal document tokens ``d0..d1`` (inclusive)."""

    i0: int
    i1: int
    d0: int
    d1: int

    @property
    def length(self) -> int:
        """Tokens in the run."""
        return self.i1 - self.i0 + 1


@dataclass
class PairMatch:
    """What one item / document pair shares (token counts are of the item's tokens)."""

    item_tokens: int
    longest: int            # longest aligned run, masked tokens
    longest_exact: int      # longest run of exactly equal tokens (numbers included)
    longest_content: int    # most digit-free tokens in one aligned run (what a re-numbered copy keeps)
    hits: int               # distinct item k-grams (exact tokens) found in the document
    coverage: float         # Llama-2 coverage in [0, 1]
    best: Run | None        # the longest run
    runs: list[Run]         # every aligned run of at least k tokens


def aligned_runs(item_hashes: np.ndarray, doc_hashes: np.ndarray, k: int) -> list[Run]:
    """Maximal runs of equal ``k``-gram hashes on one alignment (diagonal), as token ranges.

    ``item_hashes``/``doc_hashes`` are the k-gram hashes of the two sequences (position j =
    tokens j..j+k-1). A run of r consecutive equal k-grams covers r + k - 1 tokens.
    """
    if len(item_hashes) == 0 or len(doc_hashes) == 0:
        return []
    order = np.argsort(item_hashes, kind="stable")
    sorted_h = item_hashes[order]
    lo = np.searchsorted(sorted_h, doc_hashes, side="left")
    hi = np.searchsorted(sorted_h, doc_hashes, side="right")
    counts = hi - lo
    if not counts.any():
        return []
    dpos = np.repeat(np.arange(len(doc_hashes)), counts)
    starts = np.repeat(lo, counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    ipos = order[starts + within]
    diag = dpos - ipos
    key = np.lexsort((ipos, diag))
    ipos, diag = ipos[key], diag[key]
    new = np.ones(len(ipos), dtype=bool)
    new[1:] = (diag[1:] != diag[:-1]) | (ipos[1:] != ipos[:-1] + 1)
    firsts = np.nonzero(new)[0]
    lasts = np.concatenate([firsts[1:] - 1, [len(ipos) - 1]])
    return [Run(int(ipos[a]), int(ipos[b]) + k - 1, int(ipos[a] + diag[a]), int(ipos[b] + diag[b]) + k - 1)
            for a, b in zip(firsts, lasts, strict=True)]


def longest_exact(item: Tokens, doc: Tokens, run: Run) -> int:
    """Longest stretch of exactly equal tokens inside an aligned run (masked-equal tokens may differ)."""
    a = item.exact[run.i0 : run.i1 + 1]
    b = doc.exact[run.d0 : run.d1 + 1]
    best = cur = 0
    for x, y in zip(a, b, strict=True):
        cur = cur + 1 if x == y else 0
        best = max(best, cur)
    return best


def coverage(runs: list[Run], n_tokens: int, min_run: int, skip: int) -> float:
    """Fraction of ``n_tokens`` item tokens inside matches of >= ``min_run`` tokens, gaps <= ``skip`` bridged."""
    if not runs or n_tokens == 0:
        return 0.0
    merged: list[Run] = []
    for r in sorted(runs, key=lambda r: (r.d0 - r.i0, r.i0)):
        last = merged[-1] if merged else None
        if last and (last.d0 - last.i0) == (r.d0 - r.i0) and r.i0 - last.i1 - 1 <= skip:
            merged[-1] = Run(last.i0, max(last.i1, r.i1), last.d0, max(last.d1, r.d1))
        else:
            merged.append(r)
    covered = np.zeros(n_tokens, dtype=bool)
    for r in merged:
        if r.length >= min_run:
            covered[r.i0 : r.i1 + 1] = True
    return float(covered.mean())


def match_pair(item: Tokens, doc: Tokens, k: int, *, min_run: int = 10, skip: int = 4,
               hasher: WordHasher | None = None, item_hashes: np.ndarray | None = None) -> PairMatch:
    """Compare one item with one document (see the module docstring for each measure)."""
    hasher = hasher or WordHasher()
    ih = item_hashes if item_hashes is not None else ngram_hashes(hasher(item.masked), k)
    dh = ngram_hashes(hasher(doc.masked), k)
    runs = aligned_runs(ih, dh, k)
    if not runs:
        return PairMatch(len(item), 0, 0, 0, 0, 0.0, None, [])
    best = max(runs, key=lambda r: (r.length, -r.i0))
    content = np.fromiter(("0" not in t for t in item.masked), bool, len(item))
    csum = np.concatenate([[0], np.cumsum(content)])
    ie, de = ngram_hashes(hasher(item.exact), k), ngram_hashes(hasher(doc.exact), k)
    hits = int(np.unique(ie[np.isin(ie, de)]).size) if len(ie) else 0
    exact = max(longest_exact(item, doc, r) for r in runs)
    most_content = max(int(csum[r.i1 + 1] - csum[r.i0]) for r in runs)
    return PairMatch(len(item), best.length, exact, most_content, hits, coverage(runs, len(item), min_run, skip),
                     best, runs)
