"""Server-side AWS wire protocols for the local gateway, driven by botocore's service models.

``detect_service(raw)`` names the service a request is for; ``codec_for(service, raw)`` picks
the codec (json, rest-json, smithy-rpc-v2-cbor, query); a codec parses requests into
botocore-shaped params (validated against the model, AWS error codes and messages) and
serialises results and :class:`~catkit.local.errors.AwsError` so boto3 parses them as it
would AWS's.
"""

from __future__ import annotations

from catkit.local.protocols.base import Codec, new_request_id
from catkit.local.protocols.detect import detect_service
from catkit.local.protocols.raw import Headers, RawRequest, RawResponse
from catkit.local.protocols.registry import codec_for, get_codec

__all__ = [
    "Codec",
    "Headers",
    "RawRequest",
    "RawResponse",
    "codec_for",
    "detect_service",
    "get_codec",
    "new_request_id",
]
