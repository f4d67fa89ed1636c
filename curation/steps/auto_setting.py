"""``--strategy auto`` / ``--damping auto``: the setting a validation of this model and data chose.

A validation run (:mod:`curation.steps.validation`) measures every strategy x damping of its grid
on the user's own model and training set and records its results. ``auto`` reads the newest
finished validation of the same model (weights fingerprint) and training ids:

- ``strategy=auto`` (with or without ``damping=auto``): the validation's choice, strategy and damping,
  and the ensemble when the validation found averaging over more models better (``--ensemble``);
- a fixed strategy with ``damping=auto``: the best damping of that strategy among the results
  (same rule as :func:`~curation.steps.validation_settings.select_setting`).

With no such validation, ``budget_s`` runs one now (the built-in recipe of the model kind, a
time budget; a tiny budget falls back to the top-k removal proxy, see ``select_setting``);
without a budget the request fails and says which command to run. The choice and the
validation run it came from are recorded in the attribution run's config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import stores

from ..errors import RequestError


class AutoSettingError(RequestError):
    """``auto`` cannot be resolved: no validation of this model and data, and no budget to run one."""


@dataclass
class AutoChoice:
    """What ``auto`` resolved to: the strategy, the engine's damping fields, and where it came from."""

    strategy: str
    engine: dict[str, Any]
    damping_label: str
    validation_run: str
    selected_by: str
    ensemble: int = 1  # > 1: average the scores of the model and the validation's ensemble_models
    ensemble_models: list[str] = field(default_factory=list)  # weight files in the validation's retraining cache

    def record(self) -> dict[str, Any]:
        """What the attribution run's config keeps about the choice."""
        return {"strategy": self.strategy, "damping": self.damping_label, "validation_run": self.validation_run,
                "selected_by": self.selected_by, **({"ensemble": self.ensemble} if self.ensemble > 1 else {})}


def choose_from_validation(run_id: str, cfg: dict[str, Any], strategy: str | None) -> AutoChoice | None:
    """The setting of validation ``run_id`` (its config ``cfg``): its choice, or the best damping of ``strategy``.

    None when ``strategy`` was not in that validation's grid.
    """
    from .validation_settings import Damping, SettingResult, select_setting

    if strategy is None:
        chosen = cfg["chosen"]
        return AutoChoice(chosen["strategy"], dict(chosen["engine"]), chosen["damping"], run_id,
                          cfg.get("selected_by", "validation"), int(chosen.get("ensemble", 1)),
                          list(chosen.get("ensemble_models", [])))
    results = [SettingResult(**r) for r in cfg["results"] if r["strategy"] == strategy]
    if not results:
        return None
    try:
        _, label = select_setting(results)
    except ValueError:
        return None
    return AutoChoice(strategy, Damping.parse(label).engine_kwargs(), label, run_id, "validation (damping)")


def resolve_auto(store: stores.Store, model_fingerprint: str, train_fingerprint: str, *, strategy: str,
                 damping_auto: bool, validate_now: Callable[[list[str]], Any] | None = None,
                 hint: str = "") -> AutoChoice:
    """The setting ``auto`` stands for (see the module doc).

    ``strategy`` is the requested strategy (``"auto"`` or a fixed one, with ``damping_auto``).
    ``validate_now(strategies)`` runs a validation of those strategies when none is stored (None:
    fail with an error that says how to run one; ``hint`` is the command).
    """
    from .validation import finished_validations

    wanted = None if strategy == "auto" else strategy
    if wanted is not None and not damping_auto:
        raise ValueError("resolve_auto: nothing is auto")
    for rid, cfg in finished_validations(store, model_fingerprint, train_fingerprint):
        choice = choose_from_validation(rid, cfg, wanted)
        if choice is not None:
            return choice
    if validate_now is None:
        what = "--strategy auto" if wanted is None else f"--damping auto (strategy {wanted})"
        raise AutoSettingError(
            f"{what}: no validation of this model on this training set is stored; run one first "
            f"({hint or 'curation validate --train ... --queries ... --model ...'}), or pass --auto-budget-s "
            "SECONDS to validate now within that time")
    from .validation_settings import Damping

    validate_now(["identity", "diagonal", "kfac", "ekfac", "ekfac_cg"] if wanted is None else [wanted])
    for rid, cfg in finished_validations(store, model_fingerprint, train_fingerprint):
        choice = choose_from_validation(rid, cfg, wanted)
        if choice is not None:
            return choice
    return AutoChoice(wanted or "ekfac", Damping.parse("heuristic").engine_kwargs(), "heuristic", "",
                      "default (the validation chose nothing)")


__all__ = ["AutoChoice", "AutoSettingError", "choose_from_validation", "resolve_auto"]
