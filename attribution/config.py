"""How the engine computes influence: :class:`EngineConfig`, each field with its help text.

The help lives in each field's metadata (``field(metadata={"help": ...})``, as kronfluence's
``Arguments``), so a command line or a YAML schema can be derived from the one definition;
:func:`field_help` reads it. Every field is recorded in a run's config and is part of its run id.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .strategies import STRATEGIES, check_strategy, factor_strategy

if TYPE_CHECKING:  # kronfluence (and torch) load only when arguments are built, not for help text
    from kronfluence.arguments import FactorArguments, ScoreArguments


def _help(default: Any, text: str) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass
class EngineConfig:
    """How influence is computed; every field is recorded in the run's config (see each field's help).

    ``damping`` None uses kronfluence's heuristic (0.1 x mean eigenvalue per layer), which ranked
    far better than its 1e-8 default on this machine's probes.
    """

    strategy: str = _help("ekfac", f"Hessian approximation: one of {', '.join(STRATEGIES)}")
    damping: float | None = _help(None, "Absolute damping added to the eigenvalues "
                                        "(None: kronfluence's heuristic, 0.1 x mean eigenvalue per layer)")
    damping_scale: float = _help(1.0, "Multiple of the heuristic damping (with damping None): 10 damps each "
                                      "layer by 10 x kronfluence's 0.1 x mean eigenvalue")
    cg_iterations: int = _help(5, "ekfac_cg: conjugate-gradient steps after the EK-FAC solution")
    cg_max_examples: int | None = _help(1000, "ekfac_cg: training samples the Gauss-Newton products average over "
                                              "(a random subset drawn with seed; None: all)")
    batch_size: int = _help(32, "Training samples per batch (fitting factors and scoring)")
    query_batch_size: int = _help(64, "Queries per batch when scoring")
    shard_size: int = _help(1024, "Training samples per written shard (queries per shard for candidate runs)")
    low_rank: int | None = _help(None, "Rank of the per-layer compression of query gradients (query batching); "
                                       "None: exact")
    use_empirical_fisher: bool = _help(False, "Fit factors with the data's labels instead of labels sampled "
                                              "from the model (the true Fisher)")
    covariance_max_examples: int | None = _help(None, "Samples used to fit the covariance and eigenvalue "
                                                      "factors (None: all)")
    seed: int = _help(0, "Seed of the labels sampled from the model when fitting factors")
    device: str = _help("cpu", "Torch device the model and the scoring run on")
    clip_gradient_ratio: float | None = _help(None, "Clip training gradients whose norm exceeds this multiple of "
                                                    "the median norm to that norm (their scores shrink with "
                                                    "them; factors unchanged); None: no clipping")
    pad_per_batch: bool = _help(True, "Sequence batches: order samples by length and cut each batch's trailing "
                                      "padding, so cost follows the real token count (same scores)")
    factor_partitions: int = _help(1, "Fit the factors in this many data partitions, each a separate task (a Ray "
                                      "task with --executor ray), summed by kronfluence; each partition draws "
                                      "its own sampled labels, so factors differ slightly from 1 partition's")

    def __post_init__(self) -> None:
        check_strategy(self.strategy)
        if self.shard_size < 1 or self.batch_size < 1 or self.query_batch_size < 1:
            raise ValueError("shard_size, batch_size and query_batch_size must be positive")
        if not self.damping_scale > 0:
            raise ValueError(f"damping_scale must be positive, got {self.damping_scale}")
        if self.damping is not None and self.damping_scale != 1.0:
            raise ValueError("damping_scale multiplies the heuristic damping: give either damping or damping_scale")
        if self.cg_iterations < 0 or (self.cg_max_examples is not None and self.cg_max_examples < 1):
            raise ValueError("cg_iterations must be >= 0 and cg_max_examples positive (or None)")
        if self.factor_partitions < 1:
            raise ValueError(f"factor_partitions must be at least 1, got {self.factor_partitions}")
        if self.clip_gradient_ratio is not None and not self.clip_gradient_ratio > 1:
            raise ValueError(f"clip_gradient_ratio is a multiple of the median gradient norm and must be above 1, "
                             f"got {self.clip_gradient_ratio}")

    def factor_arguments(self) -> FactorArguments:
        """kronfluence arguments for fitting factors (with ``factor_partitions`` data partitions)."""
        from kronfluence.arguments import FactorArguments

        return FactorArguments(
            strategy=factor_strategy(self.strategy),
            use_empirical_fisher=self.use_empirical_fisher,
            covariance_max_examples=self.covariance_max_examples,
            lambda_max_examples=self.covariance_max_examples,
            covariance_data_partitions=self.factor_partitions,
            lambda_data_partitions=self.factor_partitions,
        )

    def identity(self) -> dict[str, Any]:
        """The fields that name runs: every field, less those added later while at their default.

        A field added after runs were stored (``factor_partitions``) enters run ids only when
        set, so the runs of earlier versions keep their ids.
        """
        out = dataclasses.asdict(self)
        for name, default in IDENTITY_DEFAULTS.items():
            if out.get(name) == default:
                out.pop(name)
        return out

    def score_arguments(self, per_module: bool = False, per_token: bool = False) -> ScoreArguments:
        """kronfluence arguments for computing scores (optionally decomposed per module / token)."""
        from kronfluence.arguments import ScoreArguments

        return ScoreArguments(damping_factor=self.damping, query_gradient_low_rank=self.low_rank,
                              compute_per_module_scores=per_module, compute_per_token_scores=per_token)


#: fields left out of :meth:`EngineConfig.identity` at these values
IDENTITY_DEFAULTS: dict[str, Any] = {"factor_partitions": 1}


def field_help(config_class: type = EngineConfig) -> dict[str, str]:
    """Each field of a dataclass (by default :class:`EngineConfig`) and its help text, in field order."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(config_class)}


__all__ = ["EngineConfig", "field_help"]
