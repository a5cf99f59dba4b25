"""Support for testing against catkit: model archives, a local backend process, polling.

Public, for catkit's own test suites and benchmarks and for users' test suites alike:

- :mod:`catkit.testing.archives` - model.tar.gz builders (an echo model, a model with a given
  ``inference.py``, multi-model variants) and model directories for the model server;
- :mod:`catkit.testing.backend` - :class:`LocalBackend`, a real ``catkit local`` backend process in
  a temporary ``CATKIT_HOME`` with boto3 clients aimed at it;
- :mod:`catkit.testing.endpoints` - upload a model and deploy it with plain boto3 calls;
- :mod:`catkit.testing.fake_backend` - :class:`FakeBackendBase`, the base of in-process stand-ins
  for the backend that component tests install one component into;
- :mod:`catkit.testing.wait` - :func:`wait_until` / :func:`wait_until_async`: poll a condition with
  a deadline instead of sleeping a fixed time and then asserting.
"""

from __future__ import annotations

from catkit.testing.archives import (
    ECHO_HANDLER,
    ECHO_INFERENCE,
    MULTI_MODEL_INFERENCE,
    echo_archive,
    model_archive,
    multi_model_archive,
    tar_gz,
    write_model_dir,
)
from catkit.testing.backend import BackendFactory, LocalBackend, process_exited, start_local_backend
from catkit.testing.endpoints import create_model, deploy_endpoint, upload_model, wait_for_endpoint
from catkit.testing.fake_backend import FakeBackendBase
from catkit.testing.wait import wait_until, wait_until_async

__all__ = [
    "ECHO_HANDLER",
    "ECHO_INFERENCE",
    "MULTI_MODEL_INFERENCE",
    "BackendFactory",
    "FakeBackendBase",
    "LocalBackend",
    "create_model",
    "deploy_endpoint",
    "echo_archive",
    "model_archive",
    "multi_model_archive",
    "process_exited",
    "start_local_backend",
    "tar_gz",
    "upload_model",
    "wait_for_endpoint",
    "wait_until",
    "wait_until_async",
    "write_model_dir",
]
