"""kronfluence's DDP factor fitting (CUDA + NCCL) on the engine benchmark's GPT-2, for a GPU machine.

kronfluence 1.0.1 joins a process group only with CUDA (``kronfluence.utils.state.State``), so
this path cannot run on this project's CPU machines; :mod:`attribution.factor_partitions` is the
CPU path. Run it once per world size, on a machine with N GPUs::

    torchrun --nproc_per_node=1 bench/ddp_factors.py
    torchrun --nproc_per_node=2 bench/ddp_factors.py

Each run trains the engine benchmark's GPT-2 (``bench/engine_throughput.py``: 4 layers, d=256,
char tokenizer, generated arithmetic) on rank 0, shares it through a temp folder, prepares it for
kronfluence, wraps it in ``DistributedDataParallel`` and fits EK-FAC factors on ``--train``
samples with the data's own labels (``use_empirical_fisher``: no label sampling, so world sizes
differ only in the order of sums). Rank 0 records the fit time and a per-factor checksum under
``world_<N>`` of ``bench/results/ddp_factors.json``; with both world sizes present it adds the
largest relative difference of the factors between them. Not run in this project so far: no GPU
was lent to the sessions that wrote it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file, load_model, save_file, save_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import RESULTS_DIR, machine_info, merge_part, now_iso  # noqa: E402
from engine_throughput import ALPHABET, build_model, pairs, train  # noqa: E402

from attribution.data import CompletionDataset, char_tokenizer  # noqa: E402
from attribution.tasks import CausalLMTask, linearize_conv1d  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=int, default=20_000)
    p.add_argument("--train-steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "ddp_factors.json")
    args = p.parse_args()
    if "LOCAL_RANK" not in os.environ or not torch.cuda.is_available():
        raise SystemExit("run under torchrun on a CUDA machine: kronfluence's DDP path needs CUDA and NCCL")
    from kronfluence.analyzer import Analyzer, prepare_model
    from kronfluence.arguments import FactorArguments
    from torch.nn.parallel import DistributedDataParallel

    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl")
    world, rank = dist.get_world_size(), dist.get_rank()
    tok = char_tokenizer(ALPHABET)
    data = CompletionDataset(*pairs(args.train, 1), tok, 24)
    shared = [tempfile.mkdtemp() if rank == 0 else None]
    dist.broadcast_object_list(shared)
    folder = Path(shared[0]) / "model.safetensors"
    if rank == 0:
        model = build_model(tok, args.seed)
        train(model, data, args.train_steps, args.seed)
        linearize_conv1d(model)
        save_model(model, str(folder))
    dist.barrier()
    model = build_model(tok, args.seed)
    linearize_conv1d(model)
    load_model(model, str(folder))
    task = CausalLMTask(model)
    model = prepare_model(model.eval(), task).cuda(local_rank)
    model = DistributedDataParallel(model, device_ids=[local_rank], output_device=local_rank)
    out_dir = Path(shared[0]) / "kronfluence"
    analyzer = Analyzer(analysis_name="ddp", model=model, task=task, output_dir=str(out_dir), disable_tqdm=True)
    dist.barrier()
    t0 = time.perf_counter()
    analyzer.fit_all_factors("ekfac", dataset=data, per_device_batch_size=args.batch_size,
                             factor_args=FactorArguments(strategy="ekfac", use_empirical_fisher=True),
                             overwrite_output_dir=True)
    dist.barrier()
    seconds = time.perf_counter() - t0
    if rank == 0:
        factors = analyzer.load_all_factors("ekfac")
        flat = {f"{kind}/{module}": t.double().cpu() for kind, per in factors.items() for module, t in per.items()}
        save_file({k: v.contiguous() for k, v in flat.items()}, str(args.out.with_name(f"ddp_factors_world{world}.safetensors")))
        part = {"created_at": now_iso(), "machine": machine_info(), "world_size": world, "n_train": args.train,
                "fit_factors_s": seconds, "samples_per_s": args.train / seconds,
                "checksums": {k: float(v.abs().sum()) for k, v in flat.items()}}
        merge_part(args.out, f"world_{world}", part, "ddp_factors")
        others = sorted(args.out.parent.glob("ddp_factors_world*.safetensors"))
        if len(others) >= 2:
            a, b = (load_file(str(f)) for f in others[:2])
            diff = max(float((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-30)) for k in a if k in b)
            merge_part(args.out, "max_relative_factor_difference", {"files": [f.name for f in others[:2]],
                                                                    "value": diff}, "ddp_factors")
        print(f"world {world}: factors on {args.train} samples in {seconds:.1f} s")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
