"""The fleet: endpoints, their instance processes, routing, multi-model placement, scaling port.

Services (``catkit.local.services``) call the fleet through :class:`EndpointManager`'s public
API; the fleet never imports a service.
"""
