"""Loading a model's handler code and running one invocation through it.

The SageMaker framework-container contract (``sagemaker-inference-toolkit``): a model directory
holds the model files at its root and, optionally, ``code/inference.py`` defining any of
``model_fn(model_dir)``, ``input_fn(body, content_type)``, ``predict_fn(data, model)``,
``output_fn(prediction, accept)`` or ``transform_fn(model, body, content_type, accept)``, plus
``pre_model_fn(model_dir)`` and ``model_warmup_fn(model_dir, model)``. Missing functions fall back
to defaults: JSON/CSV/NPY codecs (:mod:`catkit.serving.codecs`), ``model.predict`` or
``model(data)``, and ``model.joblib`` for ``model_fn``. As in the toolkit, a body whose Content-Type
is exactly ``application/json`` or ``text/csv`` reaches ``input_fn``/``transform_fn`` as ``str``
(other types as ``bytes``), and a function may take one extra trailing parameter, ``context``: an
:class:`InvocationContext` (or a :class:`ModelContext` for ``model_fn``) to read the request's
custom attributes and set the response's.

Code is only ever imported from ``<model dir>/code/inference.py`` (by file path, never by module
search), with ``code/`` on ``sys.path`` while it imports so sibling modules resolve. Symlinks that
leave the model directory are refused.

With a :class:`catkit.serving.frameworks.Profile` (an emulated AWS container, chosen from the
image URI), the script is the one the container imports (``SAGEMAKER_PROGRAM`` in ``code/`` or in
the code directory the fleet unpacked from ``SAGEMAKER_SUBMIT_DIRECTORY``), the defaults are that
container's, and Content-Type, Accept and errors follow its toolkit (:mod:`.frameworks`). Without a
profile (``catkit serve``) the catkit defaults above apply.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import itertools
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from catkit.serving import codecs
from catkit.serving.containers import module_file
from catkit.serving.errors import BadRequest, HandlerError, ModelLoadError, ServingError
from catkit.serving.toolkit_codecs import UTF8_TYPES as _TOOLKIT_UTF8

log = logging.getLogger("catkit.serving.handler")

HANDLER_FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn",
                     "pre_model_fn", "model_warmup_fn")
_BASE_ARITY = {"input_fn": 2, "predict_fn": 2, "output_fn": 2, "transform_fn": 4}
UTF8_TYPES = ("application/json", "text/csv")  # decoded to str before input_fn (toolkit behaviour)
_IMPORT_LOCK = threading.Lock()
_module_ids = itertools.count(1)


@dataclass
class InvocationContext:
    """What a handler function taking a trailing ``context`` parameter receives.

    ``custom_attributes`` is the request's ``X-Amzn-SageMaker-Custom-Attributes``; set
    ``response_custom_attributes`` to send that header back to the caller.
    """

    content_type: str
    accept: str
    custom_attributes: str | None = None
    target_model: str | None = None
    model_name: str | None = None
    response_custom_attributes: str | None = None
    inference_id: str | None = None


@dataclass
class ModelContext:
    """What ``model_fn(model_dir, context)`` receives (the toolkit passes its server context)."""

    model_dir: str
    model_name: str | None = None

    @property
    def system_properties(self) -> dict[str, Any]:
        return {"model_dir": self.model_dir}


@dataclass(frozen=True)
class InvocationResult:
    body: bytes
    content_type: str
    custom_attributes: str | None = None


def _takes_context(func: Callable[..., Any], base: int) -> bool:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) > base


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def dir_size_bytes(root: Path) -> int:
    """Total size of regular files under ``root`` (symlinks not followed)."""
    total = 0
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            continue
    return total


@contextlib.contextmanager
def _code_on_path(code_dir: Path | None, keep_on_path: bool) -> Iterator[None]:
    """Put ``code_dir`` first on ``sys.path`` while a model imports and loads (model_fn may unpickle
    classes defined in sibling modules). Unless ``keep_on_path``, remove it afterwards and forget the
    sibling modules so another model's same-named modules load fresh; loaded objects keep theirs."""
    if code_dir is None:
        yield
        return
    code_path = str(code_dir)
    with _IMPORT_LOCK:
        before = set(sys.modules)
        sys.path.insert(0, code_path)
        ok = False
        try:
            yield
            ok = True
        finally:
            if not (ok and keep_on_path):
                _forget_siblings(before, code_dir)
                with contextlib.suppress(ValueError):
                    sys.path.remove(code_path)


def _import_inference(script: Path) -> ModuleType:
    module_name = f"catkit_model_code_{next(_module_ids)}"
    spec = importlib.util.spec_from_file_location(module_name, script)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"Cannot import {script}: not a Python source file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise ModelLoadError(f"{script} raised {type(exc).__name__} while importing.") from exc
        raise ModelLoadError(f"Importing {script} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _forget_siblings(before: set[str], code_dir: Path) -> None:
    for name in set(sys.modules) - before:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file and _inside(Path(file).resolve(), code_dir):
            sys.modules.pop(name, None)


def default_model_fn(model_dir: str) -> Any:
    """Load ``model.joblib`` from the model directory (what the scikit-learn container does)."""
    path = Path(model_dir) / "model.joblib"
    if not path.is_file():
        raise ModelLoadError(
            f"No model_fn in {model_dir}/code/inference.py and no model.joblib in {model_dir}: "
            "define model_fn(model_dir) or save the model as model.joblib at the archive root."
        )
    root = Path(model_dir).resolve()
    if not _inside(path.resolve(), root):
        raise ModelLoadError(
            f"{path} resolves to {path.resolve()}, outside the model directory; unpickling runs code, "
            "so model.joblib must live inside the model archive."
        )
    import joblib  # only needed by models that use the default loader

    return joblib.load(path)


def default_predict_fn(data: Any, model: Any) -> Any:
    """``model.predict(data)``, else ``model(data)``."""
    predict = getattr(model, "predict", None)
    if callable(predict):
        return predict(data)
    if callable(model):
        return model(data)
    raise HandlerError(
        f"The model ({type(model).__name__}) has no predict method and is not callable: "
        "define predict_fn(data, model) in code/inference.py."
    )


def _handler_functions(module: ModuleType | None, script: Path) -> dict[str, Callable[..., Any] | None]:
    functions: dict[str, Callable[..., Any] | None] = {}
    for name in HANDLER_FUNCTIONS:
        func = getattr(module, name, None) if module is not None else None
        if func is not None and not callable(func):
            raise ModelLoadError(f"{name} in {script} is not callable.")
        functions[name] = func
    if functions["transform_fn"] and any(functions[n] for n in ("input_fn", "predict_fn", "output_fn")):
        raise ModelLoadError(
            f"{script} defines transform_fn together with input_fn/predict_fn/output_fn: "
            "use either transform_fn alone or the other three (as in SageMaker's toolkit)."
        )
    return functions


def _load_model(root: Path, functions: dict[str, Callable[..., Any] | None], model_name: str | None,
                default: Callable[..., Any] = default_model_fn) -> Any:
    """pre_model_fn, model_fn (or the default: model.joblib, or the profile's), model_warmup_fn."""
    model_fn = functions["model_fn"] or default
    step = "pre_model_fn"
    try:
        pre = functions["pre_model_fn"]
        if pre is not None:
            pre(str(root))
        step = "model_fn"
        if _takes_context(model_fn, 1):
            model = model_fn(str(root), ModelContext(str(root), model_name))
        else:
            model = model_fn(str(root))
        step = "model_warmup_fn"
        warmup = functions["model_warmup_fn"]
        if warmup is not None:
            warmup(str(root), model)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"{step}({root}) failed: {type(exc).__name__}: {exc}") from exc
    return model


class ModelHandler:
    """One loaded model plus its handler functions; :meth:`invoke` is thread-safe if the user code is."""

    def __init__(self, model_dir: Path, model: Any, functions: dict[str, Callable[..., Any] | None],
                 module: ModuleType | None, profile: Any = None) -> None:
        self.model_dir = model_dir
        self.model = model
        self.module = module
        self.profile = profile
        self._user = {name for name, func in functions.items() if func is not None}
        if profile is not None:
            for name, func in profile.defaults().items():
                if functions.get(name) is None:
                    functions = {**functions, name: func}
        self._functions = functions
        if profile is not None and hasattr(profile, "bind"):
            profile.bind(module)
        self._transform = functions.get("transform_fn")
        self._input = functions.get("input_fn")
        self._predict = functions.get("predict_fn")
        self._output = functions.get("output_fn")
        self._default_accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or None
        self._context = {
            name: _takes_context(func, _BASE_ARITY[name])
            for name, func in functions.items()
            if func is not None and name in _BASE_ARITY
        }

    @classmethod
    def load(cls, model_dir: str | Path, *, keep_code_on_path: bool = True,
             model_name: str | None = None, profile: Any = None,
             code_dir: str | Path | None = None) -> ModelHandler:
        """Import the handler script (if any) and run ``model_fn``.

        Without ``profile``: ``code/inference.py`` of ``model_dir`` and catkit's defaults. With a
        :class:`~catkit.serving.frameworks.Profile`: the script that container imports, from
        ``code_dir`` (default ``model_dir/code``; the fleet passes the directory it unpacked a
        ``SAGEMAKER_SUBMIT_DIRECTORY`` sourcedir.tar.gz into), and the container's defaults.
        ``keep_code_on_path`` leaves the code directory on ``sys.path`` after loading (single-model
        servers, as in SageMaker); multi-model servers pass False so models don't see each other's
        modules. Raises :class:`ModelLoadError` naming what is wrong.
        """
        try:
            root = Path(model_dir).resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise ModelLoadError(f"Model directory {model_dir} does not exist.") from exc
        if not root.is_dir():
            raise ModelLoadError(f"Model path {model_dir} is not a directory (expected an unpacked model).")
        code = Path(code_dir).resolve() if code_dir is not None else root / "code"
        fence = code if code_dir is not None else root  # where the code must stay
        program = "inference.py"
        if profile is not None:
            program = profile.program
            if program is None and profile.family == "containers":
                raise ModelLoadError(profile.missing_program())
        script = code / module_file(program) if program else None
        real_code: Path | None = None
        real_script: Path | None = None
        if script is not None and (script.exists() or script.is_symlink()):
            real_code = code.resolve()
            real_script = script.resolve()
            if not (_inside(real_code, fence) and _inside(real_script, fence)):
                raise ModelLoadError(
                    f"{script} resolves to {real_script}, outside the model directory {fence}; "
                    "handler code must live inside the model archive."
                )
            if not real_script.is_file():
                raise ModelLoadError(f"{script} is not a regular file.")
        elif script is not None and profile is not None:
            reason = profile.script_missing(program)
            if reason:
                raise ModelLoadError(f"{reason} (looked for {script})")
        with _code_on_path(real_code, keep_code_on_path):
            module = _import_inference(real_script) if real_script is not None else None
            functions = _handler_functions(module, script or code / "inference.py")
            if profile is not None and hasattr(profile, "script_functions"):
                functions = profile.script_functions(functions)  # TFS: the container calls none of them
            default = profile.defaults()["model_fn"] if profile is not None else default_model_fn
            model = _load_model(root, functions, model_name, default)
        where = str(script.relative_to(code.parent)) if module and script else "defaults"
        log.info("loaded model from %s (handler: %s%s)", root, where,
                 f", container {profile.kind.name}" if profile is not None else "")
        return cls(root, model, functions, module, profile)

    def invoke(self, body: bytes, content_type: str | None, accept: str | None,
               custom_attributes: str | None = None, *, target_model: str | None = None,
               model_name: str | None = None, inference_id: str | None = None) -> InvocationResult:
        """Run one request through transform_fn or input_fn -> predict_fn -> output_fn."""
        if self.profile is not None:
            return self._invoke_profile(body, content_type, accept, InvocationContext(
                content_type or "", accept or "", custom_attributes, target_model, model_name,
                inference_id=inference_id))
        content_type = content_type or ""
        accept = codecs.resolve_accept(
            accept, content_type, custom_output=self._output is not None or self._transform is not None,
            default=self._default_accept,
        )
        data_in = _as_text(body, content_type, UTF8_TYPES)
        ctx = InvocationContext(content_type, accept, custom_attributes, target_model, model_name,
                                inference_id=inference_id)
        flags = self._context
        if self._transform is not None:
            args = (self.model, data_in, content_type, accept)
            result = self._transform(*args, ctx) if flags["transform_fn"] else self._transform(*args)
        else:
            if self._input is None:
                data = codecs.decode(data_in, content_type)
            else:
                data = (self._input(data_in, content_type, ctx) if flags["input_fn"]
                        else self._input(data_in, content_type))
            if self._predict is None:
                prediction = default_predict_fn(data, self.model)
            else:
                prediction = (self._predict(data, self.model, ctx) if flags["predict_fn"]
                              else self._predict(data, self.model))
            if self._output is None:
                result = codecs.encode(prediction, accept)
            else:
                result = (self._output(prediction, accept, ctx) if flags["output_fn"]
                          else self._output(prediction, accept))
        response_type = accept
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str) and "/" in result[1]:
            result, response_type = result
        return InvocationResult(_as_bytes(result, response_type), response_type, ctx.response_custom_attributes)


    def _call(self, name: str, *args: Any, ctx: InvocationContext) -> Any:
        func = self._functions[name]
        return func(*args, ctx) if self._context.get(name) else func(*args)

    def _invoke_profile(self, body: bytes, content_type: str | None, accept: str | None,
                        ctx: InvocationContext) -> InvocationResult:
        """One request as the profile's container runs it (see :mod:`catkit.serving.frameworks`)."""
        profile = self.profile
        transform = getattr(profile, "transform", None)
        if transform is not None and "transform_fn" not in self._user and "input_fn" not in self._user:
            result, response_type = transform(self.model, body, content_type, accept, ctx.custom_attributes)
            return InvocationResult(_as_bytes(result, response_type), response_type, None)
        ct = profile.content_type(content_type)
        acc = profile.accept(accept)
        ctx.content_type, ctx.accept = ct or "", acc
        data_in = _as_text(body, ct, _TOOLKIT_UTF8)
        user = self._user
        try:
            if "transform_fn" in user:
                result = self._call("transform_fn", self.model, data_in, ct, acc, ctx=ctx)
            else:
                data = self._call("input_fn", data_in, ct, ctx=ctx)
                prediction = self._call("predict_fn", data, self.model, ctx=ctx)
                result = self._call("output_fn", prediction, acc, ctx=ctx)
        except ServingError:
            raise
        except Exception as exc:
            raise profile.failure(exc, default_input="input_fn" not in user,
                                  default_output="output_fn" not in user) from exc
        response_type = acc
        if isinstance(result, tuple) and len(result) == 2:
            result, response_type = result
        return InvocationResult(_as_bytes(result, str(response_type)), str(response_type),
                                ctx.response_custom_attributes)


def _as_text(body: bytes, content_type: str | None, utf8_types: tuple[str, ...]) -> bytes | str:
    """The body as the toolkits hand it to input_fn: ``str`` for the UTF-8 types, else bytes."""
    if content_type not in utf8_types:
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"The {content_type} request body is not valid UTF-8: {exc}") from exc


def _as_bytes(value: Any, content_type: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if codecs.media_type(content_type) in codecs.ENCODERS:
        return codecs.encode(value, content_type)
    raise HandlerError(
        f"The handler returned {type(value).__name__} for {content_type}; output_fn/transform_fn "
        "must return bytes or str (or a (body, content_type) tuple)."
    )
