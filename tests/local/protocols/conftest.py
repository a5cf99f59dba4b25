"""A boto3-compatible harness for the protocol codecs, with no network.

``make_client`` builds a real botocore client (its own serializer, signer and parsers); a
``before-send`` hook hands the prepared HTTP request to ``detect_service`` -> ``codec_for``
-> ``parse_request``, calls a fake service handler, and turns the codec's ``RawResponse``
back into the HTTP response botocore parses. ``protocol=`` loads a copy of the service
model whose ``protocols`` list names only that protocol, so the client speaks it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import botocore
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from catkit.local.errors import AwsError
from catkit.local.protocols import RawRequest, RawResponse, codec_for, detect_service

Handler = Callable[[str, dict[str, Any]], dict[str, Any] | None]


class _Body:
    """What botocore expects as ``AWSResponse.raw``: ``stream()`` and ``read()``."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def stream(self, **_: Any):
        yield self.read()

    def read(self, amt: int | None = None) -> bytes:
        end = len(self._data) if amt is None else self._pos + amt
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk


@dataclass
class Exchange:
    """What the hook saw: the raw request, the parsed call and the raw response."""

    raw: RawRequest
    service: str | None
    protocol: str
    operation: str | None = None
    params: dict[str, Any] | None = None
    response: RawResponse | None = None


@dataclass
class Recorder:
    handler: Handler
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def last(self) -> Exchange:
        return self.exchanges[-1]


def raw_from_prepared(request: Any) -> RawRequest:
    parts = urlsplit(request.url)
    body = request.body
    if body is None:
        body = b""
    elif isinstance(body, str):
        body = body.encode()
    elif not isinstance(body, bytes | bytearray):
        body = body.read()
    headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
    query = {k: (v if len(v) > 1 else v[0]) for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return RawRequest(request.method, parts.path, query, headers, bytes(body))


def _serve(recorder: Recorder, request: Any) -> AWSResponse:
    raw = raw_from_prepared(request)
    service = detect_service(raw)
    assert service is not None, f"detect_service found no service for {request.url}"
    codec = codec_for(service, raw)
    exchange = Exchange(raw, service, codec.protocol)
    recorder.exchanges.append(exchange)
    try:
        exchange.operation, exchange.params = codec.parse_request(raw)
        result = recorder.handler(exchange.operation, exchange.params)
        response = codec.serialize_response(exchange.operation, result)
    except AwsError as err:
        response = codec.serialize_error(exchange.operation, err)
    exchange.response = response
    return AWSResponse(request.url, response.status, response.headers, _Body(response.body))


def _model_dir(tmp: Path, service: str, protocol: str) -> Path:
    session = botocore.session.get_session()
    loader = session.get_component("data_loader")
    model = loader.load_service_model(service, "service-2")
    version = model["metadata"]["apiVersion"]
    model = json.loads(json.dumps(model))
    model["metadata"]["protocol"] = protocol
    model["metadata"]["protocols"] = [protocol]
    target = tmp / service / version
    target.mkdir(parents=True, exist_ok=True)
    (target / "service-2.json").write_text(json.dumps(model))
    return tmp


@pytest.fixture(scope="session")
def protocol_data_dirs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    made: dict[tuple[str, str], Path] = {}

    def get(service: str, protocol: str) -> Path:
        key = (service, protocol)
        if key not in made:
            made[key] = _model_dir(tmp_path_factory.mktemp(f"{service}-{protocol}"), service, protocol)
        return made[key]

    return get


@dataclass
class _Slot:
    recorder: Recorder | None = None


@pytest.fixture(scope="session")
def _client_cache(protocol_data_dirs: Callable[[str, str], Path], tmp_path_factory: pytest.TempPathFactory):
    """Clients are costly to build (model loading); build each kind once per test session."""
    home = tmp_path_factory.mktemp("catkit-home")
    cache: dict[tuple[str, str | None, bool], tuple[Any, _Slot]] = {}
    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_CONFIG_FILE", str(home / "none"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "none"))

        def get(service: str, protocol: str | None, validate: bool) -> tuple[Any, _Slot]:
            key = (service, protocol, validate)
            if key not in cache:
                session = botocore.session.Session()
                if protocol is not None:
                    loader = session.get_component("data_loader")
                    loader.search_paths.insert(0, str(protocol_data_dirs(service, protocol)))
                client = session.create_client(
                    service,
                    region_name="us-east-1",
                    endpoint_url="http://127.0.0.1:9",
                    aws_access_key_id="AKIDEXAMPLE",
                    aws_secret_access_key="secret",
                    config=Config(
                        retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=validate
                    ),
                )
                if protocol is not None:
                    assert client.meta.service_model.resolved_protocol == protocol
                slot = _Slot()

                def send(request: Any, _slot: _Slot = slot, **_: Any) -> AWSResponse:
                    assert _slot.recorder is not None
                    return _serve(_slot.recorder, request)

                client.meta.events.register("before-send", send)
                cache[key] = (client, slot)
            return cache[key]

        yield get


@pytest.fixture
def make_client(_client_cache, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """``make_client(service, handler, protocol=None, validate=True) -> (client, recorder)``."""
    monkeypatch.setenv("CATKIT_HOME", str(tmp_path / "home"))

    def make(service: str, handler: Handler, protocol: str | None = None, validate: bool = True):
        client, slot = _client_cache(service, protocol, validate)
        slot.recorder = Recorder(handler)
        return client, slot.recorder

    return make


def strip_metadata(parsed: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in parsed.items() if k != "ResponseMetadata"}

# What the installed botocore actually puts on the wire, where versions differ: before 1.44 its JSON
# and CBOR serializers drop the fraction of epoch timestamps (``_timestamp_unixtimestamp`` in
# botocore/serialize.py of 1.42.7 and 1.43.x; 1.44.0 keeps milliseconds). Tests comparing decoded
# params with what they passed compare with ``as_sent`` of it.
OLD_EPOCH_SECONDS = tuple(int(p) for p in botocore.__version__.split(".")[:2]) < (1, 44)


def _whole_seconds(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(microsecond=0)
    if isinstance(value, dict):
        return {k: _whole_seconds(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_seconds(v) for v in value]
    return value


def as_sent(params: Any, protocol: str) -> Any:
    """``params`` as the installed botocore serializes them in ``protocol``."""
    if OLD_EPOCH_SECONDS and protocol in ("json", "smithy-rpc-v2-cbor"):
        return _whole_seconds(params)
    return params
