"""The `catkit` command line: a thin dispatcher.

Each area registers its own sub-commands through a ``register(subparsers)`` function in its
own module (listed in ``_COMMAND_MODULES``), so this file never grows with the features and
areas don't edit one shared file. Each registered sub-command sets ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that expose ``register(subparsers: argparse._SubParsersAction) -> None``.
_COMMAND_MODULES = (
    "catkit.serving.cli",  # catkit serve MODEL --port P
    "catkit.local.cli",  # catkit local start|stop|status
    "catkit.examples.cathat.cli",  # catkit cathat train|predict
    "catkit.whatif.cli",  # catkit load ...
    "catkit.bench_cli",  # catkit bench
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="catkit",
        description="Build, deploy, invoke and autoscale SageMaker endpoints - on AWS or locally.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # area not present in this build; skip it
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
