"""Default request decoders and response encoders, as in SageMaker's framework containers.

Mirrors ``sagemaker-inference-toolkit`` (``decoder.py`` / ``encoder.py``): JSON, CSV and NPY in,
JSON, CSV and NPY out (JSON and CSV bodies may arrive as ``str``, as the toolkit passes them).
Malformed bodies raise :class:`BadRequest` (400). Differences, on purpose: NPY is loaded with ``allow_pickle=False`` (a request
body must never execute code), CSV is always 2-D (one row per record, what ``predict`` expects),
and JSON that is not a regular numeric array stays a plain Python value instead of failing.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from catkit.serving.errors import BadRequest, UnsupportedAccept, UnsupportedContentType

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
ANY = "*/*"


def media_type(header: str | None) -> str:
    """``"Application/JSON; charset=utf-8"`` -> ``"application/json"``; empty for None/blank."""
    if not header:
        return ""
    return header.split(";", 1)[0].strip().lower()


def _decode_json(body: bytes | str) -> Any:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}") from exc
    if isinstance(data, list):
        try:
            array = np.asarray(data)
        except ValueError:  # ragged lists
            return data
        if array.dtype.kind in "biufcU":
            return array
    return data


def _decode_csv(body: bytes | str) -> np.ndarray:
    try:
        text = body if isinstance(body, str) else body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"CSV request body is not UTF-8: {exc}") from exc
    try:
        return np.genfromtxt(io.StringIO(text), delimiter=",", ndmin=2)
    except ValueError as exc:
        raise BadRequest(f"Request body is not valid CSV: {exc}") from exc


def _decode_npy(body: bytes | str) -> np.ndarray:
    if isinstance(body, str):
        raise BadRequest("An application/x-npy body must be bytes, not text.")
    try:
        return np.load(io.BytesIO(body), allow_pickle=False)
    except ValueError as exc:
        raise BadRequest(f"Request body is not a valid .npy array (object arrays are refused): {exc}") from exc
    except (OSError, EOFError) as exc:
        raise BadRequest(f"Request body is not a valid .npy array: {exc}") from exc


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encode_json(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, default=_json_default).encode("utf-8")


def _encode_csv(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    array = np.asarray(value)
    if array.ndim == 0:
        array = array.reshape(1)
    stream = io.StringIO()
    np.savetxt(stream, array, delimiter=",", fmt="%s")
    return stream.getvalue().encode("utf-8")


def _encode_npy(value: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(value), allow_pickle=False)
    return buffer.getvalue()


DECODERS: dict[str, Callable[[bytes | str], Any]] = {JSON: _decode_json, CSV: _decode_csv, NPY: _decode_npy}
ENCODERS: dict[str, Callable[[Any], bytes]] = {JSON: _encode_json, CSV: _encode_csv, NPY: _encode_npy}


def _unsupported(what: str, default_fn: str, verb: str, table: Mapping[str, Any]) -> str:
    """The 415 message: what was asked for, what the default ``input_fn``/``output_fn`` handles."""
    return (
        f"{what}. The default {default_fn} {verb} {', '.join(table)}; define {default_fn} in "
        "code/inference.py for other types."
    )


def decode(body: bytes | str, content_type: str) -> Any:
    """Decode a request body by media type; :class:`UnsupportedContentType` if there is no decoder."""
    decoder = DECODERS.get(media_type(content_type))
    if decoder is None:
        what = f"Unsupported content type: {content_type or '(none)'}"
        raise UnsupportedContentType(_unsupported(what, "input_fn", "accepts", DECODERS))
    return decoder(body)


def encode(value: Any, accept: str) -> bytes:
    """Encode a prediction for ``accept``; :class:`UnsupportedAccept` if there is no encoder."""
    encoder = ENCODERS.get(media_type(accept))
    if encoder is None:
        what = f"Unsupported content type for Accept: {accept}"
        raise UnsupportedAccept(_unsupported(what, "output_fn", "produces", ENCODERS))
    return encoder(value)


def resolve_accept(accept: str | None, content_type: str | None, *, custom_output: bool = False,
                   default: str | None = None) -> str:
    """The response type to produce for an ``Accept`` header.

    Missing or ``*/*`` -> the request's content type when the default encoders handle it, else
    ``application/json`` (SageMaker's default accept). A list (``"text/csv, application/json;q=0.5"``)
    -> the best-ranked entry (quality, then order) that can be produced: any entry when the handler
    has its own ``output_fn`` (``custom_output``), else one the default encoders handle; if none can,
    the best-ranked entry is returned unchanged so the encoder reports it. ``default`` (from
    ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``) replaces the missing-Accept rule when given.
    """
    if default:
        fallback = default
    else:
        fallback = media_type(content_type)
        fallback = fallback if fallback in ENCODERS else JSON
    if not accept or accept.strip() in ("", ANY):
        return fallback
    if "," not in accept:
        value = media_type(accept)
        return fallback if value in ("", ANY) else value
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        value = media_type(part)
        if not value:
            continue
        quality = 1.0
        for param in part.split(";")[1:]:
            key, _, raw = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(raw)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, index, value))
    ranked.sort()
    for _, _, value in ranked:
        if value == ANY:
            return fallback
        if custom_output or value in ENCODERS:
            return value
    return ranked[0][2] if ranked else fallback
