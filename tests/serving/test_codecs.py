"""Default codecs: what SageMaker's framework containers decode and encode, and Accept resolution."""

from __future__ import annotations

import io

import numpy as np
import pytest

from catkit.serving import codecs
from catkit.serving.errors import BadRequest, UnsupportedAccept, UnsupportedContentType


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, ""), ("", ""), ("application/json", "application/json"),
     ("Application/JSON; charset=utf-8", "application/json"), (" text/csv ;header=present", "text/csv")],
)
def test_media_type_strips_parameters_and_case(header: str | None, expected: str) -> None:
    assert codecs.media_type(header) == expected


def test_json_numeric_list_decodes_to_array_and_dict_stays_python() -> None:
    array = codecs.decode(b"[[1, 2], [3, 4]]", "application/json")
    assert isinstance(array, np.ndarray) and array.shape == (2, 2)
    assert codecs.decode(b'{"a": [1, 2]}', "application/json; charset=utf-8") == {"a": [1, 2]}
    assert codecs.decode(b'[[1], [2, 3]]', "application/json") == [[1], [2, 3]]  # ragged


def test_csv_decodes_to_two_dimensional_rows() -> None:
    np.testing.assert_array_equal(codecs.decode(b"1,2,3", "text/csv"), [[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(codecs.decode(b"1,2\n3,4\n", "text/csv"), [[1, 2], [3, 4]])


def test_npy_round_trip_and_object_arrays_refused() -> None:
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(codecs.decode(codecs.encode(data, "application/x-npy"), "application/x-npy"), data)
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BadRequest, match="object arrays are refused"):
        codecs.decode(buffer.getvalue(), "application/x-npy")


@pytest.mark.parametrize(
    ("body", "content_type"), [(b"{nope", "application/json"), (b"\xff\xfe", "text/csv"), (b"xx", "application/x-npy")]
)
def test_malformed_bodies_are_bad_requests(body: bytes, content_type: str) -> None:
    with pytest.raises(BadRequest):
        codecs.decode(body, content_type)


def test_unsupported_types_raise_415_errors() -> None:
    with pytest.raises(UnsupportedContentType, match="Unsupported content type: image/png"):
        codecs.decode(b"...", "image/png")
    with pytest.raises(UnsupportedAccept, match="image/png"):
        codecs.encode([1], "image/png")


def test_encoders() -> None:
    assert codecs.encode(np.array([[1, 2]]), "application/json") == b"[[1, 2]]"
    assert codecs.encode({"x": np.float64(0.5)}, "application/json") == b'{"x": 0.5}'
    assert codecs.encode(np.array([[1, 2], [3, 4]]), "text/csv") == b"1,2\n3,4\n"
    assert codecs.encode(7, "text/csv") == b"7\n"


@pytest.mark.parametrize(
    ("accept", "content_type", "custom", "expected"),
    [
        (None, "text/csv", False, "text/csv"),  # default: the request's type when encodable
        ("*/*", "application/x-npy", False, "application/x-npy"),
        (None, "image/png", False, "application/json"),  # else application/json
        (None, None, False, "application/json"),
        ("text/csv", "application/json", False, "text/csv"),
        ("image/png", "application/json", False, "image/png"),  # reported later by the encoder
        ("image/png, text/csv;q=0.5", "application/json", False, "text/csv"),
        ("image/png, text/csv;q=0.5", "application/json", True, "image/png"),  # own output_fn
        ("text/csv;q=0.2, application/json", "application/x-npy", False, "application/json"),
        ("image/png;q=0.9, */*;q=0.1", "text/csv", False, "text/csv"),
    ],
)
def test_resolve_accept(accept: str | None, content_type: str | None, custom: bool, expected: str) -> None:
    assert codecs.resolve_accept(accept, content_type, custom_output=custom) == expected
