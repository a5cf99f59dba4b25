"""catkit: build -> deploy -> invoke -> scale -> observe -> cost -> tear down SageMaker endpoints.

Public API only (re-exports). The same helpers run against AWS or the embedded local backend;
only the endpoint URL differs.
"""

from __future__ import annotations

__version__ = "0.1.0"
