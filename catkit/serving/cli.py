"""``catkit serve MODEL_DIR_OR_TARBALL --port P [--host 127.0.0.1]``: run the model server in the foreground."""

from __future__ import annotations

import argparse

from catkit.serving.server import add_server_arguments, run


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` sub-command to the ``catkit`` dispatcher."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a model dir or model.tar.gz with SageMaker's container API (/ping, /invocations)",
        description="Serve a model with SageMaker's container HTTP API on a loopback address. "
                    "Stop with Ctrl-C or SIGTERM (in-flight requests finish first).",
    )
    add_server_arguments(parser)
    parser.set_defaults(func=run)
