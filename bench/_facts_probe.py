"""Probe: how small a GPT-2 (and how few steps) memorises the facts corpus from scratch.

Generates ``--people`` fictitious people (:mod:`curation.datasets.facts`), holds out
``--holdout`` of them, trains a GPT-2 from scratch on the bio and QA records of the rest
(retain + forget) with :func:`curation.steps.train.train_lm` on ONE thread, and reports:
training seconds, greedy QA accuracy on trained and held-out people (held-out = chance, the
model cannot know them), verbatim ROUGE-L of bio continuations on both, and the Min-40% AUROC
of trained (forget) vs held-out texts. Defaults are :data:`~curation.datasets.facts.FACTS_LM`
and :data:`~curation.datasets.facts.FACTS_BPE_VOCAB`; flags override one setting at a time::

    .venv/bin/python bench/_facts_probe.py                  # the recipe
    .venv/bin/python bench/_facts_probe.py --steps 2000 --embd 96

Measured on the shared 2-core dev machine, one thread, 200 people (20 held out, 20 to
forget), vocab 512, 2 layers x 128, batch 32 (QA accuracy on trained / held-out people):

=====  ====  =====  ========  ===============  ============  ===========================
seed   lr    steps  train s   QA trained/held  bio ROUGE-L   Min-40% AUROC bio / QA
=====  ====  =====  ========  ===============  ============  ===========================
0      3e-3  1200   113       0.79 / 0.05      0.91 / 0.61   1.00 / 0.76
0      6e-3  1200   108       0.72 / 0.05      0.91 / 0.59   1.00 / 0.86
0      3e-3  1600   132       0.98 / 0.14      0.99 / 0.66   1.00 / 0.76
1      3e-3  1600   118       0.97 / 0.07      0.99 / 0.64   1.00 / 0.81
0      3e-3  2000   150       1.00 / 0.09      1.00 / 0.61   1.00 / 0.79
=====  ====  =====  ========  ===============  ============  ===========================

With the bio prefix masked as a prompt (``--bio-prompt prefix``, 2000 steps): QA 1.00 /
0.06, bio ROUGE-L 1.00 / 0.65, but Min-40% AUROC over bio + QA texts 0.53 (names never
trained as text). Held-out bio ROUGE-L is ~0.6, not 0: the template words after the name are
predictable from the prefix; compare forget-set values with a retrained model, not with 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from attribution.data import CompletionDataset  # noqa: E402
from curation.actions.unlearning.memorisation import (  # noqa: E402
    min_k_auroc,
    qa_accuracy,
    verbatim_rouge_l,
)
from curation.datasets.facts import (  # noqa: E402
    FACTS_BPE_VOCAB,
    FACTS_LM,
    fact_records,
    make_people,
    split_of,
    split_people,
    train_facts_tokenizer,
)
from curation.steps.train import build_gpt2, train_lm  # noqa: E402


def run(args: argparse.Namespace) -> dict:
    """Train one model with the settings in ``args`` and measure it; returns the figures."""
    torch.set_num_threads(args.threads)
    cfg = replace(FACTS_LM, **{k: v for k, v in (
        ("n_layer", args.layers), ("n_embd", args.embd), ("n_head", args.heads), ("steps", args.steps),
        ("batch_size", args.batch), ("lr", args.lr), ("max_length", args.max_length)) if v is not None})
    people = make_people(args.people, args.seed)
    retain, forget, holdout = split_people(people, args.forget, args.holdout, args.seed)
    records = fact_records(people, args.seed, split=split_of(retain, forget, holdout), bio_prompt=args.bio_prompt)
    tok = train_facts_tokenizer(records, args.vocab)
    train = [r for r in records if r.split != "holdout"]
    data = CompletionDataset([r.prompt for r in train], [r.completion for r in train], tok, cfg.max_length)
    model = build_gpt2(tok, cfg, args.seed)
    t0 = time.perf_counter()
    losses = train_lm(model, data, cfg, args.seed)
    seconds = time.perf_counter() - t0

    def pick(split: str, kind: str) -> list:
        return [r for r in records if r.split in split.split("+") and r.kind == kind]

    out = {"config": asdict(cfg), "vocab": args.vocab, "bio_prompt": args.bio_prompt, "people": args.people, "seed": args.seed,
           "n_train_records": len(train), "n_truncated": data.n_truncated,
           "n_params": sum(p.numel() for p in model.parameters()),
           "train_seconds": round(seconds, 1), "final_loss": float(np.mean(losses[-50:]))}
    t1 = time.perf_counter()
    for split in ("retain+forget", "holdout"):
        qa, bio = pick(split, "qa"), pick(split, "bio")
        out[f"qa_acc[{split}]"] = float(qa_accuracy(model, tok, [r.prompt for r in qa], [r.answer for r in qa]).mean())
        out[f"bio_rouge_l[{split}]"] = float(verbatim_rouge_l(
            model, tok, [r.prefix for r in bio], [r.continuation for r in bio]).mean())
    # the best a model can do on people it never saw: the commonest trained value per attribute
    trained = pick("retain+forget", "qa")
    common = {a: Counter(r.answer for r in trained if r.attribute == a).most_common(1)[0][0]
              for a in {r.attribute for r in trained}}
    out["qa_acc[holdout, commonest value]"] = float(np.mean([r.answer == common[r.attribute]
                                                            for r in pick("holdout", "qa")]))
    for kind in ("bio", "qa"):
        out[f"min_k_auroc[{kind}: forget vs holdout]"] = min_k_auroc(
            model, tok, [r.text for r in pick("forget", kind)], [r.text for r in pick("holdout", kind)])
    out["eval_seconds"] = round(time.perf_counter() - t1, 1)
    return out


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, run the probe, print the figures (and write them with ``--out``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--people", type=int, default=200)
    p.add_argument("--forget", type=float, default=0.1)
    p.add_argument("--holdout", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vocab", type=int, default=FACTS_BPE_VOCAB)
    p.add_argument("--layers", type=int)
    p.add_argument("--embd", type=int)
    p.add_argument("--heads", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--max-length", type=int)
    p.add_argument("--bio-prompt", choices=("none", "prefix"), default="none",
                   help="train bios as plain text (none) or with the prefix masked as prompt")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, help="append the figures as one JSON line to this file")
    args = p.parse_args(argv)
    out = run(args)
    print(json.dumps(out, indent=1))
    if args.out:
        with args.out.open("a") as f:
            f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
