"""Pipeline configs: YAML files validated by each pipeline's pydantic model, errors naming key and file.

``curation run PIPELINE.yaml`` reads one of these; its ``pipeline:`` key says which pipeline
(default ``noisy_cot``), and that pipeline's settings model (``curation/pipelines/<name>/config.py``)
validates the rest. Unknown keys are errors (a typo must not silently fall back to a default).
Every setting carries its help text (``Field(description=...)``); :func:`settings_help` lists them.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: pipeline name -> "module:class" of its settings model
PIPELINE_CONFIGS = {"noisy_cot": "curation.pipelines.noisy_cot.config:NoisyCoTConfig",
                    "contamination": "curation.pipelines.contamination.config:ContaminationConfig"}


class Section(BaseModel):
    """A block of pipeline settings: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class ExecutorSection(Section):
    """Where a pipeline's heavy steps run (scoring, corpus indexes, MinHash, rule sets); results are the same."""

    kind: str = Field("local", pattern="^(local|ray)$", description="local (this process) or ray (one Ray task "
                                                                     "per shard; needs curation[distributed])")
    ray_address: str | None = Field(None, description="with ray: an existing cluster (auto, host:6379, "
                                                      "ray://host:10001); default: a local one on this machine")
    workers: int | None = Field(None, ge=1, description="with ray: shard tasks in flight at once (default: one per CPU)")

    def make(self):
        """The executor (:mod:`stores.executors`) these settings name."""
        from stores.executors import make_executor

        return make_executor(self.kind, address=self.ray_address, workers=self.workers)


class ConfigError(ValueError):
    """A pipeline config file is unreadable or invalid; the message names the file and keys."""


def config_class(pipeline: str) -> type[Section]:
    """The settings model of ``pipeline``."""
    if pipeline not in PIPELINE_CONFIGS:
        raise ConfigError(f"unknown pipeline {pipeline!r}; known: {', '.join(sorted(PIPELINE_CONFIGS))}")
    module, _, name = PIPELINE_CONFIGS[pipeline].partition(":")
    return getattr(importlib.import_module(module), name)


def load_config(path: str | Path) -> Any:
    """Read and validate a pipeline YAML file; returns its pipeline's settings model."""
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
    pipeline = raw.get("pipeline", "noisy_cot")
    try:
        cls = config_class(pipeline)
    except ConfigError as exc:
        raise ConfigError(f"{path}: pipeline: {exc}") from None
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            got = f" (got {err['input']!r})" if err.get("type") != "missing" and "input" in err else ""
            lines.append(f"  {key}: {err['msg']}{got}")
        raise ConfigError(f"{path}: invalid pipeline config\n" + "\n".join(lines)) from None


def settings_help(model: type[BaseModel], prefix: str = "") -> dict[str, str]:
    """Every setting of a config model as ``dotted.key -> "help (default: value)"``, sections flattened."""
    out: dict[str, str] = {}
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out |= settings_help(ann, f"{prefix}{name}.")
            continue
        text = re.sub(r"\s+", " ", info.description or "").strip()
        out[f"{prefix}{name}"] = f"{text} (default: {info.default!r})" if text else f"(default: {info.default!r})"
    return out


def default_config_path() -> Path:
    """The demo's bundled config."""
    return Path(__file__).parent / "examples" / "noisy_cot.yaml"
