"""The fleet: endpoints, their instance processes, routing, multi-model placement, scaling port.

From the top down: :mod:`.endpoints` (EndpointManager: the endpoint state machine, the public API
services call), :mod:`.multimodel` (multi-model placement and loading, calling the manager's public
API), :mod:`.invoke` (data plane), :mod:`.sampling` (scheduled metrics), :mod:`.pool` (instance
pools), :mod:`.state` (documents and persistence), :mod:`.instances` (one model-server process),
:mod:`.forward` (the keep-alive HTTP client to instances), :mod:`.router`, :mod:`.model_cache` and
:mod:`.mme_rules` (pure helpers). Services (``catkit.local.services``) call the fleet through
:class:`~catkit.local.fleet.endpoints.EndpointManager`'s public API; none of these modules imports
a service (:mod:`.scaling_port`, the autoscaling wiring, is the exception that remains).
"""
