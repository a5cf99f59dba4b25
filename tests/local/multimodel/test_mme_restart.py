"""A multi-model endpoint survives ``catkit local stop``/``start``: it comes back InService with
fresh (empty) instances that load models again on demand from the persisted S3 prefix."""

from __future__ import annotations

import time

import pytest
from mme_helpers import Mme, mid, model_archive

pytestmark = pytest.mark.slow


def test_mme_serves_after_backend_restart(local_backend_factory) -> None:
    backend = local_backend_factory(time_scale=600)
    mme = Mme(backend)
    mme.deploy("mme-restart", cache="Enabled")
    mme.put("mme-restart", "a.tar.gz", model_archive("a", mb=1))
    assert mme.invoke("mme-restart", "a.tar.gz")["model"] == "a"

    backend.restart()
    mme = Mme(backend)  # clients for the (normally same) URL
    deadline = time.monotonic() + 60
    while mme.sm.describe_endpoint(EndpointName="mme-restart")["EndpointStatus"] != "InService":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert mme.invoke("mme-restart", "a.tar.gz")["model"] == "a"
    assert mme.loaded("mme-restart") == [{mid("a.tar.gz")}]
    model = mme.sm.describe_model(ModelName="mme-restart")["PrimaryContainer"]
    assert model["Mode"] == "MultiModel" and model["MultiModelConfig"] == {"ModelCacheSetting": "Enabled"}
