"""Validation (curation.steps.validation): LDS by retraining, its CI, the budget planner, resume, selection,
the training-command path. Real retraining (a tiny MLP on 120 digits, 20 queries), real kronfluence, no mocks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Subset, TensorDataset

import stores
from attribution.data import Samples
from attribution.lds import linear_datamodeling_score
from attribution.tasks import ClassifierTask
from curation.actions.recipes import MLPRecipe
from curation.steps.validation import (
    ValidationBudgetError,
    ValidationPlan,
    auto_setting,
    plan_for_budget,
    validate,
)
from curation.steps.validation_retrain import (
    TrainingCommand,
    draw_masks,
    query_measurements,
    retrain_seed,
)
from curation.steps.validation_settings import (
    Damping,
    SettingResult,
    ValidationRequestError,
    bootstrap_ci,
    parse_dampings,
    select_setting,
)

RECIPE = MLPRecipe(64, (32,), 10, epochs=30)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: these tiny models run several times faster than with two on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> dict:
    """120 training digits, 20 queries, an MLP trained on the 120 with RECIPE."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
    train = Samples(TensorDataset(x[:120], y[:120]), [f"t{i}" for i in range(120)], "train")
    queries = Samples(TensorDataset(x[1000:1020], y[1000:1020]), [f"q{i}" for i in range(20)], "queries")
    return {"train": train, "queries": queries, "model": RECIPE.fit(RECIPE.fresh(0), train.data, 0)}


def _validate(store, digits, **kw):
    import copy

    return validate(store, copy.deepcopy(digits["model"]), ClassifierTask(), digits["train"], digits["queries"],
                    recipe=kw.pop("recipe", RECIPE), **kw)


@pytest.fixture(scope="module")
def validated(digits, tmp_path_factory) -> dict:
    """One validation: 8 subsets x 1 seed, top-k check on 4 queries; identity, diagonal and EK-FAC (two dampings)."""
    store = stores.open(tmp_path_factory.mktemp("val") / "store")
    res = _validate(store, digits, plan=ValidationPlan(8, 1, topk_queries=4), strategies=["identity", "diagonal", "ekfac"],
                    dampings=["heuristic", "x10"])
    return {"store": store, "res": res}


def test_lds_equals_attribution_lds_on_independent_retraining_and_engine_scores(digits, validated, tmp_path) -> None:
    from attribution.engine import EngineConfig, InfluenceEngine, score_matrix

    res, train, queries = validated["res"], digits["train"], digits["queries"]
    masks = draw_masks(len(train), 8, 0.5, 0)
    assert np.array_equal(res.masks, masks) and masks.sum(axis=1).tolist() == [60] * 8
    measured = np.stack([  # retrain ourselves on each subset, seed as documented, measure with the task
        query_measurements(RECIPE.fit(RECIPE.fresh(s := retrain_seed(0, 1, i, 0)), Subset(train.data, np.flatnonzero(m).tolist()), s),
                           ClassifierTask(), queries.data)
        for i, m in enumerate(masks)])
    assert np.array_equal(res.measured, measured)
    engine = InfluenceEngine(stores.open(tmp_path / "other"), digits["model"], ClassifierTask(), EngineConfig(strategy="ekfac"))
    run = engine.pairwise_scores("q", train, queries)  # the engine's own pairwise run, in another store
    scores = score_matrix(engine.store, run.run_id, queries.ids, train.ids)
    ekfac = next(r for r in res.results if r.strategy == "ekfac" and r.damping == "heuristic")
    assert ekfac.lds == pytest.approx(linear_datamodeling_score(scores, masks, measured), abs=1e-9)
    assert ekfac.n_defined == 20


def test_ci_is_the_documented_bootstrap_and_contains_the_estimate(validated) -> None:
    res = validated["res"]
    rho = res.per_query["ekfac@heuristic"]
    rng = np.random.default_rng(0)  # the documented computation, by hand
    means = rho[rng.integers(0, len(rho), size=(1000, len(rho)))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    r = next(r for r in res.results if r.strategy == "ekfac" and r.damping == "heuristic")
    assert (r.ci_low, r.ci_high) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))
    assert bootstrap_ci(np.array([np.nan, *rho]), seed=0) == (r.ci_low, r.ci_high)  # NaN queries left out
    for r in res.results:
        assert r.ci_low <= r.lds <= r.ci_high and r.ci_high - r.ci_low > 0
        assert r.topk_effect is not None and 0.0 <= r.sign_agreement <= 1.0 and r.topk_removed >= 2


def test_validation_run_records_results_and_the_choice(validated) -> None:
    store, res = validated["store"], validated["res"]
    assert [r.label for r in res.results] == ["identity", "diagonal@heuristic", "diagonal@x10", "ekfac@heuristic",
                                              "ekfac@x10"]
    run = store.get_run(res.run_id)
    assert run["kind"] == "validation" and run["status"] == "finished" and run["dataset"] == "train"
    cfg = run["config"]
    assert cfg["chosen"]["strategy"] == res.chosen[0] and cfg["selected_by"] == "lds"
    assert [r["lds"] for r in cfg["results"]] == [r.lds for r in res.results]
    assert cfg["plan"]["subsets"] == 8 and 8 + 1 + 2 < cfg["retrains"]["total"] <= 8 + 1 + 2 + 5  # same top-k: shared
    assert res.chosen == select_setting(res.results)
    # a multiple of the heuristic changes the scores (the adapter reaches the engine); identity ignores damping
    assert not np.allclose(res.scores["ekfac@heuristic"], res.scores["ekfac@x10"])
    got = auto_setting(store, run["model_fingerprint"])
    assert (got["strategy"], got["damping"], got["run_id"]) == (*res.chosen, res.run_id)


def test_report_section_renders_the_run(validated, tmp_path) -> None:
    from curation.report import write_report

    store, res = validated["store"], validated["res"]
    html = write_report(store, tmp_path / "v.html", res.run_id)[0].read_text()
    assert "How much to trust these scores" in html and "How to read LDS" in html
    assert f"Chosen: {res.chosen[0]}, damping {res.chosen[1]}" in html and "95% CI" in html


def test_resume_after_interrupt_gives_identical_results_without_redoing(digits, tmp_path) -> None:
    kw = dict(plan=ValidationPlan(8, 1, topk_queries=2), strategies=["identity", "diagonal"], dampings=["heuristic"])
    whole = _validate(stores.open(tmp_path / "a"), digits, **kw)
    assert whole.retrains_computed == 8 + 1 + 2 + 2

    class Killed(Exception):
        pass

    def kill(n: int) -> None:
        if n == 5:
            raise Killed

    store = stores.open(tmp_path / "b")
    with pytest.raises(Killed):
        _validate(store, digits, on_retrain=kill, **kw)
    assert store.runs("validation").height == 0  # nothing half-written
    resumed = _validate(store, digits, **kw)
    assert (resumed.retrains_computed, resumed.retrains_reused) == (13 - 5, 5)
    assert np.array_equal(resumed.measured, whole.measured)
    strip = lambda rs: [{k: v for k, v in r.as_dict().items() if k != "seconds"} for r in rs]  # noqa: E731
    assert strip(resumed.results) == strip(whole.results) and resumed.chosen == whole.chosen
    again = _validate(store, digits, **kw)  # finished: read back from the store, nothing retrained
    assert again.run_id == resumed.run_id and strip(again.results) == strip(resumed.results)


def test_budget_plan_is_recorded_and_kept_on_resume(digits, tmp_path) -> None:
    store = stores.open(tmp_path / "s")
    # a budget far above 12 subsets' worth: the plan must not depend on this machine's speed
    kw = dict(budget_s=600.0, strategies=["identity"], dampings=["heuristic"], min_subsets=5, max_subsets=12,
              max_seeds=1, topk_queries=0)

    def kill(n: int) -> None:
        if n == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _validate(store, digits, on_retrain=kill, **kw)
    plans = list((store.root / "artifacts" / "validation" / "plans").glob("*.json"))
    assert len(plans) == 1
    recorded = json.loads(plans[0].read_text())
    res = _validate(store, digits, **kw)
    assert res.plan.subsets == recorded["subsets"] >= 5 and res.plan.reason == recorded["reason"]
    assert res.retrains_reused == 3 and "retraining takes" in res.plan.reason


def test_planner_fits_the_budget() -> None:
    big = plan_for_budget(600, 0.5, n_settings=13, n_proxy_settings=4)
    small = plan_for_budget(60, 0.5, n_settings=13, n_proxy_settings=4)
    assert big.mode == small.mode == "lds" and big.subsets > small.subsets >= 20
    assert (big.subsets, big.seeds) == (100, 5) and small.seeds == 1 and small.topk_queries == 8
    # used retraining time stays within the budget's margin
    assert small.subsets * 0.5 + small.removal_retrains(13) * 0.5 / 0.5 <= 60 * 0.9
    two = plan_for_budget(60, 0.5, n_settings=13, workers=2)
    assert two.subsets > small.subsets
    no_topk = plan_for_budget(12, 0.5, n_settings=13)
    assert no_topk.subsets >= 20 and no_topk.topk_queries == 0 and "no time left" in no_topk.reason
    proxy = plan_for_budget(8, 0.5, n_settings=13, n_proxy_settings=4)
    assert proxy.mode == "proxy" and proxy.subsets == 0 and proxy.topk_scope == "heuristic"
    with pytest.raises(ValidationBudgetError, match=r"--budget-s 2: too small.*Give --budget-s \d+"):
        plan_for_budget(2, 0.5, n_settings=13, n_proxy_settings=4)


def test_select_setting_picks_the_best_ties_to_the_cheaper() -> None:
    rs = [SettingResult("identity", "heuristic", lds=0.10), SettingResult("kfac", "heuristic", lds=0.30),
          SettingResult("ekfac", "heuristic", lds=0.40), SettingResult("ekfac", "x10", lds=0.45)]
    assert select_setting(rs) == ("ekfac", "x10")
    rs.append(SettingResult("kfac", "x0.1", lds=0.445))  # within 0.01 of the best: the cheaper strategy wins
    assert select_setting(rs) == ("kfac", "x0.1")
    assert select_setting(rs, tolerance=0.0) == ("ekfac", "x10")
    proxy = [SettingResult("identity", "heuristic", topk_effect=0.2), SettingResult("ekfac", "heuristic", topk_effect=0.5),
             SettingResult("ekfac", "x10")]
    assert select_setting(proxy) == ("ekfac", "heuristic")
    with pytest.raises(ValueError, match="no setting"):
        select_setting([SettingResult("ekfac", "heuristic")])


def test_damping_specs() -> None:
    assert Damping.parse("heuristic") == Damping("heuristic")
    assert [d.label for d in parse_dampings(["auto", "x10", "1e-3"])] == ["heuristic", "x0.1", "x10", "0.001"]
    assert Damping.parse("10x") == Damping.parse("x10") == Damping("x10", None, 10.0)
    assert Damping.parse("1e-3").value == 1e-3 and Damping.parse("1e-3").engine_kwargs() == {"damping": 1e-3}
    with pytest.raises(ValidationRequestError, match="not a damping"):
        Damping.parse("-1")
    assert Damping.parse("x10").engine_kwargs() == {"damping": None, "damping_scale": 10.0}


def test_bad_requests_fail_before_any_work(digits, tmp_path) -> None:
    store = stores.open(tmp_path / "s")
    with pytest.raises(ValidationRequestError, match="unknown 'magic'"):
        _validate(store, digits, strategies=["ekfac", "magic"])
    with pytest.raises(ValidationRequestError, match="at least 2 subsets"):
        ValidationPlan(1)
    assert not (store.root / "artifacts" / "validation").exists()
    with pytest.raises(ValidationBudgetError, match="too small"):
        _validate(store, digits, budget_s=0.3, strategies=["identity"], dampings=["heuristic"])
    assert store.runs("validation").height == 0


TRAIN_SCRIPT = r'''
import json, sys
from pathlib import Path
import numpy as np
from safetensors.numpy import save_file
subset, out, seed, data = sys.argv[1:5]
rows = {r["id"]: r for r in map(json.loads, Path(data).read_text().splitlines())}
ids = Path(subset).read_text().split()
x = np.array([rows[i]["x"] for i in ids], dtype=np.float64)
y = np.eye(10)[[rows[i]["y"] for i in ids]]
xb = np.hstack([x, np.ones((len(x), 1))])
w = np.linalg.solve(xb.T @ xb + (1.0 + int(seed) % 2) * np.eye(xb.shape[1]), xb.T @ y)  # ridge, seed-dependent
Path(out).mkdir()
save_file({"net.0.weight": np.ascontiguousarray(w[:-1].T, dtype=np.float32),
           "net.0.bias": np.ascontiguousarray(w[-1], dtype=np.float32)}, str(Path(out) / "model.safetensors"))
(Path(out) / "config.json").write_text(json.dumps({"kind": "mlp", "n_in": 64, "hidden": [], "n_out": 10, "task": "classifier"}))
'''


def _ridge(x: np.ndarray, labels: np.ndarray, seed: int) -> torch.nn.Module:
    from attribution.models import MLP

    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.linalg.solve(xb.T @ xb + (1.0 + seed % 2) * np.eye(xb.shape[1]), xb.T @ np.eye(10)[labels])
    net = MLP(64, [], 10)
    net.net[0].weight.data = torch.tensor(w[:-1].T, dtype=torch.float32)
    net.net[0].bias.data = torch.tensor(w[-1], dtype=torch.float32)
    return net.eval()


def test_training_command_retrains_on_the_subset_it_is_given(digits, tmp_path) -> None:
    train = digits["train"]
    x, y = (t.numpy() for t in train.data.tensors)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"id": i, "x": x[j].tolist(), "y": int(y[j])}) + "\n" for j, i in enumerate(train.ids)))
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    command = TrainingCommand(f"{sys.executable} {script} {{subset}} {{out}} {{seed}} {data}")
    res = _validate(stores.open(tmp_path / "s"), digits, recipe=None, command=command,
                    plan=ValidationPlan(3, 1, topk_queries=0), strategies=["identity"], dampings=["heuristic"])
    for i, m in enumerate(res.masks):  # the command saw exactly the subset: our own ridge fit on it measures the same
        idx = np.flatnonzero(m)
        want = query_measurements(_ridge(x[idx], y[idx], retrain_seed(0, 1, i, 0)), ClassifierTask(), digits["queries"].data)
        np.testing.assert_allclose(res.measured[i], want, rtol=1e-4, atol=1e-4)
    assert json.loads(json.dumps(res.results[0].as_dict()))["lds"] == res.results[0].lds
    bad = TrainingCommand(f"{sys.executable} -c 'import sys; sys.exit(3)' {{subset}} {{out}}")
    with pytest.raises(Exception, match="exited with status 3"):
        _validate(stores.open(tmp_path / "t"), digits, recipe=None, command=bad, plan=ValidationPlan(2, 1, topk_queries=0),
                  strategies=["identity"])
    with pytest.raises(ValidationRequestError, match=r"\{subset\}"):
        TrainingCommand("python train.py {out}")


def test_module_sizes() -> None:
    root = Path(__file__).resolve().parents[2]
    for p in [*root.glob("curation/steps/validation*.py"), root / "curation/cli/validate.py",
              root / "curation/report/validation.py"]:
        assert len(p.read_text().splitlines()) < 500, p
