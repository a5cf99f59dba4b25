"""Pure rules: weighted variant choice, least-outstanding instance choice, names/ARNs, List* paging."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from catkit.local.errors import AwsError
from catkit.local.fleet import router
from catkit.local.validation import arn, check_name, list_page, parse_arn


@dataclass
class V:
    name: str
    current_weight: float


@dataclass
class I:  # noqa: E742
    outstanding: int
    routable: bool = True


def test_choose_variant_follows_weights():
    rng = random.Random(7)
    vs = [V("a", 1.0), V("b", 3.0), V("c", 0.0)]
    picks = [router.choose_variant(vs, rng).name for _ in range(20000)]
    assert picks.count("c") == 0
    assert abs(picks.count("b") / len(picks) - 0.75) < 0.02


@pytest.mark.parametrize("weights", [[0.0, 0.0], [0.0, 0.0, 0.0]])
def test_all_zero_weights_fall_back_to_uniform(weights):
    rng = random.Random(1)
    vs = [V(str(i), w) for i, w in enumerate(weights)]
    assert {router.choose_variant(vs, rng).name for _ in range(300)} == {v.name for v in vs}


def test_choose_variant_edge_cases():
    assert router.choose_variant([]) is None
    only = V("x", 0.0)
    assert router.choose_variant([only]) is only
    assert router.find_variant([V("A", 1), V("B", 1)], "B").name == "B"
    assert router.find_variant([V("A", 1)], "a") is None  # case-sensitive


def test_least_outstanding_skips_unroutable_and_breaks_ties_randomly():
    a, b, c = I(3), I(1), I(0, routable=False)
    assert router.least_outstanding([a, b, c]) is b
    assert router.least_outstanding([c]) is None
    x, y = I(2), I(2)
    rng = random.Random(3)
    assert {id(router.least_outstanding([x, y], rng)) for _ in range(100)} == {id(x), id(y)}


def test_arns_and_names():
    assert arn("endpoint", "My-EP", "us-east-1", "123456789012") == "arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-ep"
    assert parse_arn("arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/Cfg") == ("endpoint-config", "cfg")
    assert parse_arn("arn:aws:sagemaker:us-east-1:123456789012:notebook-instance/x") is None
    assert parse_arn("nonsense") is None
    check_name("a-b-1", "endpointName")
    for bad in ("-a", "a_b", "a" * 64, "", "a--"):
        with pytest.raises(AwsError):
            check_name(bad, "endpointName")


def _items():
    return [
        {"Name": n, "CreationTime": t, "LastModifiedTime": t + 5, "Status": s}
        for n, t, s in [("b", 2, "InService"), ("a", 1, "Failed"), ("c", 3, "InService")]
    ]


KEYS = {"Name": lambda d: d["Name"], "CreationTime": lambda d: d["CreationTime"], "Status": lambda d: d["Status"]}


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, ["c", "b", "a"]),
        ({"SortBy": "Name", "SortOrder": "Ascending"}, ["a", "b", "c"]),
        ({"SortBy": "Status", "SortOrder": "Ascending"}, ["a", "b", "c"]),
        ({"StatusEquals": "InService"}, ["c", "b"]),
        ({"NameContains": "B"}, ["b"]),
        ({"CreationTimeAfter": 1}, ["c", "b"]),
        ({"CreationTimeBefore": 3}, ["b", "a"]),
        ({"LastModifiedTimeAfter": 7}, ["c"]),
    ],
)
def test_list_page_filters_and_sorting(params, expected):
    page, token = list_page(_items(), params, name_key="Name", sort_keys=KEYS, status_key="Status")
    assert [p["Name"] for p in page] == expected and token is None


def test_list_page_pagination_and_bad_token():
    page, token = list_page(_items(), {"MaxResults": 2}, name_key="Name", sort_keys=KEYS)
    assert [p["Name"] for p in page] == ["c", "b"] and token
    page, token2 = list_page(_items(), {"MaxResults": 2, "NextToken": token}, name_key="Name", sort_keys=KEYS)
    assert [p["Name"] for p in page] == ["a"] and token2 is None
    with pytest.raises(AwsError):  # a token from a differently sorted listing is refused
        list_page(_items(), {"MaxResults": 2, "NextToken": token, "SortBy": "Name"}, name_key="Name", sort_keys=KEYS)
