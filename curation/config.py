"""Pipeline configs: pydantic models loaded from YAML, with errors that name the key and file.

``curation run PIPELINE.yaml`` reads one of these; the demo uses the bundled
``curation/examples/noisy_cot.yaml``. Unknown keys are errors (a typo must not silently fall
back to a default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSection(_Section):
    """The generated TInt traces: size, functions, number widths and the planted noise."""

    n_train: int = Field(3000, gt=0)
    n_test: int = Field(300, gt=0)
    functions: list[str] = ["add", "sub"]
    min_digits: int = Field(2, ge=1)
    max_digits: int = Field(2, ge=1)
    dynamic_rate: float = Field(0.2, ge=0, le=1)
    p_dyn: float = Field(0.2, ge=0, le=1)
    static_rate: float = Field(0.0, ge=0, le=1)
    p_c: float = Field(0.3, ge=0, le=1)
    p_l: float = Field(0.3, ge=0, le=1)
    require_change: bool = True


class ModelSection(_Section):
    """The GPT-2 trained from scratch on the traces, and its schedule."""

    n_layer: int = Field(2, ge=1)
    n_embd: int = Field(64, ge=8)
    n_head: int = Field(4, ge=1)
    steps: int = Field(2000, gt=0)
    batch_size: int = Field(32, gt=0)
    lr: float = Field(3e-3, gt=0)
    max_length: int = Field(96, ge=16)


class AttributionSection(_Section):
    """How influence evidence is computed on the model trained on noisy data."""

    strategy: Literal["ekfac", "kfac", "diagonal", "identity"] = "ekfac"
    damping: float | None = None
    batch_size: int = Field(64, gt=0)
    max_failing_queries: int = Field(100, ge=0)


class FilterSection(_Section):
    """The noisy-CoT filter: evidence weights and the flag budget (fraction of the training set)."""

    budget: float = Field(0.2, ge=0, le=1)
    weights: dict[str, float] = {}

    @field_validator("weights")
    @classmethod
    def _known(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - {"self_influence", "loss", "query_push"}
        if unknown:
            raise ValueError(f"unknown evidence {sorted(unknown)}; expected self_influence, loss, query_push")
        return v


class NoisyCoTConfig(_Section):
    """The noisy chain-of-thought pipeline: generate, train, attribute, filter, curate, retrain."""

    pipeline: Literal["noisy_cot"] = "noisy_cot"
    name: str = "tint"
    seed: int = 0
    data: DataSection = DataSection()
    model: ModelSection = ModelSection()
    attribution: AttributionSection = AttributionSection()
    filter: FilterSection = FilterSection()
    clean_reference: bool = True


class ConfigError(ValueError):
    """A pipeline config file is unreadable or invalid; the message names the file and keys."""


def load_config(path: str | Path) -> NoisyCoTConfig:
    """Read and validate a pipeline YAML file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such pipeline config") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    try:
        return NoisyCoTConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            got = f" (got {err['input']!r})" if err.get("type") != "missing" and "input" in err else ""
            lines.append(f"  {key}: {err['msg']}{got}")
        raise ConfigError(f"{path}: invalid pipeline config\n" + "\n".join(lines)) from None


def default_config_path() -> Path:
    """The demo's bundled config."""
    return Path(__file__).parent / "examples" / "noisy_cot.yaml"
