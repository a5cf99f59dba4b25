"""SageMaker control-plane naming, ARNs, error texts and the List* filter/sort/paginate rules.

Pure helpers shared by the SageMaker service and the endpoint manager, so the wording of errors
(copied from AWS, shared/aws-facts.md §2.4 and §3) lives in one place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from catkit.local.errors import AwsError
from catkit.local.services.pagination import offset_page
from catkit.timeconv import to_epoch_or_none

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
DEFAULT_ACCOUNT = "123456789012"

# Kinds as they appear in ARNs ("arn:aws:sagemaker:REGION:ACCOUNT:<kind>/<name>") and in messages.
ARN_KINDS = {"model": "model", "endpoint-config": "endpoint configuration", "endpoint": "endpoint"}


def arn(kind: str, name: str, region: str, account_id: str) -> str:
    """A SageMaker ARN; AWS lower-cases the resource name in ARNs."""
    return f"arn:aws:sagemaker:{region}:{account_id}:{kind}/{name.lower()}"


def parse_arn(resource_arn: str) -> tuple[str, str] | None:
    """``(kind, lower-cased name)`` of a SageMaker model/endpoint-config/endpoint ARN, else None."""
    m = re.fullmatch(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]*:\d{12}:([a-z-]+)/(.+)", resource_arn or "")
    if not m or m.group(1) not in ARN_KINDS:
        return None
    return m.group(1), m.group(2).lower()


def check_name(value: str, member: str) -> None:
    """Raise AWS's ValidationException if a resource name breaks SageMaker's name pattern."""
    if not NAME_PATTERN.match(value or ""):
        raise AwsError(
            "ValidationException",
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        )


def not_found(kind: str, name: str, region: str, account_id: str) -> AwsError:
    """``Could not find endpoint "arn:..."``. (the control plane's missing-resource error)."""
    return AwsError(
        "ValidationException", f'Could not find {ARN_KINDS[kind]} "{arn(kind, name, region, account_id)}".'
    )


def already_exists(kind: str, name: str, region: str, account_id: str) -> AwsError:
    """``Cannot create already existing endpoint "arn:..."``."""
    return AwsError(
        "ValidationException",
        f'Cannot create already existing {ARN_KINDS[kind]} "{arn(kind, name, region, account_id)}".',
    )


def runtime_endpoint_not_found(name: str, account_id: str) -> AwsError:
    """The runtime's unknown-endpoint error (ValidationError, not ValidationException)."""
    return AwsError("ValidationError", f"Endpoint {name} of account {account_id} not found.")


def invalid_pagination_token() -> AwsError:
    """The SageMaker List* error for a NextToken that is malformed or from another listing."""
    return AwsError(
        "ValidationException", "Invalid pagination token: pass the NextToken from the previous response."
    )


def list_page(
    items: Iterable[Mapping[str, Any]],
    params: Mapping[str, Any],
    *,
    name_key: str,
    sort_keys: Mapping[str, Callable[[Mapping[str, Any]], Any]],
    status_key: str | None = None,
    default_max: int = 10,
) -> tuple[list[Mapping[str, Any]], str | None]:
    """Apply List* filters (NameContains, StatusEquals, Creation/LastModifiedTime Before/After),
    SortBy/SortOrder (AWS default: CreationTime, Descending) and MaxResults/NextToken pagination.

    Returns ``(page, next_token)``; ``next_token`` is None on the last page.
    """
    name_contains = params.get("NameContains")
    status = params.get("StatusEquals")
    bounds = [
        (
            "CreationTime",
            to_epoch_or_none(params.get("CreationTimeAfter")),
            to_epoch_or_none(params.get("CreationTimeBefore")),
        ),
        (
            "LastModifiedTime",
            to_epoch_or_none(params.get("LastModifiedTimeAfter")),
            to_epoch_or_none(params.get("LastModifiedTimeBefore")),
        ),
    ]
    selected = []
    for item in items:
        if name_contains and name_contains.lower() not in item[name_key].lower():
            continue
        if status and status_key and item.get(status_key) != status:
            continue
        ok = True
        for key, after, before in bounds:
            t = item.get(key)
            if t is None:
                continue
            if (after is not None and not t > after) or (before is not None and not t < before):
                ok = False
        if ok:
            selected.append(item)
    sort_by = params.get("SortBy") or "CreationTime"
    if sort_by not in sort_keys:
        raise AwsError(
            "ValidationException", f"Invalid SortBy {sort_by!r}; use one of {', '.join(sort_keys)}."
        )
    descending = (params.get("SortOrder") or "Descending") == "Descending"
    selected.sort(key=lambda it: (sort_keys[sort_by](it), it[name_key]), reverse=descending)
    max_results = int(params.get("MaxResults") or default_max)
    fingerprint = f"{sort_by}:{descending}:{name_contains}:{status}"
    return offset_page(selected, params.get("NextToken"), max_results, fingerprint, invalid_pagination_token)
