"""Checks of a model folder and its context length, shared by every step that loads a model by path.

Kept apart from :mod:`curation.steps.attribute` so steps that only load a model (unlearning,
the gradient index, validation) do not import the attribution step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import RequestError


class AttributeRequestError(RequestError):
    """A request ``curation attribute`` cannot run: names the option at fault and what was expected."""


def model_context_length(model: Any) -> int | None:
    """The longest input (in tokens) a transformers model accepts, from its config; None if unknown."""
    cfg = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings", "n_ctx", "seq_length"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def resolve_max_length(requested: int | None, context: int | None, model: Path) -> int:
    """The tokens per sample to use: the request, else the model's context; refuses more than it."""
    if requested is not None and requested <= 0:
        raise AttributeRequestError(f"--max-length: expected a positive number of tokens, got {requested}")
    if context is None:
        return requested or 256
    if requested is None:
        return context
    if requested > context:
        raise AttributeRequestError(
            f"--max-length {requested}: the model at {model} has {context} positions; pass --max-length "
            f"{context} or less (or leave it out to use {context})")
    return requested


def check_model_folder(model: Path, task: str) -> None:
    """Fail in one line unless ``model`` is a folder that can hold a model of ``task``."""
    if not model.exists():
        raise AttributeRequestError(f"--model {model}: no such folder")
    if not model.is_dir():
        raise AttributeRequestError(f"--model {model}: is a file; expected a model folder "
                                    + ("(save_pretrained)" if task == "causal-lm" else "(MLP.save)"))
    if not (model / "config.json").is_file():
        raise AttributeRequestError(f"--model {model}: no config.json; expected a folder written by "
                                    + ("save_pretrained" if task == "causal-lm" else "MLP.save"))


__all__ = ["AttributeRequestError", "check_model_folder", "model_context_length", "resolve_max_length"]
