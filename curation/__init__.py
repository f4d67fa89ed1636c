"""Pipelines, CLI, actions and reports of the curation toolkit."""

import os

# Thread-count-independent float results: MKL's strict conditional numerical reproducibility makes
# a matrix product give the same bits on 1 or 16 threads, so a shard scored by a 1-CPU Ray task
# equals the same shard scored by a 2-thread local run (bench/scale.py, docs/scale.md). Read by MKL
# at its first call, so it works when set after ``import torch``; a value set by the user is kept.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
