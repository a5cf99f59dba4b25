"""Server-side AWS wire protocols for the local gateway, driven by botocore's service models.

``detect_service(raw)`` names the service a request is for; ``codec_for(service, raw)`` picks
the codec (json, rest-json, smithy-rpc-v2-cbor, query); a codec parses requests into
botocore-shaped params (validated against the model, AWS error codes and messages) and
serialises results and :class:`~catkit.local.errors.AwsError` so boto3 parses them as it
would AWS's::

    codec = codec_for(service, raw)
    try:
        operation, params = codec.parse_request(raw)
        response = codec.serialize_response(operation, result, request_id=rid)
    except AwsError as err:
        response = codec.serialize_error(operation, err, request_id=rid)

Streaming outputs (InvokeEndpointWithResponseStream): ``serialize_response`` with
``{"Body": [events...]}`` sends them in one body; a streaming server sends the response with
``"Body": []`` first, then ``codec.encode_event(operation, event)`` per event.

moto's ``core/parse.py``/``serialize.py`` were evaluated and not reused: its parsers coerce
silently (bad JSON becomes ``{"message": body}``, "abc" booleans become False, naive
timestamps), raise non-AWS exceptions on type errors, and have no CBOR; its serializers are
bound to moto's response objects. These codecs share botocore's shape walking instead.
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
