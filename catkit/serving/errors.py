"""HTTP-mapped errors of the model server.

Each :class:`ServingError` carries the HTTP status the server answers with; the message is the
response body, so it must say what was wrong and what to do. A subclass names its status in its
class statement (``class ModelNotFound(ServingError, status=404)``).
"""

from __future__ import annotations


class ServingError(Exception):
    """Base class: an error the model server turns into an HTTP response."""

    status: int = 500

    def __init_subclass__(cls, *, status: int | None = None, **kwargs: object) -> None:
        # ``class NotFound(ServingError, status=404)`` sets the HTTP status of the subclass.
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class UnsupportedContentType(ServingError, status=415):
    """The request's Content-Type cannot be decoded (HTTP 415)."""


class UnsupportedAccept(UnsupportedContentType):
    """The requested Accept type cannot be encoded (HTTP 415, like SageMaker's inference toolkit)."""


class PayloadTooLarge(ServingError, status=413):
    """The request body exceeds the real-time payload limit (HTTP 413)."""


class RequestTimeout(ServingError, status=408):
    """The client did not send its request body in time (catkit.serving.http_limits)."""


class BadRequest(ServingError, status=400):
    """Malformed management request (HTTP 400)."""


class ModelNotFound(ServingError, status=404):
    """Multi-model: the named model is not loaded (HTTP 404)."""


class ModelAlreadyLoaded(ServingError, status=409):
    """Multi-model: a model with that name is already loaded (HTTP 409)."""


class InsufficientMemory(ServingError, status=507):
    """Multi-model: loading the model would exceed the memory budget (HTTP 507)."""


class ModelLoadError(ServingError, status=500):
    """The model directory or its handler code could not be loaded (HTTP 500 / 400 on POST /models)."""


class ModelTimeout(ServingError, status=504):
    """The handler did not finish within ``--model-timeout`` seconds (HTTP 504)."""


class HandlerError(ServingError, status=500):
    """The user's handler raised; the body is the exception's type and message (HTTP 500)."""


UNSUPPORTED_PREFIX = "unsupported content type"


def is_unsupported_content_type(exc: BaseException) -> bool:
    """True for errors that mean "415": ours, or a handler ValueError starting "Unsupported content type".

    User handlers (e.g. the cat-hat ``inference.py``) cannot import catkit, so they signal an
    unsupported type with a plain ``ValueError("Unsupported content type: ...")``.
    """
    if isinstance(exc, UnsupportedContentType):
        return True
    return isinstance(exc, ValueError) and str(exc).strip().lower().startswith(UNSUPPORTED_PREFIX)
