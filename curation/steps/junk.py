"""`curation junk`: compute the junk filter's model evidence, write its flags, report the junk ratio.

The filter itself (:class:`filters.junk.filter.JunkFilter`) reads evidence; this step makes the
evidence that needs a model and writes it to the store first:

- ``perplexity``: each sample's mean NLL per token under a *reference* causal LM trained on clean
  text (:func:`attribution.baselines.perplexity_scores`);
- ``push``: each sample's summed influence on the completions of a query dataset
  (:func:`query_push_run`). With queries that hold *truncated* reasoning (the prompt followed
  directly by the answer line), it is the sample's push on thought-skipping: positive = training
  on it makes skipping the steps more likely (the toolkit's sign: it lowers the queries' loss);
- ``classifier``: a local TF-IDF classifier fitted on a labelled dataset (junk categories or a
  bool), no hub model.

Rule sets and the engagement rule (M1) need no model. The default thresholds are the ones the
dose-response benchmark chose on its selection seed (:data:`DEFAULT_THRESHOLDS`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import stores

from ..errors import RequestError

#: Flag thresholds (robust z for perplexity and push, P(junk) for the classifier, rule sets failed),
#: chosen by F1 on the selection seed of ``bench/junk_dose.py`` (bench/results/junk.json, dose_setting).
DEFAULT_THRESHOLDS: dict[str, float] = {"rules": 2, "perplexity": 0.5, "push": 0.5, "classifier": 0.3}


class JunkRequestError(RequestError):
    """A `curation junk` request that cannot run; names the option at fault."""


@dataclass
class JunkRequest:
    """What to flag and with which evidence."""

    dataset: str
    rules: bool = True
    min_rules: int = int(DEFAULT_THRESHOLDS["rules"])
    engagement: str = "auto"  # auto (when the dataset has popularity fields), on, off
    popularity_fields: list[str] | None = None
    labelled: str | None = None
    label_field: str = "category"
    classifier_threshold: float = DEFAULT_THRESHOLDS["classifier"]
    reference_model: Path | None = None
    perplexity_z: float = DEFAULT_THRESHOLDS["perplexity"]
    push_queries: str | None = None
    push_z: float = DEFAULT_THRESHOLDS["push"]
    max_length: int | None = None
    scores: dict[str, tuple[str, float]] = field(default_factory=dict)  # name -> (self_scores run, robust z)
    combine: str = "any"
    budget: float | None = None
    category_field: str | None = "category"
    curate: str | None = None
    seed: int = 0
    executor: Any = None  # stores.executors: where the rule sets run (one Ray task per sample shard)


@dataclass
class JunkResult:
    """The flags run, the evidence runs written, the junk ratio report and the curated dataset (if any)."""

    flags_run: str
    n_flagged: int
    n_samples: int
    evidence_runs: dict[str, str]
    ratio: dict[str, Any]
    curated: str | None
    seconds: float


def query_push_run(store: stores.Store, dataset: str, model: Path, queries: str, *, max_length: int | None = None,
                   seed: int = 0, progress: bool = False) -> str:
    """Each sample's summed EK-FAC influence on the ``queries`` completions, as a ``self_scores`` run (method ``push``).

    Runs (or resumes) the pairwise attribution of ``dataset`` against ``queries`` with ``model``,
    then sums every sample's scores over the queries. Idempotent: the run id is derived from the
    pairwise run's.
    """
    from attribution.baselines import write_self_run
    from attribution.engine import run_finished

    from .attribute import AttributeRequest, run_attribution

    res = run_attribution(store, AttributeRequest(train=dataset, model=model, queries=queries,
                                                  behaviour=f"push-{queries}-on-{dataset}", max_length=max_length,
                                                  seed=seed), progress=progress)
    run_id = f"push-{res.run_id}"
    if run_finished(store, run_id):
        return run_id
    ids = store.read_samples(dataset, columns=["sample_id"])["sample_id"].to_list()
    df = store.sql("SELECT sample_id, sum(score) AS push FROM scores WHERE run_id = ? GROUP BY sample_id",
                   [res.run_id])
    by_id = dict(zip(df["sample_id"].to_list(), df["push"].to_list(), strict=True))
    values = np.array([by_id.get(i, np.nan) for i in ids], float)
    write_self_run(store, "push", run_id, ids, values, {"pairwise_run": res.run_id, "queries": queries,
                                                        "sign": "positive = pushes the queries' completions up"},
                   seed, dataset, None)
    return run_id


def reference_perplexity_run(store: stores.Store, dataset: str, model: Path, *, max_length: int | None = None) -> str:
    """Mean NLL per token of every sample under the reference LM ``model``, as a ``self_scores`` run."""
    from attribution.baselines import perplexity_scores
    from attribution.data import completion_samples
    from attribution.models import load_causal_lm, load_tokenizer

    from .model_folder import check_model_folder, model_context_length, resolve_max_length

    check_model_folder(model, "causal-lm")
    net = load_causal_lm(model)
    length = resolve_max_length(max_length, model_context_length(net), model)
    samples = completion_samples(store, dataset, load_tokenizer(model), length)
    return perplexity_scores(store, net, samples).run_id


def _check(store: stores.Store, req: JunkRequest) -> None:
    names = set(store.datasets()["name"].to_list())
    for option, name in (("--dataset", req.dataset), ("--labelled", req.labelled), ("--push-queries", req.push_queries)):
        if name is not None and name not in names:
            raise JunkRequestError(f"{option} {name}: no such dataset (see `curation datasets`)")
    if req.push_queries and req.reference_model is None:
        raise JunkRequestError("--push-queries needs --reference-model (the model whose training the push is about)")
    if req.engagement not in ("auto", "on", "off"):
        raise JunkRequestError(f"--engagement {req.engagement}: expected auto, on or off")
    if req.combine not in ("any", "mean"):
        raise JunkRequestError(f"--combine {req.combine}: expected any or mean")
    if req.budget is not None and req.combine != "mean":
        raise JunkRequestError("--budget applies to --combine mean (with any, each evidence flags by its threshold)")
    if req.budget is not None and not 0 < req.budget <= 1:
        raise JunkRequestError(f"--budget {req.budget}: expected a fraction in (0, 1]")
    if req.curate is not None and req.curate in names:
        raise JunkRequestError(f"--curate {req.curate}: a dataset of that name exists; choose another name")
    for name, (run_id, _) in req.scores.items():
        if not store.sql("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).height:
            raise JunkRequestError(f"--score {name}={run_id}: no such run (see `curation runs`)")


def run_junk(store: stores.Store, req: JunkRequest, *, progress: bool = False) -> JunkResult:
    """Compute the requested model evidence, run the junk filter, report the junk ratio, curate on request."""
    from filters.base import Budget
    from filters.junk.classifier import ClassifierFilter
    from filters.junk.engagement import EngagementFilter
    from filters.junk.filter import JunkFilter
    from filters.junk.report import junk_ratio

    _check(store, req)
    t0 = time.perf_counter()
    runs: dict[str, str] = {}
    self_scores: dict[str, tuple[str, Any]] = {}
    if req.reference_model is not None:
        runs["perplexity"] = reference_perplexity_run(store, req.dataset, req.reference_model,
                                                      max_length=req.max_length)
        self_scores["perplexity"] = (runs["perplexity"], ("z", req.perplexity_z))
    if req.push_queries is not None:
        runs["push"] = query_push_run(store, req.dataset, req.reference_model, req.push_queries,
                                      max_length=req.max_length, seed=req.seed, progress=progress)
        self_scores["push"] = (runs["push"], ("z", req.push_z))
    for name, (run_id, z) in req.scores.items():
        self_scores[name] = (run_id, ("z", z))
    engagement: Any = {"auto": None, "off": False}.get(req.engagement, True)
    if req.popularity_fields and engagement is not False:
        engagement = EngagementFilter(req.popularity_fields)
    classifier = None
    if req.labelled is not None:
        classifier = ClassifierFilter(req.labelled, label_field=req.label_field, threshold=req.classifier_threshold,
                                      seed=req.seed)
    filt = JunkFilter(rules=req.rules, min_rules=req.min_rules, engagement=engagement, classifier=classifier,
                      classifier_threshold=req.classifier_threshold, self_scores=self_scores, combine=req.combine,
                      budget=Budget(fraction=req.budget) if req.budget is not None else None,
                      executor=req.executor)
    res = filt.run(store, req.dataset, seed=req.seed)
    info = store.dataset_info(req.dataset)
    field_names = {f["name"] for f in info["fields"]}
    ratio = junk_ratio(store, req.dataset, res.run_id,
                       req.category_field if req.category_field in field_names else None)
    curated = None
    if req.curate is not None:
        from stores.curate import curate

        curate(store, req.curate, req.dataset, flag_runs=[res.run_id])
        curated = req.curate
    return JunkResult(res.run_id, res.flags.n_flagged, len(res.flags.sample_ids), runs, ratio, curated,
                      time.perf_counter() - t0)


def parse_scores(values: Mapping[str, str]) -> dict[str, tuple[str, float]]:
    """``NAME=RUN`` or ``NAME=RUN@Z`` options as {name: (run id, robust-z threshold)} (default z 2)."""
    out = {}
    for name, spec in values.items():
        run_id, _, z = spec.partition("@")
        try:
            out[name] = (run_id, float(z) if z else 2.0)
        except ValueError:
            raise JunkRequestError(f"--score {name}={spec}: expected RUN or RUN@Z with Z a number") from None
    return out


__all__ = ["DEFAULT_THRESHOLDS", "JunkRequest", "JunkRequestError", "JunkResult", "parse_scores", "query_push_run",
           "reference_perplexity_run", "run_junk"]
