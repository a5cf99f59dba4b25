"""AWS-shaped errors raised by the local backend's services.

A service raises :class:`AwsError`; the protocol layer turns it into the wire format of the
service's protocol (JSON ``__type``, rest-json ``x-amzn-ErrorType``, CBOR, or query XML), so
boto3 raises ``ClientError`` with the same ``Code``/``Message``/status AWS would give.
"""

from __future__ import annotations

from typing import Any


class AwsError(Exception):
    """An error with AWS's code, message and HTTP status.

    ``fields`` are extra members of the error shape (e.g. ModelError's ``OriginalStatusCode``,
    ``OriginalMessage``, ``LogStreamArn``); ``headers`` are extra response headers.
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        *,
        fields: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        sender_fault: bool | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})
        self.sender_fault = status < 500 if sender_fault is None else sender_fault

    def __repr__(self) -> str:
        return f"AwsError({self.code!r}, {self.message!r}, status={self.status})"


def validation(message: str, code: str = "ValidationException") -> AwsError:
    """The commonest error: 400 ValidationException with AWS's message text."""
    return AwsError(code, message, 400)
