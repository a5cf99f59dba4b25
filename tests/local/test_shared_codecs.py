"""The small codecs the local services share: NextToken values and epoch <-> datetime."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from catkit.local.services.pagination import (
    decode_offset,
    decode_token,
    encode_token,
    offset_page,
    request_fingerprint,
)
from catkit.timeconv import from_epoch, to_epoch, to_epoch_or_none


class BadToken(Exception):
    pass


def test_token_round_trips_any_json_position() -> None:
    for position in (0, 500, [3, 7], "activity-id"):
        fp = request_fingerprint("ListMetrics", {"Namespace": "A"}, position)
        assert decode_token(encode_token(position, fp), fp, BadToken) == position


@pytest.mark.parametrize(
    "token",
    [
        "garbage!",
        "",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(json.dumps({"o": 1}).encode()).decode(),  # no fingerprint
    ],
)
def test_malformed_tokens_raise_the_callers_error(token) -> None:
    with pytest.raises(BadToken):
        decode_token(token, "fp", BadToken)


def test_token_from_another_request_is_refused() -> None:
    token = encode_token(10, request_fingerprint("a"))
    with pytest.raises(BadToken):
        decode_token(token, request_fingerprint("b"), BadToken)


@pytest.mark.parametrize("position", [-1, "3", 2.5, True, None, [1]])
def test_offsets_must_be_non_negative_integers(position) -> None:
    with pytest.raises(BadToken):
        decode_offset(encode_token(position, "fp"), "fp", BadToken)


def test_offset_pages_walk_the_whole_listing() -> None:
    items, seen, token, pages = list(range(7)), [], None, 0
    while True:
        page, token = offset_page(items, token, 3, "fp", BadToken)
        seen.extend(page)
        pages += 1
        if token is None:
            break
    assert seen == items and pages == 3
    assert offset_page(items, None, 7, "fp", BadToken) == (items, None)


def test_fingerprint_is_stable_and_order_insensitive_for_dicts() -> None:
    assert request_fingerprint({"a": 1, "b": 2}) == request_fingerprint({"b": 2, "a": 1})
    assert request_fingerprint(1, 2) != request_fingerprint(2, 1)


def test_epoch_conversions() -> None:
    moment = datetime(2023, 11, 14, 22, 14, tzinfo=UTC)
    assert to_epoch(moment) == 1_700_000_040.0
    assert to_epoch(moment.replace(tzinfo=None)) == 1_700_000_040.0  # naive means UTC
    assert to_epoch(moment.astimezone(timezone(timedelta(hours=2)))) == 1_700_000_040.0
    assert to_epoch(1_700_000_040) == 1_700_000_040.0 and isinstance(to_epoch(1), float)
    assert from_epoch(1_700_000_040.5) == moment + timedelta(milliseconds=500)
    assert from_epoch(0).tzinfo is UTC
    assert to_epoch_or_none(None) is None and to_epoch_or_none(moment) == 1_700_000_040.0
