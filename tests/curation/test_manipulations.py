"""Planted manipulations (Goel et al.): poisoning with a trigger square, interclass label swaps."""

from __future__ import annotations

import numpy as np
import pytest

from curation.datasets.manipulations import (
    add_trigger,
    interclass_confusion,
    poison,
    trigger_pixels,
)


def _images(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random 8x8 images with pixels in [0, 0.9] (never 1, so a set trigger pixel is visible) and labels 0-9."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 0.9, size=(n, 64)).astype(np.float32), rng.integers(0, 10, size=n)


def test_trigger_pixels_are_the_bottom_right_square():
    assert trigger_pixels().tolist() == [54, 55, 62, 63]  # rows 6-7, columns 6-7 of an 8x8 image
    assert trigger_pixels(side=4, size=1).tolist() == [15]
    assert sorted(trigger_pixels(side=5, size=3).tolist()) == [12, 13, 14, 17, 18, 19, 22, 23, 24]


def test_add_trigger_sets_only_the_square_on_a_copy():
    x, _ = _images(5)
    before = x.copy()
    out = add_trigger(x, value=0.5)
    np.testing.assert_array_equal(x, before)  # the input is not changed
    square = trigger_pixels()
    assert (out[:, square] == 0.5).all()
    rest = np.setdiff1d(np.arange(64), square)
    np.testing.assert_array_equal(out[:, rest], x[:, rest])


def test_poison_triggers_and_relabels_only_the_chosen_rows():
    x, y = _images(200)
    target = 3
    xp, yp, mask = poison(x, y, 0.1, target, seed=1)
    assert mask.dtype == bool and mask.sum() == 20  # round(0.1 * 200)
    assert (y[mask] != target).all()  # drawn among rows not already of the target class
    assert (yp[mask] == target).all()
    np.testing.assert_array_equal(yp[~mask], y[~mask])
    square = trigger_pixels()
    assert (xp[mask][:, square] == 1.0).all()
    rest = np.setdiff1d(np.arange(64), square)
    np.testing.assert_array_equal(xp[mask][:, rest], x[mask][:, rest])
    np.testing.assert_array_equal(xp[~mask], x[~mask])  # clean rows keep their pixels, trigger corner included
    assert not (x[:, square] == 1.0).any()  # the inputs were not changed in place
    assert xp.dtype == np.float32


@pytest.mark.parametrize("fraction,n", [(0.05, 101), (0.125, 36), (0.3, 50)])
def test_poison_count_is_the_rounded_fraction(fraction: float, n: int):
    x, y = _images(n, seed=n)
    _, _, mask = poison(x, y, fraction, 0, seed=0)
    assert mask.sum() == round(fraction * n)


def test_poison_is_deterministic_by_seed():
    x, y = _images(300)
    a = poison(x, y, 0.1, 0, seed=7)
    b = poison(x, y, 0.1, 0, seed=7)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    other = poison(x, y, 0.1, 0, seed=8)
    assert not np.array_equal(a[2], other[2])


def test_poison_excludes_rows_of_the_target_class_even_when_they_are_most():
    y = np.array([0] * 90 + [1] * 10)
    x = np.zeros((100, 64), dtype=np.float32)
    _, yp, mask = poison(x, y, 0.1, 0, seed=0)
    np.testing.assert_array_equal(np.flatnonzero(mask), np.arange(90, 100))  # all 10 non-target rows
    assert (yp == 0).all()
    with pytest.raises(ValueError, match="only 10 have a label other than 0"):
        poison(x, y, 0.11, 0, seed=0)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_poison_rejects_fractions_outside_the_open_unit_interval(fraction: float):
    x, y = _images(20)
    with pytest.raises(ValueError, match="fraction"):
        poison(x, y, fraction, 0, seed=0)


def test_interclass_confusion_swaps_exactly_the_masked_labels():
    _, y = _images(400)
    a, b = 2, 5
    swapped, mask = interclass_confusion(y, (a, b), 0.25, seed=3)
    assert mask.dtype == bool
    assert set(y[mask].tolist()) <= {a, b}  # only samples of the two classes are touched
    for src in (a, b):
        assert (mask & (y == src)).sum() == round(0.25 * (y == src).sum())
    np.testing.assert_array_equal(swapped[mask & (y == a)], b)
    np.testing.assert_array_equal(swapped[mask & (y == b)], a)
    np.testing.assert_array_equal(swapped[~mask], y[~mask])
    assert (swapped != y).sum() == mask.sum()
    # the counts of the two classes are exchanged by exactly the swapped rows
    assert (swapped == a).sum() == (y == a).sum() - (mask & (y == a)).sum() + (mask & (y == b)).sum()


def test_interclass_confusion_is_deterministic_and_leaves_its_input():
    _, y = _images(400)
    before = y.copy()
    one = interclass_confusion(y, [1, 7], 0.5, seed=0)
    two = interclass_confusion(y, [1, 7], 0.5, seed=0)
    np.testing.assert_array_equal(y, before)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    assert not np.array_equal(one[1], interclass_confusion(y, [1, 7], 0.5, seed=1)[1])


def test_interclass_confusion_with_fraction_one_swaps_both_classes_entirely():
    y = np.array([0, 1, 2, 1, 0, 2, 2])
    swapped, mask = interclass_confusion(y, (0, 2), 1.0, seed=0)
    np.testing.assert_array_equal(swapped, [2, 1, 0, 1, 2, 0, 0])
    np.testing.assert_array_equal(mask, [True, False, True, False, True, True, True])


@pytest.mark.parametrize("classes,fraction,match", [
    ((4, 4), 0.1, "two different classes"),
    ((1, 2), 0.0, "fraction"),
    ((1, 2), -0.5, "fraction"),
    ((1, 2), 1.01, "fraction"),
])
def test_interclass_confusion_rejects_bad_arguments(classes, fraction: float, match: str):
    _, y = _images(50)
    with pytest.raises(ValueError, match=match):
        interclass_confusion(y, classes, fraction, seed=0)
