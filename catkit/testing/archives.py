"""Model archives and model directories for tests and benchmarks.

Owns the small models the test suites and ``benchmarks/`` deploy, and the one tar writer behind
them, so no suite carries its own ``code/inference.py`` tarball builder:

- :func:`tar_gz` - a deterministic ``.tar.gz`` of in-memory files (the writer every builder uses);
- :func:`model_archive` - a model.tar.gz with a given ``code/inference.py`` source and extra files;
- :func:`echo_archive` - the echo model (:data:`ECHO_INFERENCE`): echoes the body unless the
  request's Content-Type asks for a behaviour (sleep, hang, fail, pid, env, leak memory);
- :func:`multi_model_archive` - one model of a multi-model endpoint (:data:`MULTI_MODEL_INFERENCE`):
  answers with its name and version, holds ``mb`` MiB, can fail or load slowly;
- :func:`write_model_dir` - the same layout unpacked in a directory, for the model server itself;
  :data:`ECHO_HANDLER` is an echo written with ``input_fn``/``predict_fn``/``output_fn``.

Everything here is plain Python (no pytest), so benchmarks and users' own tests can import it.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import textwrap
from collections.abc import Mapping
from pathlib import Path

FileData = bytes | str

#: ``code/inference.py`` of the echo model. The request's Content-Type picks a behaviour:
#:
#: - ``application/x-sleep`` / ``application/x-slow``: sleep ``float(body)`` s, then echo (text/plain);
#: - ``application/x-hang``: sleep an hour (a wedged handler);
#: - ``application/x-fail``: raise ``RuntimeError("boom: <body>")`` (a 500 from the container);
#: - ``application/x-unsupported``: raise ``ValueError("Unsupported content type ...")`` (a 415);
#: - ``application/x-pid``: answer the serving process's pid;
#: - ``application/x-env``: answer the value of the environment variable named by the body;
#: - ``application/x-leak``: keep ``float(body)`` MiB resident, answer how many blocks are held;
#: - anything else: echo the body with the Accept (or Content-Type) as the answer's type.
#:
#: A file named ``hang`` in the model directory makes ``model_fn`` hang (a model that never loads).
ECHO_INFERENCE = '''
import os
import time

_HOARD = []


def model_fn(model_dir):
    if os.path.exists(os.path.join(model_dir, "hang")):
        time.sleep(3600)
    return {"dir": model_dir}


def transform_fn(model, body, content_type, accept):
    if content_type in ("application/x-sleep", "application/x-slow"):
        time.sleep(float(body))
        return body, "text/plain"
    if content_type == "application/x-hang":
        time.sleep(3600)
        return b"", "text/plain"
    if content_type == "application/x-fail":
        raise RuntimeError("boom: " + body.decode("utf-8", "replace"))
    if content_type == "application/x-unsupported":
        raise ValueError("Unsupported content type application/x-unsupported")
    if content_type == "application/x-pid":
        return str(os.getpid()).encode(), "text/plain"
    if content_type == "application/x-env":
        return os.environ.get(body.decode(), "").encode(), "text/plain"
    if content_type == "application/x-leak":
        block = bytearray(int(float(body) * 1024 * 1024))
        for i in range(0, len(block), 4096):
            block[i] = 1  # touch every page so it counts in RSS
        _HOARD.append(block)
        return str(len(_HOARD)).encode(), "text/plain"
    return body, accept or content_type or "application/octet-stream"
'''

#: An echo written with the three-function handler contract (``input_fn`` -> ``predict_fn`` ->
#: ``output_fn``), answering ``application/octet-stream``; for the model server's own tests.
ECHO_HANDLER = '''
def model_fn(model_dir):
    return "echo-model"


def input_fn(body, content_type):
    return body


def predict_fn(data, model):
    return data


def output_fn(prediction, accept):
    return prediction, "application/octet-stream"
'''

#: ``code/inference.py`` of a multi-model endpoint's model: reads ``info.json`` (name, mb, version,
#: fail, load_sleep), holds ``mb`` MiB resident, and answers ``{"model": name, "version": v}``
#: (after sleeping ``{"sleep": s}`` of the JSON request, if given).
MULTI_MODEL_INFERENCE = '''
import json
import os
import time


def model_fn(model_dir):
    with open(os.path.join(model_dir, "info.json")) as f:
        info = json.load(f)
    if info.get("load_sleep"):
        time.sleep(info["load_sleep"])
    if info.get("fail"):
        raise RuntimeError("broken model " + info["name"])
    ballast = bytearray(b"\\x01") * (info.get("mb", 0) * 1024 * 1024)  # resident memory
    return {"name": info["name"], "version": info.get("version", 1), "ballast": ballast}


def transform_fn(model, body, content_type, accept):
    req = json.loads(body or b"{}")
    if req.get("sleep"):
        time.sleep(req["sleep"])
    return json.dumps({"model": model["name"], "version": model["version"]}), "application/json"
'''


def _bytes(data: FileData) -> bytes:
    return data.encode() if isinstance(data, str) else data


def tar_gz(files: Mapping[str, FileData]) -> bytes:
    """A gzip'd tar of regular files (archive name -> bytes or text), mode 0644, in name order.

    Deterministic: the same files give the same bytes (tar and gzip timestamps are 0).
    """
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in sorted(files.items()):
            payload = _bytes(data)
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(payload))
    return gzip.compress(raw.getvalue(), mtime=0)


def model_archive(inference: FileData | None, files: Mapping[str, FileData] | None = None) -> bytes:
    """A model.tar.gz: ``code/inference.py`` holding ``inference`` (dedented; left out when None)
    and ``files`` (name -> bytes or text) at their paths."""
    members: dict[str, FileData] = {}
    if inference is not None:
        source = textwrap.dedent(inference) if isinstance(inference, str) else inference
        members["code/inference.py"] = source
    members.update(files or {})
    return tar_gz(members)


def echo_archive(extra: Mapping[str, FileData] | None = None) -> bytes:
    """The echo model (:data:`ECHO_INFERENCE`) with a 16-byte ``weights.bin``, plus ``extra`` files
    (e.g. ``{"hang": b"1"}`` for a model that never loads, or large weights)."""
    return model_archive(ECHO_INFERENCE, {"weights.bin": b"\x00" * 16, **(extra or {})})


def multi_model_archive(
    name: str,
    *,
    mb: int = 8,
    version: int = 1,
    fail: bool = False,
    load_sleep: float = 0,
    blob_kb: int = 0,
    extra: Mapping[str, FileData] | None = None,
) -> bytes:
    """One model of a multi-model endpoint (:data:`MULTI_MODEL_INFERENCE`): holds ``mb`` MiB once
    loaded and answers ``{"model": name, "version": version}``; ``fail`` makes its load raise,
    ``load_sleep`` makes it load slowly, ``blob_kb`` adds that much incompressible data (disk)."""
    info = {"name": name, "mb": mb, "version": version, "fail": fail, "load_sleep": load_sleep}
    files: dict[str, FileData] = {"info.json": json.dumps(info)}
    if blob_kb:
        files["blob.bin"] = os.urandom(blob_kb * 1024)  # incompressible: takes real disk
    files.update(extra or {})
    return model_archive(MULTI_MODEL_INFERENCE, files)


def write_model_dir(
    model_dir: str | os.PathLike[str],
    inference: FileData | None = None,
    files: Mapping[str, FileData] | None = None,
) -> Path:
    """Write a model directory (what a model.tar.gz unpacks to): ``code/inference.py`` holding
    ``inference`` (dedented; none when None) and ``files`` (relative path -> bytes or text,
    text dedented). Returns the directory."""
    root = Path(model_dir)
    root.mkdir(parents=True, exist_ok=True)
    members: dict[str, FileData] = {}
    if inference is not None:
        members["code/inference.py"] = inference
    members.update(files or {})
    for rel, data in members.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(textwrap.dedent(data))
        else:
            path.write_bytes(data)
    return root
