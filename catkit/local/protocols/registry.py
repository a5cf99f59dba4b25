"""Choosing the codec for a request: by service, and for CloudWatch by the request's shape.

CloudWatch accepts three protocols (botocore >= 1.38 sends RPC v2 CBOR, older versions
awsJson 1.0 or query); a CloudWatch request is CBOR when it uses the ``/service/...`` path
or the ``smithy-protocol`` header, JSON when it names an ``X-Amz-Target``, else query.
Other services use their model's protocol. Codecs are stateless and cached.
"""

from __future__ import annotations

import threading

from catkit.local.protocols.base import Codec
from catkit.local.protocols.cbor_codec import CborCodec
from catkit.local.protocols.json_codec import JsonCodec
from catkit.local.protocols.models import service_model
from catkit.local.protocols.query_codec import QueryCodec
from catkit.local.protocols.raw import RawRequest
from catkit.local.protocols.rest_json_codec import RestJsonCodec

CODEC_CLASSES: dict[str, type[Codec]] = {
    "json": JsonCodec,
    "rest-json": RestJsonCodec,
    "smithy-rpc-v2-cbor": CborCodec,
    "query": QueryCodec,
}

_lock = threading.Lock()
_codecs: dict[tuple[str, str], Codec] = {}
_supported: dict[str, list[str]] = {}


def request_protocol(service_name: str, raw: RawRequest | None, supported: list[str]) -> str:
    """The protocol ``raw`` is written in, among the service's ``supported`` protocols."""
    if raw is not None and len(supported) > 1:
        headers = raw.headers
        if "smithy-rpc-v2-cbor" in supported and (
            raw.path.startswith("/service/") or headers.get("smithy-protocol") == "rpc-v2-cbor"
        ):
            return "smithy-rpc-v2-cbor"
        if "json" in supported and (
            "x-amz-target" in headers or headers.get("content-type", "").startswith("application/x-amz-json")
        ):
            return "json"
        if "query" in supported:
            return "query"
    return supported[0]


def get_codec(service_name: str, protocol: str) -> Codec:
    """The cached codec for ``service_name`` speaking ``protocol``."""
    key = (service_name, protocol)
    codec = _codecs.get(key)
    if codec is not None:
        return codec
    cls = CODEC_CLASSES.get(protocol)
    if cls is None:
        raise ValueError(
            f"catkit has no server-side codec for protocol {protocol!r} (service {service_name!r}); "
            f"supported: {', '.join(CODEC_CLASSES)}. Forward such requests to moto instead."
        )
    with _lock:
        codec = _codecs.get(key)
        if codec is None:
            codec = cls(service_name, service_model(service_name))
            _codecs[key] = codec
    return codec


def codec_for(service_name: str, raw: RawRequest | None = None) -> Codec:
    """The codec for a request to ``service_name`` (see the module docstring for CloudWatch).

    Raises ``botocore.exceptions.UnknownServiceError`` for services botocore does not know
    and ``ValueError`` for protocols catkit does not serve (rest-xml, ec2).
    """
    supported = _supported.get(service_name)
    if supported is None:  # the model's protocols, found once per service (codec_for is on the hot path)
        model = service_model(service_name)
        supported = list(model.metadata.get("protocols") or [model.protocol])
        supported = _supported[service_name] = [p for p in supported if p in CODEC_CLASSES] or supported
    return get_codec(service_name, request_protocol(service_name, raw, supported))
