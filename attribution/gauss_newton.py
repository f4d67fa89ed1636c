"""Gauss-Newton (GGN) vector products over the kronfluence-tracked Linear layers, with torch.func.

The matrix EK-FAC approximates, applied exactly (for :mod:`attribution.conjugate_gradient`)::

    G v = (1/N) sum_n J_n^T H_n J_n v,    J_n = d outputs_n / d theta,  H_n = d^2 L_n / d outputs_n^2

with ``L_n`` the task's ``compute_train_loss`` on sample n (a *summed* loss over its tokens, true
labels; H does not depend on them for cross-entropy), the outputs the model's logits and N the
number of samples: kronfluence's normalisation of EK-FAC's eigenvalues (Lambda is the per-sample
gradient second moment of the summed loss, averaged over samples; its expectation over sampled
labels is this G for softmax cross-entropy). Vectors are ``{module: (Q, out, in [+ bias column])}``,
kronfluence's layout. The GGN rather than the Hessian: it is positive semi-definite for losses
convex in the outputs (CG needs that; the Hessian is indefinite away from a minimum) and it is
what EK-FAC approximates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, jvp, vjp, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils import data

from .candidates import _preconditioner, _tracked_linears
from .gradients import to_device, token_factors
from .lengths import length_sorted, sample_lengths, trim_padding_collate
from .tasks import InfluenceTask

Vectors = dict[str, torch.Tensor]  # module name -> (Q, out, in [+ bias column])


class GaussNewton:
    """Products ``G v`` with the Gauss-Newton matrix of ``task``'s training loss on ``dataset``.

    ``G v = (1/N) sum_n J_n^T H_n J_n v`` over the N samples of ``dataset`` (or a seeded random
    subset of ``max_examples``), for vectors over the tracked Linear layers of ``model`` (prepared
    for kronfluence, in eval mode). The model must be called once per loss computation and its
    output must be the logits (a tensor, or an object with ``.logits``); the loss may use only
    those. Each product costs a forward, a forward-mode and a backward pass over the data per
    vector (vectors batched with ``vmap``).
    """

    def __init__(self, model: nn.Module, task: InfluenceTask, dataset: data.Dataset, *, batch_size: int = 32,
                 max_examples: int | None = None, seed: int = 0, device: str | torch.device = "cpu"):
        if model.training:
            raise ValueError("the model is in training mode: call model.eval() (dropout would make G random)")
        self.model, self.task, self.device, self.batch_size = model, task, torch.device(device), batch_size
        n = len(dataset)  # type: ignore[arg-type]
        if max_examples is not None and max_examples < n:
            keep = np.sort(np.random.default_rng(seed).choice(n, max_examples, replace=False))
            dataset = data.Subset(dataset, keep.tolist())
        self.dataset, self.n = dataset, len(dataset)  # type: ignore[arg-type]
        # sequences batched by length with each batch's trailing padding cut: G v is the same sum
        self.order = length_sorted(range(self.n), sample_lengths(dataset))
        if self.n == 0:
            raise ValueError("the Gauss-Newton matrix needs at least one sample")
        self.layers = {m.name: m for m in _tracked_linears(model)}
        paths = {id(m): p for p, m in model.named_modules()}
        self.weights = {name: f"{paths[id(m)]}.original_module.weight" for name, m in self.layers.items()}
        self.biases = {name: f"{paths[id(m)]}.original_module.bias" for name, m in self.layers.items()
                       if m.original_module.bias is not None}
        named = dict(model.named_parameters())
        order = [p for name in self.layers for p in (self.weights[name], self.biases.get(name)) if p is not None]
        self.params = {p: named[p].detach() for p in order}  # torch.func matches dicts by key order

    def __call__(self, vectors: Vectors) -> Vectors:
        """``G v`` for each of the Q vectors in ``vectors`` (same layout and shapes)."""
        tangents = self._to_params(vectors)
        total = {k: torch.zeros_like(v) for k, v in tangents.items()}
        # torch.func differentiates inside, nothing else needs a graph; fused attention kernels
        # have no forward-mode derivative, the math one (matmuls and a softmax) has
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            for lo in range(0, self.n, self.batch_size):
                batch = trim_padding_collate([self.dataset[i] for i in self.order[lo: lo + self.batch_size]])
                for k, v in self._batch_product(to_device(batch, self.device), tangents).items():
                    total[k] += v
        return {name: g / self.n for name, g in self._from_params(total).items()}

    def _batch_product(self, batch: Any, tangents: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        args, kwargs = _record_call(self.task, batch)
        wrapped = []  # whether the model returns an object with .logits (the replay does the same)

        def outputs(p: dict[str, torch.Tensor]) -> torch.Tensor:
            out = functional_call(self.model, p, args, kwargs)
            wrapped.append(hasattr(out, "logits"))
            return out.logits if wrapped[-1] else out

        def loss(logits: torch.Tensor) -> torch.Tensor:
            return self.task.compute_train_loss(batch, _Replay(logits, wrapped[0]), sample=False)

        logits, pullback = vjp(outputs, self.params)
        loss_grad = grad(loss)

        def one(v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            jv = jvp(outputs, (self.params,), (v,))[1]
            hjv = jvp(loss_grad, (logits,), (jv,))[1]
            return pullback(hjv)[0]

        return vmap(one)(tangents)

    def _to_params(self, vectors: Vectors) -> dict[str, torch.Tensor]:
        missing = sorted(set(self.layers) - set(vectors))
        if missing or set(vectors) - set(self.layers):
            raise ValueError(f"vectors must cover exactly the tracked layers; missing {missing[:3]}, "
                             f"unknown {sorted(set(vectors) - set(self.layers))[:3]}")
        out = {}
        for name, v in vectors.items():
            linear = self.layers[name].original_module
            v = v.to(device=self.device, dtype=self.params[self.weights[name]].dtype)
            out[self.weights[name]] = v[:, :, : linear.in_features]
            if name in self.biases:
                out[self.biases[name]] = v[:, :, linear.in_features]
        return {p: out[p] for p in self.params}

    def _from_params(self, params: dict[str, torch.Tensor]) -> Vectors:
        out = {}
        for name in self.layers:
            w = params[self.weights[name]].float()
            out[name] = torch.cat([w, params[self.biases[name]].float().unsqueeze(-1)], -1) if name in self.biases else w
        return out


class _Stop(Exception):
    """Raised by the recording stand-in for the model once the task has called it."""


def _record_call(task: InfluenceTask, batch: Any) -> tuple[tuple, dict]:
    """The (args, kwargs) the task's training loss calls the model with, without running the model."""
    seen: list[tuple[tuple, dict]] = []

    def record(*args: Any, **kwargs: Any) -> Any:
        seen.append((args, kwargs))
        raise _Stop

    try:
        task.compute_train_loss(batch, record, sample=False)  # type: ignore[arg-type]
    except _Stop:
        return seen[0]
    raise ValueError("the task's training loss did not call the model")


class _Output:
    """A model output object reduced to its logits (``out.logits``, ``out[0]``)."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    def __getitem__(self, i: int) -> torch.Tensor:
        if i != 0:
            raise IndexError("GGN products replay the logits only")
        return self.logits


class _Replay:
    """Stands in for the model in the task's loss: returns the given logits, as the model returned them
    (a tensor, or an object with ``.logits``)."""

    def __init__(self, logits: torch.Tensor, wrapped: bool):
        self.output = _Output(logits) if wrapped else logits
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls > 1:
            raise ValueError("the task's training loss calls the model more than once; GGN products need one call")
        return self.output


def per_sample_gradients(model: nn.Module, loss_fn: Callable[[Any, nn.Module], torch.Tensor], batch: Any,
                         device: str | torch.device = "cpu") -> Vectors:
    """Each sample's gradient of ``loss_fn(batch, model)`` (a sum over the batch), dense per layer.

    Module name -> (B, out, in [+ bias column]), kronfluence's layout: ``A^T X`` from the compact
    per-token factors of :func:`attribution.gradients.token_factors` (no eigenbasis rotation).
    """
    device = torch.device(device)
    plain = {m.name: _preconditioner(m, {}, "identity", None, device) for m in _tracked_linears(model)}
    with torch.no_grad():
        factors = token_factors(model, loss_fn, batch, plain, device)
    return {name: torch.bmm(a.transpose(1, 2), x) for name, (a, x) in factors.items()}


__all__ = ["GaussNewton", "Vectors", "per_sample_gradients"]
