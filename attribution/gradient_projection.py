"""Random projections of preconditioned per-sample gradients: the vectors of a gradient index.

An influence score is ``g_q^T P^-1 g_n`` with ``P`` the damped EK-FAC (or K-FAC, diagonal,
identity). In each tracked Linear's eigenbasis ``P^-1`` is the elementwise ``1 / (Lambda + damping)``
(:mod:`attribution.candidates`), so with ``u = R * sqrt(1 / (Lambda + damping))`` for the eigenbasis
gradient ``R = Q_out^T G Q_in`` the score is the plain inner product ``<u_q, u_n>`` summed over
modules. A gradient index stores a random projection ``Phi u`` of every training sample's ``u``:
``E[<Phi u_q, Phi u_n>] = <u_q, u_n>`` (Johnson-Lindenstrauss), so a nearest-neighbour search by
inner product finds the most influential samples, approximately, and exact re-scoring of the
candidates it returns fixes the order.

Projections (:class:`ProjectionSpec`):

- ``rademacher`` / ``gaussian``: a dense JL matrix with entries ``+-1/sqrt(k)`` or ``N(0, 1/k)``.
  Never held whole: it is generated a block of gradient rows at a time from a seeded NumPy
  generator (seed, module name, block), the same on any machine and device, and kept on the
  device while it fits ``max_cache_bytes``. Costs ``k`` multiply-adds per gradient entry and
  sample: meant for models with up to ~10^7 tracked parameters.
- ``kronecker``: ``Phi = P_out (x) P_in`` per module (``k = k_out x k_in``, Rademacher factors), so
  ``Phi u = P_out^T U P_in``: ``k_in`` multiply-adds per gradient entry and a matrix of
  ``(out + in) x sqrt(k)`` floats. Unbiased too, with more variance than a dense JL of the same
  ``k``; the choice for large models.
- ``identity``: no projection (``u`` itself, one entry per parameter): inner products are the
  exact scores. For tests and tiny models.

``per_module`` gives every tracked module its own ``k`` dimensions (the vector has
``k x modules`` entries, and per-module scores stay separable); otherwise one global projection
into ``k`` dimensions sums every module's contribution.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

PROJECTIONS = ("rademacher", "gaussian", "kronecker", "identity")
#: Bumped whenever the same :class:`ProjectionSpec` would give other vectors (kept in index configs).
PROJECTION_VERSION = 1
_MATRIX_FLOATS = 2**24  # floats of one generated block of a dense projection matrix (64 MiB)
_U_FLOATS = 2**16  # floats of one sample's block of preconditioned gradient rows


@dataclass(frozen=True)
class ProjectionSpec:
    """How gradients are projected: ``dim`` (k, per module or global), seed, kind, per module or global.

    Part of an index's identity: a query is projected with the index's own spec, so its vectors
    meet the training vectors in the same space.
    """

    dim: int = 1024
    seed: int = 0
    kind: str = "rademacher"
    per_module: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim <= 0:
            raise ValueError(f"projection dim must be a positive integer, got {self.dim!r}")
        if self.kind not in PROJECTIONS:
            raise ValueError(f"projection kind must be one of {', '.join(PROJECTIONS)}, got {self.kind!r}")
        if self.kind == "kronecker":
            kronecker_shape(self.dim)  # raises for a dim without a usable factorisation


def kronecker_shape(dim: int) -> tuple[int, int]:
    """(k_out, k_in) with ``k_out * k_in = dim`` and ``k_in`` the largest divisor at most sqrt(dim)."""
    k_in = max(d for d in range(1, math.isqrt(dim) + 1) if dim % d == 0)
    if k_in == 1 and dim > 3:
        raise ValueError(f"kronecker projection: dim {dim} has no factor pair; use a power of two such as "
                         f"{2 ** round(math.log2(dim))}")
    return dim // k_in, k_in


@dataclass
class _Module:
    name: str
    out_features: int
    in_features: int
    scale: torch.Tensor | None  # (out, in) sqrt(1 / (Lambda + damping)); None for identity
    lo: int  # first output column of the module's slot
    hi: int
    rows: int  # gradient rows per block

    @property
    def size(self) -> int:
        return self.out_features * self.in_features


class Projector:
    """Maps per-sample gradients in compact per-token form to projected preconditioned vectors.

    ``pre`` is the candidate scorer's preconditioners by module name (eigenvectors, inverse damped
    Lambda; :func:`attribution.candidates._preconditioner`), in the model's module order; the
    gradients come from :func:`attribution.gradients.token_factors` with those preconditioners.
    ``layout`` lists (name, out, in) per module, to record with an index and check against;
    ``preconditioners`` keeps ``pre`` (what ``token_factors`` needs to rotate gradients).
    """

    def __init__(self, pre: Mapping[str, Any], spec: ProjectionSpec, device: str | torch.device = "cpu",
                 max_cache_bytes: int = 2**30):
        self.spec = spec
        self.device = torch.device(device)
        self.preconditioners = dict(pre)
        self.modules: list[_Module] = []
        col = 0
        for name, p in pre.items():
            out_f, in_f = p.out_features, p.in_features
            scale = None
            if p.inverse is not None:
                scale = p.inverse.reshape(-1, in_f)[:out_f].sqrt().contiguous()
            if spec.kind == "identity":
                width, rows = out_f * in_f, max(1, _U_FLOATS // in_f)
            elif spec.kind == "kronecker":
                width, rows = spec.dim, max(1, _U_FLOATS // in_f)
            else:
                width, rows = spec.dim, max(1, min(_U_FLOATS // in_f, _MATRIX_FLOATS // (in_f * spec.dim)))
            lo = col if spec.per_module or spec.kind == "identity" else 0
            self.modules.append(_Module(name, out_f, in_f, scale, lo, lo + width, min(rows, out_f)))
            col = lo + width
        self.dim = col if (spec.per_module or spec.kind == "identity") else spec.dim
        self._cache: dict[tuple[str, int], Any] = {}
        self._cache_left = max_cache_bytes

    @property
    def layout(self) -> list[list[Any]]:
        """(name, out features, in features with the bias column) of every module, in slot order."""
        return [[m.name, m.out_features, m.in_features] for m in self.modules]

    def project(self, batches: Sequence[Mapping[str, tuple[torch.Tensor, torch.Tensor]]]) -> torch.Tensor:
        """Projected preconditioned gradients of every sample of ``batches``, (samples x dim) float32.

        Each batch maps module names to ``(A, X)`` of shapes (B, T, out) and (B, T, in), the
        sample's eigenbasis gradient being ``A[b]^T X[b]``. A dense projection's blocks are made
        once for all the batches given, so pass many at a time when the matrix is not cached.
        """
        sizes = [next(iter(f.values()))[0].shape[0] for f in batches] if self.modules else []
        out = torch.zeros(sum(sizes), self.dim, dtype=torch.float32, device=self.device)
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        with torch.no_grad():
            for m in self.modules:
                for b, r0 in enumerate(range(0, m.out_features, m.rows)):
                    r1 = min(r0 + m.rows, m.out_features)
                    matrix = self._matrix(m, b, r1 - r0)
                    for i, f in enumerate(batches):
                        a, x = f[m.name]
                        u = torch.bmm(a[:, :, r0:r1].transpose(1, 2), x)  # (B, rows, in)
                        if m.scale is not None:
                            u.mul_(m.scale[r0:r1])
                        rows = out[starts[i]: starts[i + 1]]
                        if self.spec.kind == "identity":
                            rows[:, m.lo + r0 * m.in_features: m.lo + r1 * m.in_features] = u.reshape(len(u), -1)
                        elif self.spec.kind == "kronecker":
                            p_out, p_in = matrix
                            t = torch.matmul(u, p_in)  # (B, rows, k_in)
                            rows[:, m.lo: m.hi] += torch.einsum("ro,brk->bok", p_out[r0:r1], t).reshape(len(u), -1)
                        else:
                            rows[:, m.lo: m.hi] += u.reshape(len(u), -1) @ matrix
        return out

    def _matrix(self, m: _Module, block: int, rows: int) -> Any:
        """The projection of one block of a module's gradient rows (cached while the budget lasts)."""
        if self.spec.kind == "identity":
            return None
        if self.spec.kind == "kronecker":
            block = 0  # the factors cover the whole module
        key = (m.name, block)
        if key in self._cache:
            return self._cache[key]
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.spec.seed, _name_key(m.name), block])))
        if self.spec.kind == "kronecker":
            k_out, k_in = kronecker_shape(self.spec.dim)
            matrix: Any = (_signs(rng, (m.out_features, k_out), k_out, self.device),
                           _signs(rng, (m.in_features, k_in), k_in, self.device))
            size = (m.out_features * k_out + m.in_features * k_in) * 4
        else:
            shape = (rows * m.in_features, self.spec.dim)
            if self.spec.kind == "rademacher":
                matrix = _signs(rng, shape, self.spec.dim, self.device)
            else:
                values = rng.standard_normal(shape, dtype=np.float32) / np.float32(math.sqrt(self.spec.dim))
                matrix = torch.from_numpy(values).to(self.device)
            size = shape[0] * shape[1] * 4
        if size <= self._cache_left:
            self._cache[key] = matrix
            self._cache_left -= size
        return matrix


def _signs(rng: np.random.Generator, shape: tuple[int, int], k: int, device: torch.device) -> torch.Tensor:
    """A (rows x cols) matrix of independent +-1/sqrt(k), from the generator's bytes (8 signs a byte)."""
    n = shape[0] * shape[1]
    bits = np.unpackbits(np.frombuffer(rng.bytes((n + 7) // 8), dtype=np.uint8), count=n)
    values = (1.0 - 2.0 * bits.astype(np.float32)) * np.float32(1 / math.sqrt(k))
    return torch.from_numpy(values.reshape(shape)).to(device)


def _name_key(name: str) -> int:
    """A module name as a 64-bit integer seed part (stable across processes, unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


__all__ = ["PROJECTIONS", "PROJECTION_VERSION", "ProjectionSpec", "Projector", "kronecker_shape"]
