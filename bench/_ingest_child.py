"""Child process of bench/ingest_throughput.py: ingest one file into a fresh store, report memory.

Usage: python bench/_ingest_child.py INPUT STORE_DIR [DATASET]

Prints one JSON line: the ingest result, seconds of the ``ingest`` call, and this process's
RSS (``VmRSS``/``VmHWM`` from /proc/self/status) after imports and after the ingest.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import proc_status_kb, ru_maxrss_kb  # noqa: E402


def main(argv: list[str]) -> None:
    src, store_dir = Path(argv[0]), Path(argv[1])
    dataset = argv[2] if len(argv) > 2 else "bench"

    import stores
    from stores.ingest import ingest

    after_import = proc_status_kb()
    store = stores.open(store_dir)
    t0 = time.perf_counter()
    res = ingest(store, src, dataset)
    seconds = time.perf_counter() - t0
    after = proc_status_kb()
    out = res.as_dict()
    out.pop("fields", None)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "ingest": out,
                "rss_after_import_kb": after_import.get("VmRSS"),
                "hwm_after_import_kb": after_import.get("VmHWM"),
                "rss_end_kb": after.get("VmRSS"),
                "peak_rss_kb": after.get("VmHWM"),
                "ru_maxrss_self_kb": ru_maxrss_kb(),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
