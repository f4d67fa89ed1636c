"""Make sequence cost follow real token counts: per-batch padding and length-ordered batches.

Datasets such as :class:`~attribution.data.CompletionDataset` pad every sample to ``max_length``,
so a corpus of mostly short documents pays for its longest one in every forward and backward
pass. Two things fix that without changing any score:

- :func:`trim_padding_collate` collates a batch and cuts the trailing token positions that are
  padding in *every* sample of the batch (attention mask 0 and, when there are labels, label
  -100). With right padding a causal or masked model gives the same outputs on the kept
  positions, so losses, gradients and therefore influence scores are unchanged;
- :func:`length_sorted` orders a block of sample indices by length, so each batch holds samples
  of similar length and trimming removes most of the padding. The engine scores the block in
  that order and puts the scores back in the caller's order (:func:`inverse_permutation`).

Per-sample gradients do not depend on which samples share a batch, so with given factors the
scores are those of an unsorted, fully padded run up to float rounding (the matrix shapes
differ). Factors fitted with labels sampled from the model (the default, true Fisher) are a
random draw, and batches of another shape draw other labels: the factors, hence the scores, are
another draw of the same estimate (with the data's labels, ``use_empirical_fisher``, they agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils import data


def sample_lengths(dataset: data.Dataset) -> np.ndarray | None:
    """Each sample's length up to its last real token (1 + last position with attention), or None.

    None when the samples are not token sequences with an ``attention_mask`` (tabular data):
    there is nothing to trim. A dataset holding its masks as one ``attention_mask`` tensor
    attribute (as :class:`~attribution.data.CompletionDataset` does) is read without touching
    its items; a ``Subset`` of one is read through its indices.
    """
    mask = _mask_tensor(dataset)
    if mask is None:
        n = len(dataset)  # type: ignore[arg-type]
        if n == 0:
            return None
        first = dataset[0]
        if not isinstance(first, dict) or "attention_mask" not in first:
            return None
        mask = torch.stack([torch.as_tensor(dataset[i]["attention_mask"]) for i in range(n)])
    if mask.ndim != 2:
        return None
    positions = torch.arange(1, mask.shape[1] + 1)
    return (mask.ne(0).long() * positions).amax(dim=1).numpy().astype(np.int64)


def _mask_tensor(dataset: data.Dataset) -> torch.Tensor | None:
    if isinstance(dataset, data.Subset):
        inner = _mask_tensor(dataset.dataset)
        return None if inner is None else inner[torch.as_tensor(list(dataset.indices), dtype=torch.long)]
    mask = getattr(dataset, "attention_mask", None)
    return mask if isinstance(mask, torch.Tensor) else None


def length_sorted(indices: Sequence[int], lengths: np.ndarray | None) -> list[int]:
    """``indices`` ordered by descending sample length (stable: ties keep their order).

    Longest first, so a batch that does not fit in memory fails at once rather than at the end.
    Without lengths (tabular data) the indices come back as they are.
    """
    indices = [int(i) for i in indices]
    if lengths is None or len(indices) < 2:
        return indices
    keys = -np.asarray(lengths)[indices]
    return [indices[j] for j in np.argsort(keys, kind="stable")]


def inverse_permutation(order: Sequence[int], original: Sequence[int]) -> np.ndarray:
    """Positions in ``order`` of each element of ``original`` (both hold the same distinct indices).

    A score array computed in ``order`` (along some axis) indexed with the result is in the
    ``original`` order.
    """
    where = {int(v): i for i, v in enumerate(order)}
    return np.asarray([where[int(v)] for v in original], dtype=np.int64)


def trim_padding_collate(items: list[Any]) -> Any:
    """torch's default collation, then trailing all-padding token positions cut from the batch.

    A batch is trimmed when it is a dict with a 2-D ``attention_mask``: the kept length is one
    past the last position where any sample has attention (or a label other than -100, if the
    batch has ``labels``). Every tensor of the dict shaped (batch, length, ...) is cut to it;
    other values, and batches of any other form, are left as collated.
    """
    batch = data.default_collate(items)
    if not isinstance(batch, dict):
        return batch
    mask = batch.get("attention_mask")
    if not isinstance(mask, torch.Tensor) or mask.ndim != 2:
        return batch
    used = mask.ne(0).any(dim=0)
    labels = batch.get("labels")
    if isinstance(labels, torch.Tensor) and labels.shape == mask.shape:
        used = used | labels.ne(-100).any(dim=0)
    nonzero = used.nonzero()
    keep = int(nonzero[-1]) + 1 if len(nonzero) else 1
    if keep == mask.shape[1]:
        return batch
    size = mask.shape
    return {k: (v[:, :keep] if isinstance(v, torch.Tensor) and v.ndim >= 2 and v.shape[:2] == size else v)
            for k, v in batch.items()}


def length_statistics(lengths: np.ndarray | None, padded_to: int | None = None) -> dict[str, Any] | None:
    """Token counts of a sequence dataset: total real tokens, the padded total and their ratio.

    ``padded_to`` is the padded length of each sample (default: the longest sample). What a
    run records so a user sees how much padding per-batch trimming avoided.
    """
    if lengths is None or len(lengths) == 0:
        return None
    padded_to = int(padded_to if padded_to is not None else lengths.max())
    real = int(lengths.sum())
    return {"samples": int(len(lengths)), "real_tokens": real, "padded_tokens": padded_to * len(lengths),
            "real_share": real / max(padded_to * len(lengths), 1), "max_length": int(lengths.max()),
            "median_length": float(np.median(lengths))}


__all__ = ["inverse_permutation", "length_sorted", "length_statistics", "sample_lengths", "trim_padding_collate"]
