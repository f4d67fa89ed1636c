"""The LDS benchmark's datasets, models and training recipes (helpers of ``bench/lds.py``).

Five datasets, each drawn from a *data seed* (the split, and for the generated ones the data):

==========  ===========  ===========================================  =====================  ==========
dataset     task         data                                         model                  train/query
==========  ===========  ===========================================  =====================  ==========
concrete    regression   UCI Concrete, standardised on the train part  MLP 8-128-128-128-1    927 / 103
digits      classifier   scikit-learn digits, pixels in [0, 1]         MLP 64-128-64-10       1000 / 300
wine        classifier   scikit-learn wine, standardised               MLP 13-64-64-3         128 / 50
friedman1   regression   ``make_friedman1`` (1,000 samples, noise 1),  MLP 10-128-128-1       800 / 200
                         standardised
lm          causal LM    TInt traces (``add``/``sub``, 1-2 digit        GPT-2, 1 layer x 32    400 / 48
                         numbers), character tokenizer                 (16k parameters)
==========  ===========  ===========================================  =====================  ==========

The MLPs train with :class:`BenchMLPRecipe` (mini-batch SGD with momentum, one thread, deterministic
for a seed: the loop of the earlier ``bench/lds.py``, so Concrete and digits models are the same as
before); the GPT-2 with the toolkit's :class:`~curation.actions.recipes.LMRecipe`
(:func:`curation.steps.train.train_lm`: AdamW, one-cycle schedule, prompt-masked completion loss).
Both are recipes in the toolkit's sense (``fresh``/``fit``/``config``), so validation
(:func:`curation.steps.validation.validate`) retrains with exactly the benchmark's training.

Every query's measurement is the task's ``compute_measurement`` (:mod:`attribution.tasks`):
squared error (regression), negative margin (classifier), summed completion NLL (LM), read by
:func:`curation.steps.validation_retrain.query_measurements`, as validation reads it.

The LM is deliberately tiny (shrunk to fit the time budget): one retraining on a half (length = AdamW
steps, batch 16) measured 1.1 s of CPU at 100 steps and 2.7 s at 200 on the shared 2-core machine,
so a few hundred retrainings fit (2 layers x 64 with batch 32 took 2-3x as long). Lengths below 40 steps break
``train_lm``'s one-cycle schedule (warm-up of 0.05 x steps must be at least 2 steps).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils import data
from torch.utils.data import TensorDataset

CONCRETE = Path(__file__).resolve().parents[2] / "shared" / "data" / "uci-concrete" / "concrete.data"
DATASETS = ("concrete", "digits", "wine", "friedman1", "lm")
REGRESSION = ("concrete", "friedman1")

#: per dataset: the task, the training-length grid searched on the selection seed (epochs; AdamW
#: steps for the LM), TRAK's projection-dimension grid (below the training-set size) and the
#: learning rate. The LM's length unit is steps.
SPECS: dict[str, dict[str, Any]] = {
    "concrete": {"task": "regression", "epoch_grid": (10, 20, 40), "proj_grid": (128, 256, 512), "lr": 0.03},
    "digits": {"task": "classifier", "epoch_grid": (20, 40, 80), "proj_grid": (128, 256, 512), "lr": 0.1},
    "wine": {"task": "classifier", "epoch_grid": (20, 40, 80), "proj_grid": (16, 32, 64), "lr": 0.05},
    "friedman1": {"task": "regression", "epoch_grid": (10, 20, 40), "proj_grid": (128, 256, 512), "lr": 0.03},
    "lm": {"task": "causal-lm", "epoch_grid": (100, 200), "proj_grid": (64, 128, 256), "lr": 5e-3},
}
WEIGHT_DECAY = 1e-4
#: the LM problem: TInt functions, number sizes, sizes of the sets, model shape and batch
LM_DATA = {"functions": ("add", "sub"), "max_digits": 2, "n_train": 400, "n_queries": 48, "max_length": 64}
LM_MODEL = {"n_layer": 1, "n_embd": 32, "n_head": 4, "batch_size": 16, "warmup": 0.05}


# ---------------------------------------------------------------------- data
@dataclass
class Split:
    """A dataset's training samples and queries for one data seed (torch datasets), and its tokenizer."""

    train: data.Dataset
    queries: data.Dataset
    tokenizer: Any = None

    @property
    def n_train(self) -> int:
        return len(self.train)

    @property
    def n_queries(self) -> int:
        return len(self.queries)


def _tensors(xt, yt, xq, yq, classes: bool = False) -> Split:
    f = (lambda a: torch.tensor(a, dtype=torch.float32))  # noqa: E731
    g = (lambda a: torch.tensor(a, dtype=torch.long)) if classes else f  # noqa: E731
    return Split(TensorDataset(f(xt), g(yt)), TensorDataset(f(xq), g(yq)))


def concrete_data(seed: int) -> Split:
    """UCI Concrete: 927 train / 103 query, features and target standardised on the train split."""
    raw = np.array([[float(v) for v in line.split()] for line in CONCRETE.read_text().splitlines() if line.strip()])
    raw = raw[np.random.default_rng(seed).permutation(len(raw))]
    x, y = raw[:, :8], raw[:, 8]
    xt, yt, xq, yq = x[:927], y[:927], x[927:], y[927:]
    mx, sx, my, sy = xt.mean(0), xt.std(0), yt.mean(), yt.std()
    return _tensors((xt - mx) / sx, (yt - my) / sy, (xq - mx) / sx, (yq - my) / sy)


def digits_data(seed: int) -> Split:
    """scikit-learn digits: 1000 train / 300 test, pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(seed).permutation(len(x))
    x, y = x[perm] / 16.0, y[perm]
    return _tensors(x[:1000], y[:1000], x[1000:1300], y[1000:1300], classes=True)


def wine_data(seed: int) -> Split:
    """scikit-learn wine (178 samples, 13 features, 3 classes): 128 train / 50 query, standardised on train."""
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    perm = np.random.default_rng(seed).permutation(len(x))
    x, y = x[perm], y[perm]
    mx, sx = x[:128].mean(0), x[:128].std(0)
    x = (x - mx) / sx
    return _tensors(x[:128], y[:128], x[128:], y[128:], classes=True)


def friedman1_data(seed: int) -> Split:
    """``make_friedman1(1000, noise=1.0, random_state=seed)``: 800 train / 200 query, standardised on train."""
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=1000, n_features=10, noise=1.0, random_state=seed)
    mx, sx, my, sy = x[:800].mean(0), x[:800].std(0), y[:800].mean(), y[:800].std()
    x, y = (x - mx) / sx, (y - my) / sy
    return _tensors(x[:800], y[:800], x[800:], y[800:])


def lm_data(seed: int) -> Split:
    """TInt traces (:mod:`curation.datasets.tint`): ``n_train`` training problems and ``n_queries`` unseen
    test problems (prompt = the problem, completion = the worked trace and answer), character tokens."""
    from attribution.data import CompletionDataset, char_tokenizer
    from curation.datasets.tint import generate_tint, generate_tint_test
    from curation.datasets.tint_traces import CHARSET

    kw = {"functions": LM_DATA["functions"], "max_digits": LM_DATA["max_digits"]}
    train = generate_tint(LM_DATA["n_train"], seed=seed, **kw)
    test = generate_tint_test(LM_DATA["n_queries"], seed=seed, exclude_prompts=[r["prompt"] for r in train], **kw)
    tok = char_tokenizer(CHARSET)
    make = (lambda rs: CompletionDataset([r["prompt"] for r in rs], [r["completion"] for r in rs], tok,  # noqa: E731
                                         LM_DATA["max_length"]))
    return Split(make(train), make(test), tok)


LOADERS = {"concrete": concrete_data, "digits": digits_data, "wine": wine_data, "friedman1": friedman1_data,
           "lm": lm_data}


@functools.lru_cache(maxsize=8)
def load(kind: str, seed: int) -> Split:
    """The dataset ``kind`` for data seed ``seed`` (cached: retraining workers load it once)."""
    return LOADERS[kind](seed)


# ---------------------------------------------------------------------- models and training
def make_mlp(kind: str) -> nn.Module:
    """The ReLU MLP of each tabular dataset (see the module table)."""
    shapes = {"concrete": (8, 128, 128, 128, 1), "digits": (64, 128, 64, 10), "wine": (13, 64, 64, 3),
              "friedman1": (10, 128, 128, 1)}[kind]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(shapes[:-1], shapes[1:], strict=True)):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(shapes) - 2 else [])
    return nn.Sequential(*layers)


@dataclass
class BenchMLPRecipe:
    """Mini-batch SGD (momentum 0.9, weight decay, batch 32) for one of the benchmark's MLPs.

    ``fresh(seed)`` seeds torch and builds the model; ``fit`` shuffles with a generator seeded by
    ``seed`` and runs on one thread (these MLPs gain nothing from more, and the model is then the
    same in any process). The regression loss is half the mean squared error.
    """

    dataset: str
    epochs: int
    lr: float
    weight_decay: float = WEIGHT_DECAY
    batch_size: int = 32

    def fresh(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return make_mlp(self.dataset)

    def fit(self, model: nn.Module, dataset: data.Dataset, seed: int) -> nn.Module:
        x, y = _stack(dataset)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            g = torch.Generator().manual_seed(seed)
            opt = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
            n, bs = len(x), self.batch_size
            model.train()
            for _ in range(self.epochs):
                order = torch.randperm(n, generator=g)
                for i in range(0, n, bs):
                    idx = order[i : i + bs]
                    out = model(x[idx])
                    if self.dataset in REGRESSION:
                        loss = 0.5 * ((out.squeeze(-1) - y[idx]) ** 2).mean()
                    else:
                        loss = F.cross_entropy(out, y[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        finally:
            torch.set_num_threads(threads)
        return model.eval()

    def config(self) -> dict[str, Any]:
        return {"recipe": "bench-mlp", **asdict(self)}


def _stack(dataset: data.Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """A TensorDataset (or a Subset of one) as its two tensors, in dataset order."""
    if isinstance(dataset, data.Subset) and isinstance(dataset.dataset, TensorDataset):
        idx = torch.as_tensor(list(dataset.indices), dtype=torch.long)
        x, y = dataset.dataset.tensors
        return x[idx], y[idx]
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[0], dataset.tensors[1]
    raise TypeError(f"expected a TensorDataset or a Subset of one, got {type(dataset).__name__}")


def recipe(kind: str, epochs: int, split: Split | None = None, lr: float | None = None) -> Any:
    """The training recipe of dataset ``kind`` at ``epochs`` (AdamW steps for the LM)."""
    lr = SPECS[kind]["lr"] if lr is None else lr
    if kind != "lm":
        return BenchMLPRecipe(kind, epochs, lr)
    from curation.actions.recipes import LMRecipe
    from curation.steps.train import LMConfig

    tok = split.tokenizer if split is not None else load(kind, 0).tokenizer  # the same characters for every seed
    cfg = LMConfig(n_layer=LM_MODEL["n_layer"], n_embd=LM_MODEL["n_embd"], n_head=LM_MODEL["n_head"], steps=epochs,
                   batch_size=LM_MODEL["batch_size"], lr=lr, warmup=LM_MODEL["warmup"], max_length=LM_DATA["max_length"])
    return LMRecipe(tok, cfg)


def task_for(kind: str, model: nn.Module | None = None) -> Any:
    """The engine's task of dataset ``kind`` (the LM's tracks its MLP Linear layers)."""
    from attribution.tasks import CausalLMTask, ClassifierTask, RegressionTask

    task = SPECS[kind]["task"]
    if task == "causal-lm":
        return CausalLMTask(model)
    return RegressionTask() if task == "regression" else ClassifierTask()


def train_full(kind: str, split: Split, seed: int, epochs: int, lr: float | None = None) -> nn.Module:
    """A model of ``kind`` trained on the whole training split with torch seed ``seed``."""
    r = recipe(kind, epochs, split, lr)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the LM's train_lm uses the process's threads: one, as in retraining workers
    try:
        return r.fit(r.fresh(seed), split.train, seed)
    finally:
        torch.set_num_threads(threads)


def measure(kind: str, model: nn.Module, split: Split) -> np.ndarray:
    """Each query's measurement (a loss) under ``model``, as validation measures it."""
    from curation.steps.validation_retrain import query_measurements

    return query_measurements(model, task_for(kind, model), split.queries)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["DATASETS", "LM_DATA", "LM_MODEL", "SPECS", "BenchMLPRecipe", "Split", "load", "make_mlp", "measure",
           "n_params", "recipe", "task_for", "train_full"]
