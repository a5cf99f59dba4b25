"""CloudWatch Logs on the local backend: FilterLogEvents as for a log group that does not exist
(what SDK v3's ModelBuilder.deploy streams while it waits; ``catkit.local.services.logs``)."""

from __future__ import annotations

import pytest


def test_filter_log_events_answers_no_log_group(local_backend):
    logs = local_backend.client("logs")
    with pytest.raises(logs.exceptions.ResourceNotFoundException) as err:
        logs.filter_log_events(logGroupName="/aws/sagemaker/Endpoints/anything", logStreamNamePrefix="AllTraffic/")
    assert err.value.response["Error"]["Message"] == "The specified log group does not exist."


def test_other_logs_operations_are_unknown(local_backend):
    logs = local_backend.client("logs")
    with pytest.raises(logs.exceptions.ClientError) as err:
        logs.describe_log_groups()
    assert err.value.response["Error"]["Code"] == "UnknownOperationException"
