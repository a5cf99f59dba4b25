"""Every SageMaker hosting instance type is accepted, from one table, and emulated scaled down to
this machine; unknown types get AWS's enum ValidationException."""

from __future__ import annotations

import logging
import math

import pytest
from botocore.exceptions import ClientError

from catkit import cost
from catkit.instance_types import INSTANCE_TYPES, get_instance_type, hosting_instance_types
from catkit.local.fleet import hardware
from catkit.testing.endpoints import deploy_endpoint, upload_model


def test_the_table_has_exactly_the_hosting_types_aws_lists():
    assert set(hosting_instance_types()) <= set(INSTANCE_TYPES)  # older botocore lists fewer
    assert len(INSTANCE_TYPES) >= 277
    for itype in INSTANCE_TYPES.values():
        assert itype.vcpu >= 1 and itype.memory_gib >= 1, itype
    m4, g5, c4 = (get_instance_type(n) for n in ("ml.m4.xlarge", "ml.g5.xlarge", "ml.c4.xlarge"))
    assert (m4.vcpu, m4.memory_gib, m4.gpus) == (4, 16, 0)
    assert (g5.vcpu, g5.memory_gib, g5.gpus, g5.accelerator) == (4, 16, 1, "NVIDIA A10G")
    assert (c4.vcpu, c4.memory_gib) == (4, 7.5)
    assert g5.has_price and not math.isnan(g5.price_per_hour)
    with pytest.raises(KeyError, match=r"unknown instance type 'ml\.banana\.large'"):
        get_instance_type("ml.banana.large")


def test_a_type_without_a_bundled_price_costs_nan_instead_of_failing():
    quote = cost.price_per_hour(None, "ml.c4.xlarge")
    assert math.isnan(quote.usd_per_hour) and "no bundled price" in quote.note
    assert cost.price_per_hour(None, "ml.m5.xlarge").usd_per_hour == 0.23


def test_budgets_are_scaled_down_to_the_machine_and_logged_once(caplog, monkeypatch):
    monkeypatch.setattr(hardware, "_reported", set())
    here = hardware.machine()
    with caplog.at_level(logging.INFO, logger="catkit.local.fleet.hardware"):
        big = hardware.emulated("ml.p4d.24xlarge")
        hardware.emulated("ml.p4d.24xlarge")
    assert big.scaled and big.vcpu == min(96, here.cpus) and big.memory_bytes <= here.memory_bytes
    lines = [r.getMessage() for r in caplog.records if "ml.p4d.24xlarge" in r.getMessage()]
    assert len(lines) == 1
    assert "emulated with" in lines[0] and "8 x NVIDIA A100 40GB are not emulated" in lines[0]
    small = hardware.emulated("ml.t2.medium")
    assert small.vcpu == min(2, here.cpus)


@pytest.fixture(scope="module")
def backend(module_backend_factory):
    return module_backend_factory(time_scale=1000)


@pytest.mark.parametrize("itype", ["ml.m4.xlarge", "ml.g5.xlarge"])
def test_an_endpoint_of_an_older_or_a_gpu_type_serves(backend, itype):
    sm = backend.client("sagemaker")
    url = upload_model(backend)
    name = itype.replace(".", "-")
    d = deploy_endpoint(sm, name, url, instance_type=itype)
    assert d["EndpointStatus"] == "InService", d.get("FailureReason")
    out = backend.client("sagemaker-runtime").invoke_endpoint(EndpointName=name, Body=b"meow",
                                                              ContentType="text/plain")
    assert out["Body"].read() == b"meow"


def test_an_unknown_type_gets_the_enum_validation_error(backend):
    sm = backend.client("sagemaker")
    sm.create_model(ModelName="enum-m", ExecutionRoleArn="arn:aws:iam::123456789012:role/R",
                    PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/k.tar.gz"})
    with pytest.raises(ClientError) as info:
        sm.create_endpoint_config(EndpointConfigName="enum-c", ProductionVariants=[{
            "VariantName": "A", "ModelName": "enum-m", "InitialInstanceCount": 1, "InstanceType": "ml.m99.huge"}])
    message = info.value.response["Error"]["Message"]
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert message.startswith("1 validation error detected: Value 'ml.m99.huge' at "
                              "'productionVariants.1.member.instanceType' failed to satisfy constraint: "
                              "Member must satisfy enum value set: [")
