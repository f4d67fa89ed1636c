"""FAISS over a gradient index's vectors: build, save, load, search by inner product, on GPU when possible.

``flat`` (``IndexFlatIP``) is exact over the projections and fast enough for 10^4-10^6 vectors;
``ivf`` (``IndexIVFFlat`` with inner-product metric) scans ``nprobe`` of ``nlist`` clusters, for
larger sets. Searching moves the index to a GPU when the installed FAISS has GPU support
(``StandardGpuResources``) and sees a device; files on disk are always CPU indexes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

SEARCHES = ("flat", "ivf")


def search_settings(kind: str, n: int, nlist: int | None = None, nprobe: int | None = None) -> dict[str, Any]:
    """The recorded settings of a search index over ``n`` vectors (defaults filled in)."""
    if kind not in SEARCHES:
        raise ValueError(f"search index must be one of {', '.join(SEARCHES)}, got {kind!r}")
    if kind == "flat":
        return {"kind": "flat"}
    nlist = nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))  # FAISS wants ~39 training points a cluster
    if nlist < 1 or nlist > n:
        raise ValueError(f"nlist must be in [1, {n}] for {n} vectors, got {nlist}")
    nprobe = nprobe or max(1, math.ceil(nlist / 8))
    return {"kind": "ivf", "nlist": int(nlist), "nprobe": int(min(nprobe, nlist))}


def build(vectors: np.ndarray, settings: dict[str, Any]) -> Any:
    """A CPU FAISS index over ``vectors`` (n x dim float32), per :func:`search_settings`."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    if settings["kind"] == "flat":
        index = faiss.IndexFlatIP(dim)
    else:
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, settings["nlist"], faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = settings["nprobe"]
    index.add(vectors)
    return index


def save(index: Any, path: Path) -> None:
    """Write a CPU FAISS index to ``path`` (the caller makes it atomic)."""
    import faiss

    faiss.write_index(index, str(path))


def load(path: Path, settings: dict[str, Any]) -> Any:
    """A saved index, moved to a GPU when FAISS has GPU support and sees one (see :func:`on_gpu`)."""
    import faiss

    index = faiss.read_index(str(path))
    if settings.get("kind") == "ivf":
        faiss.extract_index_ivf(index).nprobe = settings["nprobe"]
    return on_gpu(index)


def on_gpu(index: Any) -> Any:
    """``index`` on GPU 0 when the installed FAISS has GPU support and a device, else as it is."""
    import faiss

    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() < 1:
        return index
    resources = faiss.StandardGpuResources()  # pragma: no cover - needs faiss-gpu and a GPU
    gpu = faiss.index_cpu_to_gpu(resources, 0, index)  # pragma: no cover
    gpu.resources_ref = resources  # pragma: no cover - keep the resources alive with the index
    return gpu  # pragma: no cover


def search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Inner products and positions of each query's ``k`` largest-inner-product vectors, best first."""
    import faiss

    queries = np.ascontiguousarray(queries, dtype=np.float32)
    values, positions = index.search(queries, k)
    short = np.flatnonzero((positions < 0).any(axis=1))
    if len(short):  # an IVF probe found fewer than k: search those queries in every cluster
        every = faiss.SearchParametersIVF(nprobe=index.nlist)
        values[short], positions[short] = index.search(queries[short], k, params=every)
    return values, positions.astype(np.int64)


__all__ = ["SEARCHES", "build", "load", "on_gpu", "save", "search", "search_settings"]
