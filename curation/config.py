"""Pipeline configs: pydantic models loaded from YAML, with errors that name the key and file.

``curation run PIPELINE.yaml`` reads one of these; the demo uses the bundled
``curation/examples/noisy_cot.yaml``. Unknown keys are errors (a typo must not silently fall
back to a default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSection(_Section):
    """The generated TInt traces: size, functions, number widths and the planted noise."""

    n_train: int = Field(3000, gt=0)
    n_test: int = Field(300, gt=0)
    n_dev: int = Field(200, ge=0)  # noise-free problems for failing queries and the budget choice
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
    """The noisy-CoT filter: evidence weights and the flag budget.

    ``budget`` is a fraction of the training set, or ``dev`` (default): retrain on the data
    curated at each fraction of ``budget_grid`` and keep the one whose model is most accurate on
    the dev split (keeping everything when none beats the uncurated model). That needs no
    knowledge of how much of the data is bad; the test split is never looked at.
    """

    budget: float | Literal["dev"] = "dev"
    budget_grid: list[float] = [0.1, 0.2, 0.3, 0.4, 0.5]
    weights: dict[str, float] = {}

    @field_validator("budget")
    @classmethod
    def _fraction(cls, v: float | str) -> float | str:
        if isinstance(v, float | int) and not 0 <= v < 1:
            raise ValueError("a budget fraction must be in [0, 1) (1 would flag every trace and leave nothing "
                             "to retrain on); or 'dev' to choose it on the dev split")
        return v

    @field_validator("budget_grid")
    @classmethod
    def _grid(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < b < 1 for b in v):
            raise ValueError("budget_grid needs at least one fraction in (0, 1) (1 would leave nothing to retrain on)")
        return sorted(set(v))

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

    @model_validator(mode="after")
    def _dev_needed(self) -> NoisyCoTConfig:
        if self.filter.budget == "dev" and self.data.n_dev == 0:
            raise ValueError("filter.budget 'dev' chooses the budget on the dev split: set data.n_dev > 0 "
                             "or give a fixed fraction")
        return self


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
