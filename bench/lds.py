"""Linear Datamodeling Score (LDS) of the engine's strategies, kronfluence's defaults, TRAK and baselines.

Protocol (TRAK paper; ../shared/specs/engine.md), per dataset:

1. Selection, on a held-out seed (``--select-seed``: another data split, model init, subset draw
   and retraining seeds than the reported run). For each training length in the grid
   (``--epoch-grid-concrete`` / ``--epoch-grid-digits``) train the model, score it with EK-FAC
   (the engine's damping heuristic) and measure its LDS on ``--select-subsets`` halves x
   ``--select-seeds`` retraining seeds (the same halves and seeds for every length). The report
   uses the length with the highest EK-FAC LDS (ties: the shorter). At that length the same
   retrainings give two more sweeps: damping (the heuristic, 0.1 x mean eigenvalue per layer,
   against fixed 1e-8 = kronfluence's default, 1e-4 and 1e-2; informative only, the report
   keeps the heuristic) and TRAK's projection dimension (``--trak-proj-grid``; the report uses
   the best, so TRAK is tuned on held-out data like the training length). ``--epochs-concrete N``
   / ``--epochs-digits N`` skip a dataset's selection (TRAK then uses ``--trak-proj-dim`` or 512).
2. Report, at ``--seed`` with the chosen settings: train on the full training set and score every
   training sample against every query with each method: the engine's strategies (ekfac, kfac,
   diagonal, identity; damping heuristic); ``kronfluence_defaults`` (kronfluence's Analyzer used
   directly, with a minimal Task and its own FactorArguments()/ScoreArguments(): EK-FAC, damping
   1e-8); ``trak`` (the ``traker`` package, an ensemble of ``--trak-models`` models: the reported
   one plus others trained on the same data with other seeds) and ``trak_1`` (the reported model
   alone); baselines ``loss`` (minus the training loss, for every query) and ``random``. Draw
   ``--subsets`` random halves of the training set; retrain on each with ``--seeds`` seeds and
   record each query's loss (squared error for Concrete, negative margin for digits), averaged
   over seeds. Every method is scored against the same retrainings.

A method predicts a subset's query loss as minus the sum of its scores over the subset's members
(positive score = lowers the loss); LDS (``attribution.lds``) is the Spearman correlation between
prediction and measurement across subsets, averaged over queries. Retraining runs in
``--workers`` processes of one thread each; results do not depend on their number.

Writes bench/results/lds.json: ``{"concrete": {"ekfac": .., "kfac": .., "diagonal": ..,
"identity": .., "kronfluence_defaults": .., "trak": .., "trak_1": .., "loss": .., "random": ..},
"digits": {...}, "selection": {"digits": {"chosen_epochs": 80, "epochs": {"20": {"ekfac": ..},
..}, "damping": {"heuristic": .., "1e-08": .., "0.0001": .., "0.01": ..}, "trak_proj_dim":
{"128": {"trak": .., "trak_1": ..}, ..}, "chosen_trak_proj_dim": .., ..}, ..}}`` plus settings,
wall and CPU seconds per part, and ``<dataset>_details``. TRAK needs ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import io
import logging
import math
import multiprocessing
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (  # noqa: E402
    RESULTS_DIR,
    add_provenance_args,
    machine_info,
    now_iso,
    print_table,
    require_clean_tree,
    write_result,
)

import stores  # noqa: E402
from attribution.baselines import per_sample_losses  # noqa: E402
from attribution.data import Samples  # noqa: E402
from attribution.engine import EngineConfig, InfluenceEngine, score_matrix  # noqa: E402
from attribution.lds import linear_datamodeling_score  # noqa: E402
from attribution.strategies import STRATEGIES  # noqa: E402
from attribution.tasks import ClassifierTask, RegressionTask  # noqa: E402

CONCRETE = Path(__file__).resolve().parents[2] / "shared" / "data" / "uci-concrete" / "concrete.data"
METHODS = (*STRATEGIES, "kronfluence_defaults", "trak", "trak_1", "loss", "random")
DAMPING_SWEEP = (1e-8, 1e-4, 1e-2)  # beside the heuristic; 1e-8 is kronfluence's default
TRAINING = {"lr_concrete": 0.03, "lr_digits": 0.1, "weight_decay": 1e-4}


# ---------------------------------------------------------------------- data and models
@dataclass
class Split:
    """A dataset's training and query tensors for one data seed."""

    xt: torch.Tensor
    yt: torch.Tensor
    xq: torch.Tensor
    yq: torch.Tensor

    @property
    def train(self) -> TensorDataset:
        return TensorDataset(self.xt, self.yt)

    @property
    def queries(self) -> TensorDataset:
        return TensorDataset(self.xq, self.yq)


def concrete_data(seed: int = 0) -> Split:
    """UCI Concrete: 927 train / 103 query, features and target standardised on the train split."""
    raw = np.array([[float(v) for v in line.split()] for line in CONCRETE.read_text().splitlines() if line.strip()])
    raw = raw[np.random.default_rng(seed).permutation(len(raw))]
    x, y = raw[:, :8], raw[:, 8]
    xt, yt, xq, yq = x[:927], y[:927], x[927:], y[927:]
    mx, sx, my, sy = xt.mean(0), xt.std(0), yt.mean(), yt.std()
    f = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return Split(f((xt - mx) / sx), f((yt - my) / sy), f((xq - mx) / sx), f((yq - my) / sy))


def digits_data(seed: int = 0) -> Split:
    """scikit-learn digits: 1000 train / 300 test, pixels scaled to [0, 1]."""
    x, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(seed).permutation(len(x))
    x, y = torch.tensor(x[perm] / 16.0, dtype=torch.float32), torch.tensor(y[perm])
    return Split(x[:1000], y[:1000], x[1000:1300], y[1000:1300])


def load(kind: str, seed: int) -> Split:
    return concrete_data(seed) if kind == "concrete" else digits_data(seed)


def make_model(kind: str) -> nn.Module:
    """The spec's architectures: Concrete 8-128-128-128-1, digits 64-128-64-10 (ReLU MLPs)."""
    if kind == "concrete":
        return nn.Sequential(nn.Linear(8, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                             nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1))
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def train_model(kind: str, x: torch.Tensor, y: torch.Tensor, seed: int, epochs: int) -> nn.Module:
    """Mini-batch SGD with momentum and weight decay, deterministic for a seed.

    Runs on one thread (these MLPs are too small to gain from more, and a second thread slows
    them down badly on a busy machine), so a model is the same in the main process and in any
    retraining worker.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(kind, x, y, seed, epochs)
    finally:
        torch.set_num_threads(threads)


def _train(kind: str, x: torch.Tensor, y: torch.Tensor, seed: int, epochs: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = make_model(kind)
    lr = TRAINING["lr_concrete"] if kind == "concrete" else TRAINING["lr_digits"]
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=TRAINING["weight_decay"])
    n, bs = len(x), 32
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        for i in range(0, n, bs):
            idx = order[i : i + bs]
            out = model(x[idx])
            if kind == "concrete":
                loss = 0.5 * ((out.squeeze(-1) - y[idx]) ** 2).mean()
            else:
                loss = F.cross_entropy(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def query_losses(kind: str, model: nn.Module, xq: torch.Tensor, yq: torch.Tensor) -> np.ndarray:
    """The measurement the engine attributes, per query: squared error or negative margin."""
    out = model(xq)
    if kind == "concrete":
        return (0.5 * (out.squeeze(-1) - yq) ** 2).numpy()
    true = out.gather(1, yq.unsqueeze(1)).squeeze(1)
    others = out.scatter(1, yq.unsqueeze(1), float("-inf")).logsumexp(-1)
    return (others - true).numpy()


def derived_seed(*parts: int) -> int:
    """A torch seed derived from the run's seed and indices, so runs with other seeds share none."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


# ---------------------------------------------------------------------- retraining
def draw_masks(n_train: int, subsets: int, seed: int) -> np.ndarray:
    """``subsets`` random halves of the training set, (subsets, n_train) booleans."""
    rng = np.random.default_rng([seed, 1])
    masks = np.zeros((subsets, n_train), dtype=bool)
    for s in range(subsets):
        masks[s, rng.choice(n_train, size=n_train // 2, replace=False)] = True
    return masks


def retrain_and_measure(kind: str, data_seed: int, masks: np.ndarray, seeds: int, epochs: int,
                        pool: ProcessPoolExecutor | None) -> tuple[np.ndarray, float]:
    """Each query's loss after retraining on each subset, averaged over ``seeds``: (subsets, queries).

    Retraining seeds derive from ``data_seed`` (the run's seed), the subset and the repeat, so
    the result does not depend on ``pool`` (worker processes, one thread each) or its size.
    Also returns the CPU seconds the workers spent (0 without a pool: this process's own).
    """
    jobs = [(kind, data_seed, np.flatnonzero(mask), derived_seed(data_seed, 2, s, k), epochs)
            for s, mask in enumerate(masks) for k in range(seeds)]
    if pool is None:
        done = [_retrain_one(job) for job in jobs]
    else:
        done = list(pool.map(_retrain_one, jobs, chunksize=max(1, len(jobs) // 16)))
    measured = np.stack([losses for losses, _ in done]).reshape(len(masks), seeds, -1).mean(axis=1)
    return measured, (sum(cpu for _, cpu in done) if pool is not None else 0.0)


@functools.lru_cache(maxsize=4)
def _cached_split(kind: str, seed: int) -> Split:
    return load(kind, seed)


def _retrain_one(job: tuple) -> tuple[np.ndarray, float]:
    """One retraining: (kind, data seed, member indices, torch seed, epochs) -> (query losses, CPU s)."""
    kind, data_seed, members, seed, epochs = job
    cpu = time.process_time()
    split = _cached_split(kind, data_seed)
    idx = torch.from_numpy(members)
    losses = query_losses(kind, train_model(kind, split.xt[idx], split.yt[idx], seed, epochs), split.xq, split.yq)
    return losses, time.process_time() - cpu


def train_models(kind: str, data_seed: int, seeds: list[int], epochs: int,
                 pool: ProcessPoolExecutor | None) -> tuple[list[nn.Module], float]:
    """Models trained on the whole training split with each seed (in the pool when there is one)."""
    jobs = [(kind, data_seed, seed, epochs) for seed in seeds]
    done = [_train_one(job) for job in jobs] if pool is None else list(pool.map(_train_one, jobs))
    models = []
    for state, _ in done:
        model = make_model(kind)
        model.load_state_dict(state)
        models.append(model.eval())
    return models, (sum(cpu for _, cpu in done) if pool is not None else 0.0)


def _train_one(job: tuple) -> tuple[dict, float]:
    """(kind, data seed, torch seed, epochs) -> (state dict of a model on the whole split, CPU s)."""
    kind, data_seed, seed, epochs = job
    cpu = time.process_time()
    split = _cached_split(kind, data_seed)
    return train_model(kind, split.xt, split.yt, seed, epochs).state_dict(), time.process_time() - cpu


def _worker_init(training: dict) -> None:
    torch.set_num_threads(1)
    TRAINING.update(training)


def retraining_pool(workers: int) -> ProcessPoolExecutor | None:
    """Worker processes for retraining (spawned: no forked OpenMP state), or None for in-process."""
    if workers < 1:
        return None
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init, initargs=(dict(TRAINING),))


# ---------------------------------------------------------------------- methods
def engine_scores(kind: str, model: nn.Module, split: Split, strategy: str, damping: float | None,
                  seed: int) -> np.ndarray:
    """(queries, train) scores from our engine (kronfluence underneath, our task and settings)."""
    task = RegressionTask() if kind == "concrete" else ClassifierTask()
    ids = [f"{kind}-t{i}" for i in range(len(split.xt))]
    qids = [f"{kind}-q{i}" for i in range(len(split.xq))]
    with tempfile.TemporaryDirectory() as tmp:
        store = stores.open(Path(tmp) / "store")
        engine = InfluenceEngine(store, copy.deepcopy(model), task, EngineConfig(
            strategy=strategy, damping=damping, batch_size=128, shard_size=len(ids), seed=seed))
        run = engine.pairwise_scores("queries", Samples(split.train, ids), Samples(split.queries, qids))
        return score_matrix(store, run.run_id, qids, ids)


def _kronfluence_task(kind: str):
    """A minimal kronfluence Task written as in kronfluence's own examples (UCI, CIFAR-10)."""
    from kronfluence.task import Task

    class ConcreteTask(Task):
        def compute_train_loss(self, batch, model, sample=False):
            inputs, targets = batch
            outputs = model(inputs).squeeze(-1)
            if sample:  # the Gaussian likelihood whose negative log is this sum of squares
                with torch.no_grad():
                    targets = torch.normal(outputs.detach(), std=math.sqrt(0.5))
            return F.mse_loss(outputs, targets, reduction="sum")

        def compute_measurement(self, batch, model):
            return self.compute_train_loss(batch, model, sample=False)

    class DigitsTask(Task):
        def compute_train_loss(self, batch, model, sample=False):
            inputs, labels = batch
            logits = model(inputs)
            if sample:
                with torch.no_grad():
                    labels = torch.multinomial(logits.detach().softmax(-1), 1).squeeze(-1)
            return F.cross_entropy(logits, labels, reduction="sum")

        def compute_measurement(self, batch, model):
            inputs, labels = batch
            logits = model(inputs)
            true = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
            others = logits.scatter(1, labels.unsqueeze(1), float("-inf")).logsumexp(-1)
            return -(true - others).sum()  # minus the margin: a loss, like the LDS target

    return ConcreteTask() if kind == "concrete" else DigitsTask()


def kronfluence_default_scores(kind: str, model: nn.Module, split: Split, seed: int) -> tuple[np.ndarray, dict]:
    """(queries, train) scores from kronfluence's Analyzer with its own default arguments.

    No FactorArguments/ScoreArguments are passed (EK-FAC, damping 1e-8, ...) and no training
    batch size (kronfluence finds one); queries go in one batch. The seed only fixes the
    labels kronfluence samples from the model when fitting.
    """
    from kronfluence.analyzer import Analyzer, prepare_model
    from kronfluence.arguments import FactorArguments, ScoreArguments

    task = _kronfluence_task(kind)
    prepared = prepare_model(copy.deepcopy(model), task)
    with tempfile.TemporaryDirectory() as tmp:
        analyzer = Analyzer(analysis_name="lds", model=prepared, task=task, cpu=True, disable_tqdm=True,
                            output_dir=tmp)
        torch.manual_seed(seed)
        analyzer.fit_all_factors(factors_name="defaults", dataset=split.train)
        analyzer.compute_pairwise_scores(scores_name="defaults", factors_name="defaults",
                                         query_dataset=split.queries, train_dataset=split.train,
                                         per_device_query_batch_size=len(split.xq))
        scores = analyzer.load_pairwise_scores("defaults")["all_modules"].numpy()
    settings = {"factor_args": FactorArguments().to_str_dict(), "score_args": ScoreArguments().to_str_dict(),
                "per_device_batch_size": "None (kronfluence searches from 4096 down)",
                "per_device_query_batch_size": len(split.xq)}
    return scores.astype(np.float64), settings


def trak_scores(kind: str, models: list[nn.Module], split: Split, proj_dim: int) -> dict[int, np.ndarray]:
    """(queries, train) TRAK scores (traker, BasicProjector on CPU) for the query losses.

    Returns ``{len(models): the ensemble's scores, 1: the first model's alone}``. TRAK attributes
    a model output f: the margin for digits (minus our measurement, so TRAK's sign already
    means "lowers the loss") and the prediction for Concrete, whose out-to-loss term Q is minus
    the derivative of the squared error, (y - f). Concrete's output scores become loss scores
    by the chain rule, times each query's residual (y_q - f_q) averaged over the models.
    """
    try:
        from trak import TRAKer
        from trak.modelout_functions import AbstractModelOutput
        from trak.projectors import BasicProjector, ProjectionType
    except ImportError as exc:
        raise SystemExit("TRAK needs the `traker` package: .venv/bin/pip install -e '.[bench]'") from exc

    class RegressionOutput(AbstractModelOutput):
        """f = the prediction; Q = -d(0.5 (f - y)^2)/df = y - f."""

        def __init__(self) -> None:
            super().__init__()

        @staticmethod
        def get_output(model, weights, buffers, x, y):
            return torch.func.functional_call(model, (weights, buffers), x.unsqueeze(0)).sum()

        def get_out_to_loss_grad(self, model, weights, buffers, batch):
            x, y = batch
            pred = torch.func.functional_call(model, (weights, buffers), x).squeeze(-1)
            return (y - pred).detach().unsqueeze(-1)

    if proj_dim >= len(split.xt):
        raise ValueError(f"TRAK's projection dimension {proj_dim} must be below the {len(split.xt)} training "
                         "samples, or its X^T X (proj_dim x proj_dim) is singular")
    task = RegressionOutput() if kind == "concrete" else "image_classification"
    base = copy.deepcopy(models[0])
    n_params = sum(p.numel() for p in base.parameters())
    projector = BasicProjector(grad_dim=n_params, proj_dim=proj_dim, seed=0, proj_type=ProjectionType.normal,
                               device="cpu", dtype=torch.float32)
    out: dict[int, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):  # traker's tqdm bars
        traker = TRAKer(model=base, task=task, train_set_size=len(split.xt), save_dir=tmp, device="cpu",
                        projector=projector, use_half_precision=False, logging_level=logging.WARNING)
        for model_id, m in enumerate(models):
            traker.load_checkpoint(m.state_dict(), model_id=model_id)
            for lo in range(0, len(split.xt), 256):
                batch = (split.xt[lo : lo + 256], split.yt[lo : lo + 256])
                traker.featurize(batch=batch, num_samples=len(batch[0]))
        traker.finalize_features()
        for model_id, m in enumerate(models):
            traker.start_scoring_checkpoint(exp_name="queries", checkpoint=m.state_dict(), model_id=model_id,
                                            num_targets=len(split.xq))
            traker.score(batch=(split.xq, split.yq), num_samples=len(split.xq))
        for ids in (list(range(len(models))), [0]):  # (train, queries) -> (queries, train)
            out[len(ids)] = np.array(traker.finalize_scores(exp_name="queries", model_ids=ids), dtype=np.float64).T
    if kind == "concrete":
        with torch.no_grad():
            residuals = [(split.yq - m(split.xq).squeeze(-1)).numpy().astype(np.float64) for m in models]
        out = {k: v * np.mean(residuals[:k], axis=0)[:, None] for k, v in out.items()}
    return out


class Clock:
    """Wall and CPU seconds per named part; CPU counts this process's threads and retraining workers."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextlib.contextmanager
    def part(self, name: str):
        wall, cpu = time.perf_counter(), time.process_time()
        extra = {"cpu": 0.0}  # CPU seconds spent in worker processes, added by the caller
        yield extra
        self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall
        self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu + extra["cpu"]

    def as_dict(self) -> dict:
        return {"wall": self.wall, "cpu": self.cpu, "wall_total": sum(self.wall.values()),
                "cpu_total": sum(self.cpu.values())}


def all_scores(kind: str, model: nn.Module, split: Split, args: argparse.Namespace, clock: Clock,
               epochs: int, proj_dim: int, pool: ProcessPoolExecutor | None) -> tuple[dict[str, np.ndarray], dict]:
    """Every reported method's (queries, train) scores for the model trained at ``--seed``."""
    scores: dict[str, np.ndarray] = {}
    info: dict = {}
    for strategy in STRATEGIES:
        with clock.part(strategy):
            scores[strategy] = engine_scores(kind, model, split, strategy, None, args.seed)
    with clock.part("kronfluence_defaults"):
        scores["kronfluence_defaults"], info["kronfluence_defaults"] = kronfluence_default_scores(
            kind, model, split, args.seed)
    with clock.part("trak_extra_models") as extra:
        others, extra["cpu"] = train_models(kind, args.seed, [derived_seed(args.seed, 3, k)
                                                              for k in range(1, args.trak_models)], epochs, pool)
    with clock.part("trak"):
        trak = trak_scores(kind, [model, *others], split, proj_dim)
    scores["trak"], scores["trak_1"] = trak[args.trak_models], trak[1]
    info["trak"] = {"package": "traker", "models": args.trak_models, "proj_dim": proj_dim,
                    "projector": "BasicProjector, normal (CPU; fast_jl needs CUDA)", "half_precision": False,
                    "lambda_reg": 0.0, "models_trained_on": "the full training set, each for the chosen epochs; "
                    "model 0 is the reported model (alone: trak_1), the others differ in init and batch order"}
    with clock.part("baselines"):
        task = RegressionTask() if kind == "concrete" else ClassifierTask()
        loss = per_sample_losses(model, task, split.train)
        scores["loss"] = np.tile(-loss, (len(split.xq), 1))  # high loss predicted to hurt every query
        scores["random"] = np.random.default_rng(args.seed).normal(size=(len(split.xq), len(split.xt)))
    return scores, info


# ---------------------------------------------------------------------- the two stages
def select_epochs(kind: str, args: argparse.Namespace, pool: ProcessPoolExecutor | None) -> dict:
    """On the selection seed: the epoch sweep (picks the reported epochs), then at those epochs the
    damping sweep (informative) and TRAK's projection sweep (picks its dimension)."""
    grid = sorted(args.epoch_grid_concrete if kind == "concrete" else args.epoch_grid_digits)
    seed = args.select_seed
    split = load(kind, seed)
    masks = draw_masks(len(split.xt), args.select_subsets, seed)
    clock = Clock()
    out: dict = {"seed": seed, "subsets": args.select_subsets, "seeds": args.select_seeds, "grid": grid,
                 "rule": "highest EK-FAC LDS (damping heuristic) on the selection seed; ties go to fewer epochs",
                 "epochs": {}, "damping": {}}
    kept: dict[int, tuple[nn.Module, np.ndarray]] = {}
    for epochs in grid:
        with clock.part(f"epochs_{epochs}_train_and_score"):
            model = train_model(kind, split.xt, split.yt, seed, epochs)
            ekfac = engine_scores(kind, model, split, "ekfac", None, seed)
        with clock.part(f"epochs_{epochs}_retraining") as extra:
            measured, extra["cpu"] = retrain_and_measure(kind, seed, masks, args.select_seeds, epochs, pool)
        out["epochs"][str(epochs)] = {"ekfac": linear_datamodeling_score(ekfac, masks, measured)}
        kept[epochs] = (model, measured)
        print(f"  selection {kind}: {epochs} epochs, EK-FAC LDS {out['epochs'][str(epochs)]['ekfac']:.3f}", flush=True)
    best = max(out["epochs"][str(e)]["ekfac"] for e in grid)
    chosen = min(e for e in grid if out["epochs"][str(e)]["ekfac"] == best)
    out["chosen_epochs"] = chosen
    model, measured = kept[chosen]
    out["damping"]["heuristic"] = out["epochs"][str(chosen)]["ekfac"]
    with clock.part("damping_sweep"):
        for damping in DAMPING_SWEEP:
            scores = engine_scores(kind, model, split, "ekfac", damping, seed)
            out["damping"][f"{damping:g}"] = linear_datamodeling_score(scores, masks, measured)
    out["damping_epochs"] = chosen
    if args.trak_proj_dim is None:
        with clock.part("trak_extra_models") as extra:
            others, extra["cpu"] = train_models(kind, seed, [derived_seed(seed, 3, k) for k in range(1, args.trak_models)],
                                                chosen, pool)
        out["trak_proj_dim"] = {}
        with clock.part("trak_proj_dim_sweep"):
            for proj_dim in sorted(args.trak_proj_grid):
                trak = trak_scores(kind, [model, *others], split, proj_dim)
                out["trak_proj_dim"][str(proj_dim)] = {
                    "trak": linear_datamodeling_score(trak[args.trak_models], masks, measured),
                    "trak_1": linear_datamodeling_score(trak[1], masks, measured)}
        best = max(v["trak"] for v in out["trak_proj_dim"].values())
        out["chosen_trak_proj_dim"] = min(int(k) for k, v in out["trak_proj_dim"].items() if v["trak"] == best)
        out["trak_rule"] = (f"highest LDS of the {args.trak_models}-model TRAK ensemble at the chosen epochs on the "
                            "selection seed; ties go to the smaller dimension")
    out["seconds"] = clock.as_dict()
    return out


def report(kind: str, epochs: int, proj_dim: int, args: argparse.Namespace,
           pool: ProcessPoolExecutor | None) -> dict:
    """Train at ``--seed``, score with every method, retrain on the subsets, LDS per method."""
    split = load(kind, args.seed)
    clock = Clock()
    with clock.part("train"):
        model = train_model(kind, split.xt, split.yt, args.seed, epochs)
    scores, info = all_scores(kind, model, split, args, clock, epochs, proj_dim, pool)
    masks = draw_masks(len(split.xt), args.subsets, args.seed)
    with clock.part("retraining") as extra:
        measured, extra["cpu"] = retrain_and_measure(kind, args.seed, masks, args.seeds, epochs, pool)
    methods = {name: linear_datamodeling_score(scores[name], masks, measured) for name in METHODS}
    seconds = clock.as_dict()
    model_epochs = args.subsets * args.seeds * epochs
    seconds["retraining_per_model_epoch"] = {"wall": clock.wall["retraining"] / model_epochs,
                                             "cpu": clock.cpu["retraining"] / model_epochs}
    return {"n_train": len(split.xt), "n_queries": len(split.xq), "epochs": epochs, "subsets": args.subsets,
            "seeds": args.seeds, "methods": methods, "settings": info, "seconds": seconds}


def _grid(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive epoch counts, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subsets", type=int, default=100)
    p.add_argument("--seeds", type=int, default=3, help="retraining seeds averaged per subset")
    p.add_argument("--seed", type=int, default=0, help="data split, model and subsets of the reported run")
    p.add_argument("--select-seed", type=int, default=1, help="the held-out seed the training length is chosen on")
    p.add_argument("--select-subsets", type=int, default=30)
    p.add_argument("--select-seeds", type=int, default=3)
    p.add_argument("--epoch-grid-concrete", type=_grid, default=[10, 20, 40])
    p.add_argument("--epoch-grid-digits", type=_grid, default=[20, 40, 80])
    p.add_argument("--epochs-concrete", type=int, default=None, help="fix the length: skip Concrete's selection")
    p.add_argument("--epochs-digits", type=int, default=None, help="fix the length: skip digits' selection")
    p.add_argument("--trak-models", type=int, default=10,
                   help="models TRAK ensembles: the reported one plus others trained with other seeds (trak_1: it alone)")
    p.add_argument("--trak-proj-grid", type=_grid, default=[128, 256, 512],
                   help="TRAK projection dimensions tried on the selection seed (dattri's MNIST benchmark uses 512)")
    p.add_argument("--trak-proj-dim", type=int, default=None,
                   help="fix TRAK's projection dimension (skips its selection; default without selection: 512)")
    p.add_argument("--lr-concrete", type=float, default=TRAINING["lr_concrete"])
    p.add_argument("--lr-digits", type=float, default=TRAINING["lr_digits"])
    p.add_argument("--weight-decay", type=float, default=TRAINING["weight_decay"])
    p.add_argument("--datasets", default="concrete,digits")
    p.add_argument("--workers", type=int, default=2,
                   help="retraining processes, one thread each (0: in this process); results do not depend on it")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of this process (scoring); 2 is 10x slower when anything else runs")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "lds.json")
    add_provenance_args(p)
    args = p.parse_args(argv)
    if args.select_seed == args.seed:
        p.error("--select-seed must differ from --seed: the training length is chosen on a held-out seed")
    if args.trak_models < 1:
        p.error("--trak-models must be at least 1")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(datasets) - {"concrete", "digits"})
    if unknown:
        p.error(f"unknown datasets {unknown}; expected concrete and/or digits")
    require_clean_tree(args.allow_dirty)  # fail now, not when writing after the whole run
    TRAINING.update(lr_concrete=args.lr_concrete, lr_digits=args.lr_digits, weight_decay=args.weight_decay)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=r".*GradScaler", category=FutureWarning)  # kronfluence on CPU
    t_start = time.perf_counter()
    result: dict = {"benchmark": "lds", "created_at": now_iso(), "machine": machine_info(),
                    "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    "selection": {}, "seconds": {}, "cpu_seconds": {}}
    t0 = time.perf_counter()
    pool = retraining_pool(args.workers)
    result["seconds"]["start_workers"] = time.perf_counter() - t0
    try:
        for kind in datasets:
            fixed = args.epochs_concrete if kind == "concrete" else args.epochs_digits
            if fixed is None:
                print(f"{kind}: choosing epochs on seed {args.select_seed} ({args.select_subsets} subsets x "
                      f"{args.select_seeds} seeds) ...", flush=True)
                sel = select_epochs(kind, args, pool)
                result["selection"][kind] = sel
                epochs, chosen_by = sel["chosen_epochs"], f"selection on seed {args.select_seed} (see selection.{kind})"
                result["seconds"][f"{kind}_selection"] = sel["seconds"]["wall_total"]
                result["cpu_seconds"][f"{kind}_selection"] = sel["seconds"]["cpu_total"]
                print_table(f"selection on {kind}, seed {args.select_seed}: EK-FAC LDS by epochs, then damping at "
                            f"{epochs} epochs", ["setting", "LDS"],
                            [[f"{e} epochs", v["ekfac"]] for e, v in sel["epochs"].items()]
                            + [[f"damping {d}", v] for d, v in sel["damping"].items()]
                            + [[f"TRAK-{args.trak_models} proj {k} (TRAK-1)", f"{v['trak']:.3f} ({v['trak_1']:.3f})"]
                               for k, v in sel.get("trak_proj_dim", {}).items()])
            else:
                epochs, chosen_by = fixed, f"fixed by --epochs-{kind} (no selection)"
                sel = {}
            proj_dim = args.trak_proj_dim or sel.get("chosen_trak_proj_dim", 512)
            print(f"{kind}: reporting at seed {args.seed}, {epochs} epochs, {args.subsets} subsets x {args.seeds} seeds ...",
                  flush=True)
            res = report(kind, epochs, proj_dim, args, pool)
            res["epochs_chosen_by"] = chosen_by
            result[kind] = res["methods"]
            result[f"{kind}_details"] = res
            result["seconds"][f"{kind}_report"] = res["seconds"]["wall_total"]
            result["cpu_seconds"][f"{kind}_report"] = res["seconds"]["cpu_total"]
            print_table(
                f"LDS on {kind} ({res['n_train']} train / {res['n_queries']} queries, {epochs} epochs)",
                ["method", "LDS", "scoring s"],
                [[m, v, res["seconds"]["wall"].get(m)] for m, v in res["methods"].items()],
            )
    finally:
        if pool is not None:
            pool.shutdown()
    result["seconds"]["total"] = time.perf_counter() - t_start
    result["finished_at"] = now_iso()
    write_result(args.out, result)
    print(f"wrote {args.out} ({result['seconds']['total']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
