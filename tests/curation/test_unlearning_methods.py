"""Unlearning methods on a poisoned digits MLP (and a tiny GPT-2): what each one does to the weights.

The fixture poisons 5% of 500 digits (a trigger square relabelled to 0) and trains the toolkit's
MLP on them with :class:`MLPRecipe`; the poison is learned (measured: 1% accuracy on triggered
test digits, 86% clean) and retraining without it restores the triggered accuracy (80%).
Each method is checked against what it claims to compute, from an independent computation.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import Subset, TensorDataset

import stores
from attribution.config import EngineConfig
from attribution.data import CompletionDataset, Samples, char_tokenizer
from attribution.engine import InfluenceEngine
from attribution.preconditioning import inverse_hessian_products, layer_gradient
from attribution.tasks import CausalLMTask, ClassifierTask
from curation.actions.recipes import LMRecipe, MLPRecipe, last_layers
from curation.actions.unlearning.base import UnlearningInputError, UnlearningProblem
from curation.actions.unlearning.gradient import NPO, GradientAscent, GradientDifference
from curation.actions.unlearning.iau import IAU
from curation.actions.unlearning.methods import METHODS, make_method
from curation.actions.unlearning.newton import NewtonStep
from curation.actions.unlearning.retrain import Retrain, RetrainLast
from curation.actions.unlearning.ssd import SSD, importances
from curation.datasets.manipulations import add_trigger, poison
from curation.steps.train import LMConfig
from tests.helpers import fast_gc

N_TRAIN, TARGET = 500, 0
#: Fast settings for the methods that train (the defaults are for real runs).
FAST = {"gradient_ascent": {"steps": 5}, "grad_diff": {"steps": 5}, "npo": {"steps": 5}}


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xp, yp, mask = poison(x[:N_TRAIN], y[:N_TRAIN], 0.05, TARGET, seed=0)
    train = Samples(TensorDataset(torch.tensor(xp), torch.tensor(yp)), [f"t{i}" for i in range(N_TRAIN)])
    x_test, y_test = x[N_TRAIN:N_TRAIN + 400], y[N_TRAIN:N_TRAIN + 400]
    keep = y_test != TARGET
    recipe = MLPRecipe(64, (32,), 10, epochs=30)
    model = recipe.fit(recipe.fresh(0), train.data, 0)
    forget = np.flatnonzero(mask).tolist()
    return {
        "train": train, "recipe": recipe, "model": model, "forget": forget, "xp": xp, "yp": yp,
        "triggered": (torch.tensor(add_trigger(x_test[keep])), torch.tensor(y_test[keep])),
        "clean": (torch.tensor(x_test), torch.tensor(y_test)),
        "store": stores.open(tmp_path_factory.mktemp("unlearning") / "st", create=True),
    }


def _problem(digits: dict, **kw) -> UnlearningProblem:
    args = {"model": digits["model"], "task": ClassifierTask(), "train": digits["train"], "forget": digits["forget"],
            "recipe": digits["recipe"], "store": digits["store"]} | kw
    return UnlearningProblem(**args)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: nn.Module | dict, b: nn.Module | dict) -> bool:
    sa = a if isinstance(a, dict) else a.state_dict()
    sb = b if isinstance(b, dict) else b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@torch.no_grad()
def _accuracy(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor]) -> float:
    return float((model(data[0]).argmax(1) == data[1]).float().mean())


@torch.no_grad()
def _forget_loss(model: nn.Module, digits: dict) -> float:
    f = digits["forget"]
    return float(F.cross_entropy(model(torch.tensor(digits["xp"][f])), torch.tensor(digits["yp"][f])))


def test_the_poison_is_learned(digits: dict) -> None:
    assert _accuracy(digits["model"], digits["triggered"]) < 0.2
    assert _accuracy(digits["model"], digits["clean"]) > 0.75
    assert len(digits["forget"]) == 25


# ---------------------------------------------------------------------------------------- every method
@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_returns_a_new_model_and_leaves_the_original(digits: dict, name: str) -> None:
    before = _state(digits["model"])
    problem = _problem(digits)
    with fast_gc():
        out = make_method(name, **FAST.get(name, {})).unlearn(problem)
    assert out is not digits["model"]
    assert _same(digits["model"], before)
    assert out.state_dict().keys() == before.keys()
    assert not out.training
    assert all(p.requires_grad for p in out.parameters())
    assert out(digits["clean"][0][:4]).shape == (4, 10)


def test_make_method_and_settings_errors() -> None:
    assert isinstance(make_method("ssd", alpha=3.0), SSD) and make_method("ssd", alpha=3.0).settings.alpha == 3.0
    assert make_method("npo").config()["settings"]["beta"] == 0.1
    with pytest.raises(UnlearningInputError, match="unknown unlearning method 'forget_it'.*retrain"):
        make_method("forget_it")
    with pytest.raises(UnlearningInputError, match="ssd: unknown setting.*alpah.*expected"):
        make_method("ssd", alpah=1.0)
    with pytest.raises(UnlearningInputError, match="unknown setting"):
        GradientAscent(beta=0.1)  # an NPO setting, not gradient ascent's
    with pytest.raises(TypeError, match="settings must be"):
        SSD(IAU.Settings())


# ---------------------------------------------------------------------------------------- the problem
def test_problem_errors_and_retain_set(digits: dict) -> None:
    with pytest.raises(UnlearningInputError, match="empty"):
        _problem(digits, forget=[])
    with pytest.raises(UnlearningInputError, match=r"out of range \[0, 500\): \[500\]"):
        _problem(digits, forget=[0, 500])
    with pytest.raises(UnlearningInputError, match=r"out of range.*\[-1\]"):
        _problem(digits, forget=[-1, 3])
    with pytest.raises(UnlearningInputError, match="whole training set"):
        _problem(digits, forget=list(range(N_TRAIN)))
    p = _problem(digits, forget=[7, 3, 7, np.int64(1)])
    assert p.forget == [1, 3, 7]
    assert p.retain == [i for i in range(N_TRAIN) if i not in (1, 3, 7)]
    assert len(p.forget_data) == 3 and len(p.retain_data) == N_TRAIN - 3
    with pytest.raises(UnlearningInputError, match="recipe"):
        Retrain().unlearn(_problem(digits, recipe=None))
    with pytest.raises(UnlearningInputError, match="recipe"):
        RetrainLast().unlearn(_problem(digits, recipe=None))
    with pytest.raises(UnlearningInputError, match="store"):
        NewtonStep().unlearn(_problem(digits, store=None))


# ---------------------------------------------------------------------------------------- retraining
def test_retrain_is_training_from_scratch_on_the_retain_set(digits: dict) -> None:
    problem = _problem(digits)
    out = Retrain().unlearn(problem)
    recipe = digits["recipe"]
    expected = recipe.fit(recipe.fresh(0), Subset(digits["train"].data, problem.retain), 0)
    assert _same(out, expected)
    assert not _same(Retrain(seed=1).unlearn(problem), expected)
    # without the poison the trigger no longer flips the prediction
    before, after = _accuracy(digits["model"], digits["triggered"]), _accuracy(out, digits["triggered"])
    print(f"triggered accuracy: original {before:.2f}, retrained {after:.2f}")
    assert after >= before + 0.4


def test_retrain_last_changes_only_the_last_linear_layer(digits: dict) -> None:
    model = digits["model"]
    out = RetrainLast(k=1).unlearn(_problem(digits))
    for name in ("net.0.weight", "net.0.bias"):
        assert torch.equal(out.state_dict()[name], model.state_dict()[name])
    for name in ("net.2.weight", "net.2.bias"):
        assert not torch.equal(out.state_dict()[name], model.state_dict()[name])
    assert last_layers(model, 1) == [model.net[2]]
    assert last_layers(model, 2) == [model.net[0], model.net[2]]
    with pytest.raises(ValueError, match="at least 1"):
        last_layers(model, 0)
    both = RetrainLast(k=2).unlearn(_problem(digits))
    assert not torch.equal(both.state_dict()["net.0.weight"], model.state_dict()["net.0.weight"])


# ---------------------------------------------------------------------------------------- ssd
def test_ssd_with_a_huge_alpha_changes_nothing(digits: dict) -> None:
    assert _same(SSD(alpha=1e30).unlearn(_problem(digits)), digits["model"])


def test_importances_are_mean_squared_minibatch_gradients(digits: dict) -> None:
    problem = _problem(digits)
    model = copy.deepcopy(digits["model"])
    got = importances(model, problem, problem.forget, batch_size=10)
    x, y = torch.tensor(digits["xp"][problem.forget]), torch.tensor(digits["yp"][problem.forget])
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for lo in range(0, len(x), 10):  # 25 samples: batches of 10, 10, 5
        model.zero_grad()
        F.cross_entropy(model(x[lo:lo + 10]), y[lo:lo + 10]).backward()
        for n, p in model.named_parameters():
            expected[n] += p.grad ** 2 / 3
    for n in expected:
        torch.testing.assert_close(got[n], expected[n], rtol=1e-5, atol=1e-12)


def test_ssd_dampens_exactly_the_parameters_more_important_to_the_forget_set(digits: dict) -> None:
    problem = _problem(digits)
    out = SSD().unlearn(problem)
    s = SSD.Settings()
    model = copy.deepcopy(digits["model"]).eval()
    i_data = importances(model, problem, list(range(N_TRAIN)), s.batch_size)
    i_forget = importances(model, problem, problem.forget, s.batch_size)
    n_selected = n_kept = 0
    for name, p in digits["model"].named_parameters():
        selected = i_forget[name] > s.alpha * i_data[name]
        beta = torch.clamp(s.lam * i_data[name] / i_forget[name], max=1.0)
        new = out.state_dict()[name]
        assert torch.equal(new[~selected], p.detach()[~selected])  # the rest are untouched
        torch.testing.assert_close(new[selected], p.detach()[selected] * beta[selected], rtol=1e-6, atol=0)
        assert (new[selected].abs() <= p.detach()[selected].abs()).all()  # dampened, never amplified
        n_selected += int(selected.sum())
        n_kept += int((~selected).sum())
    assert n_selected > 0 and n_kept > 0  # the check covers both branches
    print(f"ssd dampened {n_selected} of {n_selected + n_kept} parameters")


# ---------------------------------------------------------------------------------------- gradient methods
def test_gradient_ascent_with_no_steps_is_the_original(digits: dict) -> None:
    assert _same(GradientAscent(steps=0).unlearn(_problem(digits)), digits["model"])


@pytest.mark.parametrize("method", [GradientAscent(steps=5, lr=1e-2), GradientDifference(steps=5, lr=1e-2), NPO(steps=5, lr=1e-2),
                                    NPO(steps=5, lr=1e-2, retain_weight=0.0)], ids=["ga", "grad_diff", "npo", "npo-no-retain"])
def test_gradient_methods_raise_the_forget_loss(digits: dict, method) -> None:
    before = _forget_loss(digits["model"], digits)
    out = method.unlearn(_problem(digits))
    after = _forget_loss(out, digits)
    print(f"{method.name}: forget loss {before:.3f} -> {after:.3f}")
    assert after > before + 1.0
    assert _forget_loss(digits["model"], digits) == before


def test_gradient_methods_are_deterministic_by_seed(digits: dict) -> None:
    one = NPO(steps=3).unlearn(_problem(digits))
    assert _same(one, NPO(steps=3).unlearn(_problem(digits)))
    assert not _same(one, NPO(steps=3, seed=5).unlearn(_problem(digits)))


def test_npo_moves_away_from_the_reference_and_its_loss_decreases(digits: dict) -> None:
    """The NPO objective (no retain term) falls from its value at the reference, 2/beta log 2."""
    problem = _problem(digits)
    beta = 0.1
    method = NPO(steps=10, retain_weight=0.0, beta=beta, batch_size=25)  # the whole forget set per step
    out = method.unlearn(problem)
    x = torch.tensor(digits["xp"][problem.forget])
    y = torch.tensor(digits["yp"][problem.forget])
    with torch.no_grad():
        ref = F.cross_entropy(digits["model"](x), y, reduction="none")
        nll = F.cross_entropy(out(x), y, reduction="none")
        loss = (2 / beta) * F.softplus(beta * (ref - nll)).mean()
    assert float(loss) < (2 / beta) * np.log(2) - 0.1
    assert (nll > ref).float().mean() > 0.9


# ---------------------------------------------------------------------------------------- iau
def test_iau_with_zero_lr_is_the_original(digits: dict) -> None:
    assert _same(IAU(lr=0.0).unlearn(_problem(digits)), digits["model"])


def test_iau_steps_along_the_retain_minus_forget_gradient(digits: dict) -> None:
    problem = _problem(digits)
    lr = 0.5
    out = IAU(lr=lr).unlearn(problem)
    model = copy.deepcopy(digits["model"])

    def mean_grad(idx: list[int]) -> dict[str, torch.Tensor]:
        model.zero_grad()
        F.cross_entropy(model(torch.tensor(digits["xp"][idx])), torch.tensor(digits["yp"][idx])).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    g_r, g_f = mean_grad(problem.retain), mean_grad(problem.forget)
    for name, p in digits["model"].named_parameters():
        delta = out.state_dict()[name] - p.detach()
        expected = -lr * (g_r[name] - g_f[name])
        torch.testing.assert_close(delta, expected, rtol=1e-3, atol=1e-6)
    assert _forget_loss(out, digits) > _forget_loss(digits["model"], digits)


# ---------------------------------------------------------------------------------------- newton
def test_newton_with_zero_scale_is_the_original(digits: dict) -> None:
    with fast_gc():
        assert _same(NewtonStep(scale=0.0).unlearn(_problem(digits)), digits["model"])


def test_newton_step_is_the_influence_estimate(digits: dict) -> None:
    problem = _problem(digits)
    with fast_gc():
        out = NewtonStep(scale=1.0).unlearn(problem)
        engine = InfluenceEngine(digits["store"], copy.deepcopy(digits["model"]), ClassifierTask(),
                                 EngineConfig(strategy="ekfac", batch_size=32, seed=0))
        factors = engine.load_factors(digits["train"])
    # theta + (1/n) H^-1 sum_{forget} grad L, with the gradient of an unprepared copy
    plain = copy.deepcopy(digits["model"])
    f = problem.forget
    F.cross_entropy(plain(torch.tensor(digits["xp"][f])), torch.tensor(digits["yp"][f]), reduction="sum").backward()
    grads = {n: layer_gradient(m) for n, m in plain.named_modules() if isinstance(m, nn.Linear)}
    steps = inverse_hessian_products(engine.model, factors, "ekfac", None, grads)
    for name, step in steps.items():
        w = digits["model"].state_dict()[f"{name}.weight"]
        b = digits["model"].state_dict()[f"{name}.bias"]
        torch.testing.assert_close(out.state_dict()[f"{name}.weight"] - w, step[:, :-1] / N_TRAIN, rtol=1e-3, atol=1e-7)
        torch.testing.assert_close(out.state_dict()[f"{name}.bias"] - b, step[:, -1] / N_TRAIN, rtol=1e-3, atol=1e-7)
    # measured with the step computed here: forget loss 0.006 -> 2.3, triggered accuracy 1% -> 29%
    assert _forget_loss(out, digits) > _forget_loss(digits["model"], digits) + 0.5
    assert _accuracy(out, digits["triggered"]) >= _accuracy(digits["model"], digits["triggered"])


# ---------------------------------------------------------------------------------------- a causal LM
@pytest.fixture(scope="module")
def lm() -> dict:
    tok = char_tokenizer("0123456789+= ")
    rng = np.random.default_rng(0)
    pairs = [(int(a), int(b)) for a, b in rng.integers(0, 20, size=(40, 2))]
    data = CompletionDataset([f"{a}+{b}=" for a, b in pairs], [f" {a + b}" for a, b in pairs], tok, max_length=12)
    recipe = LMRecipe(tok, LMConfig(n_layer=2, n_embd=32, n_head=2, steps=10, batch_size=8, max_length=12))
    model = recipe.fit(recipe.fresh(0), data, 0)
    return {"tok": tok, "recipe": recipe, "model": model, "train": Samples(data, [f"s{i}" for i in range(40)])}


def _lm_problem(lm: dict) -> UnlearningProblem:
    return UnlearningProblem(lm["model"], CausalLMTask(lm["model"]), lm["train"], forget=[0, 5, 9, 12],
                             recipe=lm["recipe"], batch_size=8)


def test_gradient_methods_run_on_a_causal_lm(lm: dict) -> None:
    before = _state(lm["model"])
    problem = _lm_problem(lm)
    forget = next(problem.batches(problem.forget))
    with torch.no_grad():
        loss_before = float(problem.losses(lm["model"], forget).mean())
    for method in (GradientDifference(steps=3, batch_size=4, lr=1e-2), NPO(steps=3, batch_size=4, lr=1e-2)):
        out = method.unlearn(problem)
        assert not _same(out, before), method.name
        with torch.no_grad():
            assert float(problem.losses(out, forget).mean()) > loss_before, method.name
    assert _same(lm["model"], before)


def test_retrain_last_picks_the_last_transformer_block(lm: dict) -> None:
    model = lm["model"]
    chosen = last_layers(model, 1)
    assert chosen == [model.transformer.h[-1], model.transformer.ln_f]
    assert last_layers(model, 2)[:2] == list(model.transformer.h)
    out = RetrainLast(k=1).unlearn(_lm_problem(lm))
    old, new = model.state_dict(), out.state_dict()
    changed = {k for k in old if not torch.equal(old[k], new[k])}
    assert changed and all(k.startswith(("transformer.h.1.", "transformer.ln_f.")) for k in changed), changed
    assert any(k.startswith("transformer.h.1.mlp.") for k in changed)
    assert all(p.requires_grad for p in out.parameters())


def test_mlp_recipe_calls_on_epoch_after_each_pass_with_the_same_result() -> None:
    from torch.utils.data import TensorDataset as TD

    g = torch.Generator().manual_seed(0)
    ds = TD(torch.randn(30, 4, generator=g), torch.randint(0, 2, (30,), generator=g))
    recipe = MLPRecipe(4, (5,), 2, epochs=3, batch_size=8)
    seen: list[tuple[int, float]] = []
    a = recipe.fit(recipe.fresh(0), ds, 0, on_epoch=lambda e, m: seen.append((e, float(m.net[0].weight.detach().sum()))))
    b = recipe.fit(recipe.fresh(0), ds, 0)
    assert [e for e, _ in seen] == [1, 2, 3] and len({w for _, w in seen}) == 3  # the weights move between epochs
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
