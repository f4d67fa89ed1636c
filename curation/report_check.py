"""Check a report in a real browser: headless Chromium renders it, takes a screenshot, and any
console message (the report's self-check logs empty sections and unsized plots) is a failure.

    python -m curation.report_check report.html [--screenshot report.png] [--height 2400]

Needs the Debian package ``chromium``. Exit status 1 lists the problems; 2 when no Chromium is
installed (one sentence, no traceback).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NO_CHROMIUM = ("make check-report needs Chromium to render the report (Debian: apt install chromium); "
               "none found on PATH (looked for chromium, chromium-browser, google-chrome)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
_CONSOLE = re.compile(r':CONSOLE[^\]]*\] "(.*)", source:')


def chromium_binary() -> str | None:
    """Path of a Chromium executable, if one is installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def check_report(page: Path, screenshot: Path | None = None, timeout: float = 120.0, height: int = 2400) -> list[str]:
    """Problems found rendering ``page`` in headless Chromium (empty list = it passed).

    The screenshot is 1280 pixels wide and ``height`` tall (the top of a longer page).
    """
    binary = chromium_binary()
    if binary is None:
        return [NO_CHROMIUM]
    page = Path(page).resolve()
    problems = []
    with tempfile.TemporaryDirectory(prefix="curation-chromium-") as profile:
        common = [binary, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"]
        dom = subprocess.run([*common, "--virtual-time-budget=2000", "--dump-dom", page.as_uri()],
                             capture_output=True, text=True, timeout=timeout)
        problems += [f"console: {m}" for m in _CONSOLE.findall(dom.stderr)]
        if dom.returncode != 0 or "<section" not in dom.stdout:
            problems.append(f"chromium could not render {page} (exit {dom.returncode})")
        for sid, body in re.findall(r'<section id="([^"]*)"><h2>[^<]*</h2>(.*?)</section>', dom.stdout, re.S):
            if not re.sub(r"<[^>]+>", "", body).strip() and "<svg" not in body:
                problems.append(f"empty section: {sid}")
        shot = Path(screenshot) if screenshot else Path(profile) / "shot.png"
        cap = subprocess.run([*common, f"--window-size=1280,{height}", "--hide-scrollbars",
                              f"--screenshot={shot.resolve()}", page.as_uri()],
                             capture_output=True, text=True, timeout=timeout)
        if cap.returncode != 0 or not shot.is_file() or shot.stat().st_size < 5_000:
            problems.append(f"no usable screenshot (exit {cap.returncode})")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command line: render a report page in headless Chromium, optionally screenshot it; exit code 0 if clean."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("page", type=Path)
    p.add_argument("--screenshot", type=Path, default=None)
    p.add_argument("--height", type=int, default=2400, help="screenshot height in pixels (default 2400)")
    args = p.parse_args(argv)
    if chromium_binary() is None:
        print(NO_CHROMIUM, file=sys.stderr)
        return 2
    if not args.page.is_file():
        print(f"no report at {args.page}: write one first (curation report --out {args.page})", file=sys.stderr)
        return 2
    problems = check_report(args.page, args.screenshot, height=args.height)
    for line in problems:
        print(f"FAIL {line}", file=sys.stderr)
    if not problems:
        print(f"ok: {args.page} renders in headless Chromium with no console errors or empty sections"
              + (f"; screenshot {args.screenshot}" if args.screenshot else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
