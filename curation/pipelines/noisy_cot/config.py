"""The noisy chain-of-thought pipeline's settings: a pydantic model, every field with its help text.

Loaded from YAML by :func:`curation.config.load_config`; unknown keys and bad values are errors
naming the key and file. :func:`curation.config.settings_help` lists every key with its help.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from attribution.config import field_help
from attribution.strategies import check_strategy
from curation.config import ExecutorSection, Section

ENGINE_HELP = field_help()  # the engine's settings are described once, in attribution.config


class DataSection(Section):
    """The training, dev and test traces: generated TInt traces (default) or datasets already in the store."""

    train: str | None = Field(None, description="an existing store dataset of prompt/completion traces to curate, "
                                                "instead of generating TInt traces (then `test` is required too)")
    dev: str | None = Field(None, description="with `train`: a store dataset of held-out problems for the failing "
                                              "queries and the budget choice (prompt plus the answer field)")
    test: str | None = Field(None, description="with `train`: a store dataset of held-out problems accuracy is "
                                               "reported on (prompt plus the answer field)")
    answer_field: str = Field("true_answer", description="column of the dev and test datasets holding the right answer")
    answer_pattern: str = Field(r"^ans = (.*)$", description="regular expression matched against the last non-blank "
                                "line of a completion; its first group (or the whole match) is the model's answer")
    n_train: int = Field(3000, gt=0, description="generated: number of training traces")
    n_test: int = Field(300, gt=0, description="generated: noise-free test problems (accuracy is reported on them)")
    n_dev: int = Field(200, ge=0, description="generated: noise-free dev problems (failing queries, budget choice)")
    functions: list[str] = Field(["add", "sub"], description="generated: TInt functions to draw problems from")
    min_digits: int = Field(2, ge=1, description="generated: fewest digits of a number")
    max_digits: int = Field(2, ge=1, description="generated: most digits of a number")
    dynamic_rate: float = Field(0.2, ge=0, le=1, description="generated: share of traces with dynamic (propagating) noise")
    p_dyn: float = Field(0.2, ge=0, le=1, description="generated: chance each digit after the first is redrawn (dynamic)")
    static_rate: float = Field(0.0, ge=0, le=1, description="generated: share of traces with static (local) noise")
    p_c: float = Field(0.3, ge=0, le=1, description="generated: chance each digit is redrawn (static)")
    p_l: float = Field(0.3, ge=0, le=1, description="generated: chance each non-answer line is deleted (static)")
    require_change: bool = Field(True, description="generated: redraw until every noised trace differs from its clean one")

    @field_validator("answer_pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        import re

        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from None
        return v

    @property
    def from_store(self) -> bool:
        """Whether the traces are store datasets (``train`` given) rather than generated."""
        return self.train is not None


class ModelSection(Section):
    """The GPT-2 trained from scratch on the traces, and its schedule."""

    n_layer: int = Field(2, ge=1, description="transformer layers")
    n_embd: int = Field(64, ge=8, description="embedding width")
    n_head: int = Field(4, ge=1, description="attention heads")
    steps: int = Field(2000, gt=0, description="training steps")
    batch_size: int = Field(32, gt=0, description="traces per training step")
    lr: float = Field(3e-3, gt=0, description="peak learning rate (AdamW, warmup then cosine decay)")
    max_length: int = Field(96, ge=16, description="tokens per trace (context length; longer traces are cut)")


class AttributionSection(Section):
    """How influence evidence is computed on the model trained on noisy data."""

    strategy: str = Field("ekfac", description=ENGINE_HELP["strategy"])
    damping: float | None = Field(None, description=ENGINE_HELP["damping"])
    batch_size: int = Field(64, gt=0, description=ENGINE_HELP["batch_size"])
    max_failing_queries: int = Field(100, ge=0, description="most wrong dev answers used as failing queries")

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, v: str) -> str:
        check_strategy(v)
        return v


class FilterSection(Section):
    """The noisy-CoT filter: evidence weights and the flag budget.

    ``budget`` is a fraction of the training set, or ``dev`` (default): retrain on the data
    curated at each fraction of ``budget_grid`` and keep the one whose model is most accurate on
    the dev split (keeping everything when none beats the uncurated model). That needs no
    knowledge of how much of the data is bad; the test split is never looked at.
    """

    budget: float | Literal["dev"] = Field("dev", description="share of the training set to flag, or `dev` to "
                                                              "choose it by dev accuracy of retrained models")
    budget_grid: list[float] = Field([0.1, 0.2, 0.3, 0.4, 0.5], description="budgets tried when `budget: dev`")
    weights: dict[str, float] = Field({}, description="evidence weights: loss, self_influence, query_push "
                                                      "(default: the filter's, loss only)")

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


class NoisyCoTConfig(Section):
    """The noisy chain-of-thought pipeline: data, train, attribute, filter, curate, retrain, evaluate."""

    pipeline: Literal["noisy_cot"] = Field("noisy_cot", description="which pipeline this config is for")
    name: str = Field("tint", description="prefix of the datasets the pipeline writes")
    seed: int = Field(0, description="seed of data generation, training and the filter")
    tokenizer: str = Field("chars", description="`chars`: one token per character (TInt's characters for generated "
                                                "data, the data's own characters otherwise), or a local tokenizer folder")
    data: DataSection = DataSection()
    model: ModelSection = ModelSection()
    attribution: AttributionSection = AttributionSection()
    filter: FilterSection = FilterSection()
    executor: ExecutorSection = Field(default_factory=ExecutorSection, description="where the scoring shards run")
    clean_reference: bool = Field(True, description="also train on the clean traces only (needs truth columns), "
                                                    "to report the gap curation recovers")

    @model_validator(mode="after")
    def _consistent(self) -> NoisyCoTConfig:
        d = self.data
        if d.from_store and not d.test:
            raise ValueError("data.train names a store dataset: give data.test too (held-out problems to report on)")
        if not d.from_store and (d.dev or d.test):
            raise ValueError("data.dev and data.test go with data.train (store datasets); without data.train the "
                             "pipeline generates its own splits")
        has_dev = bool(d.dev) if d.from_store else d.n_dev > 0
        if self.filter.budget == "dev" and not has_dev:
            raise ValueError("filter.budget 'dev' chooses the budget on the dev split: "
                             + ("give data.dev" if d.from_store else "set data.n_dev > 0") + " or a fixed fraction")
        return self

    @property
    def has_dev(self) -> bool:
        """Whether there is a dev split (failing queries and the budget choice come from it)."""
        return bool(self.data.dev) if self.data.from_store else self.data.n_dev > 0
