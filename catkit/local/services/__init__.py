"""The AWS services the local backend serves itself, one module per service.

Each is a :class:`catkit.local.services.base.BaseService` registered by a component with
``backend.add_service(routing_key, service)``; s3, sts and iam are not here (the gateway serves
them in-process with moto's applications: :mod:`catkit.local.moto_proxy`).
"""
