"""Text normalisers for contamination matching: words (lm-eval janitor semantics) and code tokens.

Both turn a text into a token sequence plus each token's character span in the original text,
so that a match found on normalised tokens can be shown, and cut, in the raw document.

* ``words``: lowercase, delete ASCII punctuation, split on whitespace: the janitor's
  normalisation (``lm_eval/decontamination/janitor.py``), except that non-ASCII capitals are
  lowercased too. A whitespace-separated piece that is punctuation only disappears, as in the
  janitor's registration of contaminants. Lowercasing and splitting follow Rust's Unicode
  tables (polars) on both paths, and the separators \x1c-\x1f are spaces. Each token also has a *masked* form in which every
  run of ASCII digits reads ``0``: a GSM problem re-instantiated with new numbers matches its
  original on masked tokens only, which is how re-numbered copies are told from verbatim ones.
* ``code``: identifiers, numbers and single punctuation characters of (Python-like) source.
  Identifiers that are not keywords, builtins or attribute names are masked to ``ID``, so a
  solution whose function, parameters and locals were renamed matches its original. Docstrings
  (any triple-quoted text) and comments are skipped and one-line string literals read ``STR``:
  prose and doctest examples inside them would otherwise match as runs of ``ID``.
"""

from __future__ import annotations

import builtins
import keyword
import re
import string
from dataclasses import dataclass

import numpy as np
import polars as pl

NORMALISERS = ("words", "code")
#: bumped when a normaliser's output changes, so indexes built by the old one are not reused
NORMALISER_VERSIONS = {"words": 2, "code": 2}

_DIGITS = re.compile(r"[0-9]+")  # ASCII digits: Python and Rust disagree on newer Unicode digits
_PIECE = re.compile(r"\S+")
_SEPARATORS = str.maketrans({c: " " for c in "\x1c\x1d\x1e\x1f"})  # whitespace to Python, not to Rust
_TRIPLE_D, _TRIPLE_S = chr(34) * 3, chr(39) * 3
_CODE_TOKEN = re.compile(
    "(?P<doc>" + _TRIPLE_D + r"[\s\S]*?" + _TRIPLE_D + "|" + _TRIPLE_S + r"[\s\S]*?" + _TRIPLE_S + ")"  # docstrings: skipped
    + r"|(?P<comment>#[^\n]*)"  # comments: skipped
    + r"""|(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""  # one-line strings: one STR token
    + r"|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|\S")
_KEEP_NAMES = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins)) | {"self", "cls"}
_CODE_LINE = re.compile(r"^[ \t]*(?:def |class |return\b|import |from \S+ import |for .+:|if .+:|while .+:)", re.M)

_PUNCT_CLASS = "[" + re.escape(string.punctuation) + "]"
_POLY = np.uint64(0x9E3779B97F4A7C15)


def _hash_version() -> str:
    """Identifier of the token hash: polars' 64-bit string hash is stable only within one polars
    version, so the version is part of it, and an index built by another version is rebuilt."""
    import polars

    return f"polars-{polars.__version__}-hash0-poly-v1"


#: identifier of the hash function; stored with every index so a changed function is never joined
HASH_VERSION = _hash_version()


@dataclass
class Tokens:
    """A normalised token sequence with each token's [start, end) span in the original text.

    ``masked`` is the sequence the index hashes (digits masked for ``words``; identifiers masked
    for ``code``); ``exact`` is the unmasked normalised sequence used to tell verbatim matches
    from re-numbered ones.
    """

    exact: list[str]
    masked: list[str]
    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.masked)

    def span(self, first: int, last: int) -> tuple[int, int]:
        """Character span [start, end) of tokens ``first``..``last`` (inclusive)."""
        return int(self.starts[first]), int(self.ends[last])


def normalise_pieces(pieces: list[str]) -> list[str]:
    """Whitespace-free pieces, janitor style: lowercased, ASCII punctuation deleted.

    Lowercasing is done by polars (Rust), like the indexing fast path, so both agree even on
    characters whose case mapping is newer than Python's Unicode tables.
    """
    if not pieces:
        return []
    return pl.Series(pieces, dtype=pl.String).str.to_lowercase().str.replace_all(_PUNCT_CLASS, "").to_list()


def normalise_word(piece: str) -> str:
    """One whitespace-separated piece, normalised (:func:`normalise_pieces` of one piece)."""
    return normalise_pieces([piece])[0]


def word_tokens(text: str) -> Tokens:
    """``words`` normalisation of ``text`` with spans (pieces that normalise to nothing are dropped)."""
    matches = list(_PIECE.finditer(text.translate(_SEPARATORS)))
    exact, starts, ends = [], [], []
    for m, tok in zip(matches, normalise_pieces([m.group() for m in matches]), strict=True):
        if tok:
            exact.append(tok)
            starts.append(m.start())
            ends.append(m.end())
    masked = [_DIGITS.sub("0", t) for t in exact]
    return Tokens(exact, masked, np.asarray(starts, np.int64), np.asarray(ends, np.int64))


def masked_words_fast(text: str) -> list[str]:
    """The masked ``words`` tokens of ``text`` without spans (:func:`masked_words_batch` of one text)."""
    return masked_words_batch([text])[0].to_list()


def masked_words_batch(texts: list[str]) -> pl.Series:
    """The masked ``words`` tokens of each text (a list column), normalised in polars (Rust, threaded).

    Equal to ``word_tokens(text).masked`` for each text: lowercasing and deleting punctuation never
    create or remove whitespace, so normalising the whole text and splitting it on whitespace
    gives the same pieces (context-dependent lowercasing, such as a Greek final sigma next to
    deleted punctuation, is the only known exception).
    """
    # Python counts the separators \x1c-\x1f as whitespace, Rust's regex does not: make them spaces
    return (pl.Series(texts, dtype=pl.String).fill_null("").str.replace_all(r"[\x1c-\x1f]", " ").str.to_lowercase()
            .str.replace_all(_PUNCT_CLASS, "").str.replace_all(r"[0-9]+", "0").str.extract_all(r"\S+"))


def code_tokens(text: str) -> Tokens:
    """``code`` normalisation: identifier / number / punctuation tokens, local names masked to ``ID``."""
    exact, masked, starts, ends = [], [], [], []
    prev = ""
    for m in _CODE_TOKEN.finditer(text):
        if m.group("doc") or m.group("comment"):
            continue
        tok = m.group()
        is_name = tok[0].isalpha() or tok[0] == "_"
        exact.append(tok)
        masked.append("STR" if m.group("str") else
                      "ID" if is_name and tok not in _KEEP_NAMES and prev != "." else tok)
        starts.append(m.start())
        ends.append(m.end())
        prev = tok
    return Tokens(exact, masked, np.asarray(starts, np.int64), np.asarray(ends, np.int64))


def looks_like_code(text: str, min_lines: int = 2) -> bool:
    """Whether ``text`` holds at least ``min_lines`` lines that read like Python statements."""
    return sum(1 for _ in zip(range(min_lines), _CODE_LINE.finditer(text), strict=False)) >= min_lines


def tokens(text: str, normaliser: str) -> Tokens:
    """Tokens of ``text`` under ``normaliser`` (``words`` or ``code``)."""
    if normaliser == "words":
        return word_tokens(text)
    if normaliser == "code":
        return code_tokens(text)
    raise ValueError(f"unknown normaliser {normaliser!r}; expected one of {', '.join(NORMALISERS)}")


def batch_tokens(texts: list[str], normaliser: str) -> pl.Series:
    """The masked tokens of each text (what the index hashes), as a polars list column."""
    if normaliser == "words":
        return masked_words_batch(texts)
    return pl.Series([code_tokens(t).masked for t in texts], dtype=pl.List(pl.String))


def hash_tokens(tokens: list[str] | pl.Series) -> np.ndarray:
    """uint64 hash of each token (polars' string hash, seed 0: see :data:`HASH_VERSION`)."""
    return pl.Series(tokens, dtype=pl.String).hash(seed=0).to_numpy()


class WordHasher:
    """Hashes of token lists (kept as a class so callers can share one; stateless)."""

    def __call__(self, words: list[str]) -> np.ndarray:
        """uint64 hash of each word."""
        return hash_tokens(words)


def ngram_hashes(word_hashes: np.ndarray, n: int) -> np.ndarray:
    """Hash of each window of ``n`` consecutive word hashes (polynomial, wrapping uint64 arithmetic).

    Returns ``len(word_hashes) - n + 1`` values (none when the sequence is shorter than ``n``);
    value ``j`` identifies words ``j..j+n-1`` in order.
    """
    m = len(word_hashes) - n + 1
    if m <= 0:
        return np.zeros(0, np.uint64)
    with np.errstate(over="ignore"):
        acc = word_hashes[:m].copy()
        for i in range(1, n):
            acc *= _POLY
            acc += word_hashes[i : i + m]
    return acc


def batch_ngram_hashes(
    docs: list[list[str]] | pl.Series, n: int, hasher: WordHasher | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(document index, position, n-gram hash) of every n-gram of a batch of token lists.

    One hashing pass over the concatenated batch; windows that cross a document boundary are
    dropped, so the result equals hashing each document alone.
    """
    series = docs if isinstance(docs, pl.Series) else pl.Series(docs, dtype=pl.List(pl.String))
    lengths = series.list.len().fill_null(0).to_numpy().astype(np.int64)
    if lengths.sum() == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty.astype(np.int32), np.zeros(0, np.uint64)
    flat = series.explode().drop_nulls()
    hashes = ngram_hashes(hash_tokens(flat), n)
    doc_of = np.repeat(np.arange(len(lengths)), lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pos = np.arange(len(flat)) - offsets[doc_of]
    keep = pos[: len(hashes)] + n <= lengths[doc_of[: len(hashes)]]
    return doc_of[: len(hashes)][keep], pos[: len(hashes)][keep].astype(np.int32), hashes[keep]
