"""CloudWatch Logs of the local backend: only what SageMaker clients ask while they deploy.

The local backend keeps each instance's output in a file (``CATKIT_HOME/logs/instances/<endpoint>/
<instance-id>.log``), not in CloudWatch Logs, so no log group exists here. SageMaker Python SDK v3's
``ModelBuilder.deploy`` streams ``/aws/sagemaker/Endpoints/<name>`` with ``FilterLogEvents`` while it
waits (``sagemaker.serve.deployment_progress``) and treats ``ResourceNotFoundException`` as "no log
group yet" - what AWS answers before an endpoint's first container starts. This service answers
exactly that, so such clients carry on; any other Logs operation is an UnknownOperationException.
"""

from __future__ import annotations

from typing import Any

from catkit.local.errors import AwsError
from catkit.local.services.base import BaseService, RequestContext

# AWS's message for a missing log group (CloudWatch Logs API reference, FilterLogEvents errors).
NO_LOG_GROUP = "The specified log group does not exist."


class LogsService(BaseService):
    """``logs``: FilterLogEvents, answered as for a log group that does not exist."""

    service_name = "logs"

    def filter_log_events(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        raise AwsError("ResourceNotFoundException", NO_LOG_GROUP, 400)
