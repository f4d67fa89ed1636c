"""Janitor-style removal: windows around matches, short pieces removed, too-dirty documents dropped."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

from filters.contamination.cut import CutSettings, cut_regions


def test_regions_grow_by_the_window_and_keep_long_pieces():
    s = CutSettings(window=200, min_piece=200, too_dirty=10)
    regions, drop = cut_regions(5000, [(1000, 1100), (3000, 3050)], s)
    assert regions == [(800, 1300), (2800, 3250)] and not drop


def test_short_pieces_between_and_at_the_ends_are_removed_too():
    s = CutSettings(window=200, min_piece=200, too_dirty=10)
    regions, _ = cut_regions(5000, [(1000, 1100), (1550, 1600)], s)   # 150 chars between the grown spans
    assert regions == [(800, 1800)]
    regions, _ = cut_regions(5000, [(250, 300)], s)                   # 50 chars before the cut
    assert regions == [(0, 500)]
    regions, _ = cut_regions(1000, [(500, 700)], s)                   # 100 chars after
    assert regions == [(300, 1000)]


def test_too_many_regions_or_nothing_left_drops_the_document():
    s = CutSettings(window=10, min_piece=10, too_dirty=3)
    spans = [(i * 100, i * 100 + 5) for i in range(1, 5)]             # four separate regions
    assert cut_regions(1000, spans, s)[1]
    assert not cut_regions(1000, spans[:3], s)[1]
    assert cut_regions(300, [(0, 300)], s) == ([(0, 300)], True)


def test_same_pieces_as_the_janitor_for_one_match():
    """One 13-word match in a long text: the janitor's kept chunks are exactly the text we keep
    (its match ends are inclusive, hence its ``dirty_string[end + 1:]``)."""
    with redirect_stdout(io.StringIO()):
        from lm_eval.decontamination.janitor import Janitor
    filler = " ".join(f"w{i}" for i in range(400))
    item = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu"
    text = filler + " " + item + " " + filler
    jan = Janitor()
    jan.register_contaminant_python(item)
    chunks = jan.clean_python(text)
    start = text.index(item)
    regions, drop = cut_regions(len(text), [(start, start + len(item))], CutSettings())
    assert not drop and len(regions) == 1
    a, b = regions[0]
    assert chunks[0] == text[:a]
    assert chunks[1] == text[b:]
