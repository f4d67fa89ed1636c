"""Fingerprints and cache keys: what makes a run id, a factors name or a baseline's id.

Every key is a truncated SHA-256 over a canonical form of its inputs, so the same inputs give the
same key in any process: a repeated request finds its finished run or cached factors, and a
changed model or dataset never reuses stale ones. Changing any function here changes the keys of
existing stores (their runs would be recomputed rather than resumed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils import data


def digest(*parts: Any) -> str:
    """A 24-hex-digit key of JSON-able ``parts`` (dict keys sorted, other objects as ``str``)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def model_fingerprint(model: nn.Module) -> str:
    """Hash of a model's parameter and buffer names, shapes, dtypes and values.

    kronfluence's wrappers are ignored, so a model hashes the same before and after preparation.
    """
    h = hashlib.sha256()
    state = {
        name.replace("original_module.", ""): tensor
        for name, tensor in model.state_dict().items()
        if not name.endswith("_constant")
    }
    for name, tensor in sorted(state.items()):
        t = tensor.detach().cpu().clone(memory_format=torch.contiguous_format)  # strides too
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # 0-dim too
    return h.hexdigest()[:32]


def data_fingerprint(dataset: data.Dataset) -> str:
    """Hash of what the model actually sees: a dataset's tensors (token ids, masks, labels...).

    Two datasets with the same sample ids but another tokenizer or ``max_length`` differ here,
    so cached factors and finished runs are never reused for them.
    """
    h = hashlib.sha256()

    def add(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().clone(memory_format=torch.contiguous_format)  # strides too
            h.update(f"{tuple(t.shape)}:{t.dtype};".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # 0-dim too
        elif isinstance(value, dict):
            for k in sorted(value):
                h.update(str(k).encode())
                add(value[k])
        elif isinstance(value, list | tuple):
            for v in value:
                add(v)
        else:
            h.update(repr(value).encode())

    tensors = getattr(dataset, "tensors", None)  # TensorDataset: hash the storage at once
    if tensors is not None:
        add(list(tensors))
    elif all(hasattr(dataset, a) for a in ("input_ids", "attention_mask", "labels")):
        add([dataset.input_ids, dataset.attention_mask, dataset.labels])  # CompletionDataset
    else:
        for i in range(len(dataset)):  # type: ignore[arg-type]
            add(dataset[i])
    return h.hexdigest()[:32]


def ids_fingerprint(ids: Sequence[str]) -> str:
    """Hash of an ordered list of sample ids (a dataset's identity for caching)."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]


def array_fingerprint(array: np.ndarray) -> str:
    """Hash of an integer array's bytes and shape (e.g. a candidates matrix), 24 hex digits."""
    return hashlib.sha256(array.tobytes() + str(array.shape).encode()).hexdigest()[:24]


__all__ = ["array_fingerprint", "data_fingerprint", "digest", "ids_fingerprint", "model_fingerprint"]


def short_digest(*parts: Any) -> str:
    """The first 12 hex digits of :func:`digest`: artifact and generated-data keys (short file names)."""
    return digest(*parts)[:12]
