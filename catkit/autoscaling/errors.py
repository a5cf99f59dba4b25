"""Errors the autoscaling engine raises, carrying Application Auto Scaling's error code.

The local service layer turns :class:`ScalingError` into the wire error (HTTP 400 with the same
code); the simulator shows the message. Codes: ValidationException, ObjectNotFoundException,
LimitExceededException, ConcurrentUpdateException, FailedResourceAccessException.
"""

from __future__ import annotations


class ScalingError(Exception):
    """An AAS API error: ``code`` is AWS's error code, ``message`` says what to fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def validation(message: str) -> ScalingError:
    return ScalingError("ValidationException", message)


def not_found(message: str) -> ScalingError:
    return ScalingError("ObjectNotFoundException", message)
