"""The plugin's fixtures for the sample test file: in an installed catkit the ``pytest11`` entry
point provides them; importing them here makes the sample run from a source checkout as well."""

from catkit.testing.pytest_plugin import (  # noqa: F401
    catkit_backend,
    catkit_clients,
    catkit_local,
    catkit_sagemaker_session,
)
