"""Linear Datamodeling Score (LDS) of the engine's strategies and the baselines.

Protocol (TRAK paper; ../shared/specs/engine.md): train a model on the full training set and
score every training sample against every query with each method. Draw ``--subsets`` random
halves of the training set; retrain on each with ``--seeds`` seeds and record each query's loss
(squared error for Concrete, negative margin for digits), averaged over seeds. A method predicts
a subset's query loss as minus the sum of its scores over the subset's members (positive score =
lowers the loss); LDS is the Spearman correlation between prediction and measurement across
subsets, averaged over queries.

Writes bench/results/lds.json: ``{"concrete": {"ekfac": .., "kfac": .., "diagonal": ..,
"identity": .., "loss": .., "random": ..}, "digits": {...}}`` plus settings and timings.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import RESULTS_DIR, machine_info, now_iso, print_table, write_result  # noqa: E402

import stores  # noqa: E402
from attribution.baselines import per_sample_losses  # noqa: E402
from attribution.engine import EngineConfig, InfluenceEngine, score_matrix  # noqa: E402
from attribution.tasks import ClassifierTask, RegressionTask  # noqa: E402

CONCRETE = Path(__file__).resolve().parents[2] / "shared" / "data" / "uci-concrete" / "concrete.data"
STRATEGIES = ("ekfac", "kfac", "diagonal", "identity")
REFERENCE = {  # kronfluence's defaults, one seed, measured on these machines (engine.md)
    "concrete": {"ekfac": 0.243, "kfac": 0.242, "diagonal": 0.139, "identity": 0.117},
    "digits": {"ekfac": 0.383, "kfac": 0.258, "diagonal": 0.307, "identity": 0.253},
}


def concrete_data(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """UCI Concrete: 927 train / 103 query, features and target standardised on the train split."""
    raw = np.array([[float(v) for v in line.split()] for line in CONCRETE.read_text().splitlines() if line.strip()])
    perm = np.random.default_rng(seed).permutation(len(raw))
    raw = raw[perm]
    x, y = raw[:, :8], raw[:, 8]
    xt, yt, xq, yq = x[:927], y[:927], x[927:], y[927:]
    mx, sx, my, sy = xt.mean(0), xt.std(0), yt.mean(), yt.std()
    f = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return f((xt - mx) / sx), f((yt - my) / sy), f((xq - mx) / sx), f((yq - my) / sy)


def digits_data(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """scikit-learn digits: 1000 train / 300 test, pixels scaled to [0, 1]."""
    x, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(seed).permutation(len(x))
    x, y = torch.tensor(x[perm] / 16.0, dtype=torch.float32), torch.tensor(y[perm])
    return x[:1000], y[:1000], x[1000:1300], y[1000:1300]


def make_model(kind: str) -> nn.Module:
    """The spec's architectures: Concrete 8-128-128-128-1, digits 64-128-64-10 (ReLU MLPs)."""
    if kind == "concrete":
        return nn.Sequential(nn.Linear(8, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                             nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1))
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


TRAINING = {"lr_concrete": 0.03, "lr_digits": 0.1, "weight_decay": 1e-4}


def train_model(kind: str, x: torch.Tensor, y: torch.Tensor, seed: int, epochs: int) -> nn.Module:
    """Mini-batch SGD with momentum and weight decay, deterministic for a seed."""
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
                loss = nn.functional.cross_entropy(out, y[idx])
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


def lds(scores: np.ndarray, masks: np.ndarray, measured: np.ndarray) -> float:
    """Mean over queries of Spearman(-sum of member scores, measured loss) across subsets."""
    predicted = -(masks.astype(np.float64) @ scores.T)  # (subsets, queries)
    rhos = [spearmanr(predicted[:, q], measured[:, q])[0] for q in range(measured.shape[1])]
    return float(np.nanmean(rhos))


def run_dataset(kind: str, args: argparse.Namespace) -> dict:
    xt, yt, xq, yq = concrete_data(args.seed) if kind == "concrete" else digits_data(args.seed)
    epochs = args.epochs_concrete if kind == "concrete" else args.epochs_digits
    t0 = time.perf_counter()
    model = train_model(kind, xt, yt, args.seed, epochs)
    task = RegressionTask() if kind == "concrete" else ClassifierTask()
    train, queries = TensorDataset(xt, yt), TensorDataset(xq, yq)
    ids, qids = [f"{kind}-t{i}" for i in range(len(xt))], [f"{kind}-q{i}" for i in range(len(xq))]
    out: dict = {"n_train": len(xt), "n_queries": len(xq), "epochs": epochs, "methods": {}, "seconds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        store = stores.open(Path(tmp) / "store")
        all_scores: dict[str, np.ndarray] = {}
        for strategy in STRATEGIES:
            s0 = time.perf_counter()
            engine = InfluenceEngine(store, model, task, EngineConfig(strategy=strategy, damping=args.damping,
                                                                      batch_size=128, shard_size=len(xt)))
            run = engine.pairwise_scores("queries", train, ids, queries, qids)
            all_scores[strategy] = score_matrix(store, run.run_id, qids, ids)
            out["seconds"][strategy] = time.perf_counter() - s0
        loss = per_sample_losses(model, task, train)
        all_scores["loss"] = np.tile(-loss, (len(qids), 1))  # high loss predicted to hurt every query
        all_scores["random"] = np.random.default_rng(args.seed).normal(size=(len(qids), len(ids)))
    rng = np.random.default_rng(args.seed + 1)
    masks = np.zeros((args.subsets, len(xt)), dtype=bool)
    measured = np.zeros((args.subsets, len(xq)))
    s0 = time.perf_counter()
    for s in range(args.subsets):
        masks[s, rng.choice(len(xt), size=len(xt) // 2, replace=False)] = True
        idx = torch.from_numpy(np.flatnonzero(masks[s]))
        measured[s] = np.mean([
            query_losses(kind, train_model(kind, xt[idx], yt[idx], 1000 * s + k, epochs), xq, yq)
            for k in range(args.seeds)
        ], axis=0)
    out["seconds"]["retraining"] = time.perf_counter() - s0
    for name, sc in all_scores.items():
        out["methods"][name] = lds(sc, masks, measured)
    out["seconds"]["total"] = time.perf_counter() - t0
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subsets", type=int, default=100)
    p.add_argument("--seeds", type=int, default=3, help="retraining seeds averaged per subset")
    p.add_argument("--damping", type=float, default=None, help="None: kronfluence's heuristic")
    p.add_argument("--epochs-concrete", type=int, default=20)
    p.add_argument("--epochs-digits", type=int, default=80)
    p.add_argument("--lr-concrete", type=float, default=TRAINING["lr_concrete"])
    p.add_argument("--lr-digits", type=float, default=TRAINING["lr_digits"])
    p.add_argument("--weight-decay", type=float, default=TRAINING["weight_decay"])
    p.add_argument("--datasets", default="concrete,digits")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "lds.json")
    args = p.parse_args(argv)
    TRAINING.update(lr_concrete=args.lr_concrete, lr_digits=args.lr_digits, weight_decay=args.weight_decay)
    torch.set_num_threads(2)
    result: dict = {"benchmark": "lds", "created_at": now_iso(), "machine": machine_info(),
                    "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    "reference_kronfluence_defaults": REFERENCE}
    for kind in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        print(f"{kind}: training, scoring, {args.subsets} subsets x {args.seeds} seeds ...", flush=True)
        res = run_dataset(kind, args)
        result[kind] = res["methods"]
        result[f"{kind}_details"] = res
        print_table(
            f"LDS on {kind} ({res['n_train']} train / {res['n_queries']} queries)",
            ["method", "LDS", "reference", "scoring s"],
            [[m, v, REFERENCE[kind].get(m), res["seconds"].get(m)] for m, v in res["methods"].items()],
        )
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
