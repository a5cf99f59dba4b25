"""``catkit bench``: run the benchmarks in ``benchmarks/`` one after another (each prints its ratios)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(args: argparse.Namespace) -> int:
    scripts = sorted(BENCH_DIR.glob("*.py"))
    if args.names:
        scripts = [s for s in scripts if s.stem in set(args.names)]
    if not scripts:
        print(f"no benchmarks found in {BENCH_DIR}", file=sys.stderr)
        return 1
    failed = 0
    for script in scripts:
        print(f"=== {script.stem} ===", flush=True)
        failed += subprocess.call([sys.executable, str(script)]) != 0
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="run the benchmarks (benchmarks/*.py)")
    parser.add_argument("names", nargs="*", help="benchmark names (e.g. serving gateway); default all")
    parser.set_defaults(func=_run)
