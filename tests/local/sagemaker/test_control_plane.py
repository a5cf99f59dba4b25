"""Models, endpoint configs, tags, list filters/pagination and AWS's error texts (service level)."""

from __future__ import annotations

import pytest

from catkit.local.errors import AwsError

ARN = "arn:aws:sagemaker:us-east-1:123456789012"


def test_model_crud_and_errors(h):
    async def body(h):
        await h.model("MyModel")
        d = await h.sm("DescribeModel", ModelName="MyModel")
        assert d["ModelName"] == "MyModel"
        assert d["ModelArn"] == f"{ARN}:model/mymodel"  # ARNs lower-case the name
        assert d["PrimaryContainer"]["ModelDataUrl"] == "s3://models/echo/model.tar.gz"
        assert d["ExecutionRoleArn"].endswith("role/SageMakerExecutionRole")
        with pytest.raises(AwsError) as e:
            await h.model("MyModel")
        assert e.value.code == "ValidationException"
        assert e.value.message == f'Cannot create already existing model "{ARN}:model/mymodel".'
        await h.sm("DeleteModel", ModelName="MyModel")
        for op in ("DescribeModel", "DeleteModel"):
            with pytest.raises(AwsError) as e:
                await h.sm(op, ModelName="MyModel")
            assert e.value.message == f'Could not find model "{ARN}:model/mymodel".'
        with pytest.raises(AwsError, match="PrimaryContainer or Containers"):
            await h.sm("CreateModel", ModelName="empty")
        with pytest.raises(AwsError, match="regular expression"):
            await h.sm("CreateModel", ModelName="bad_name", PrimaryContainer={"Image": "x"})

    h.run(body)


def test_endpoint_config_validation(h):
    async def body(h):
        await h.model("m")
        pv = {"VariantName": "A", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        await h.sm("CreateEndpointConfig", EndpointConfigName="c1", ProductionVariants=[pv])
        d = await h.sm("DescribeEndpointConfig", EndpointConfigName="c1")
        assert d["EndpointConfigArn"] == f"{ARN}:endpoint-config/c1"
        assert d["ProductionVariants"][0]["InitialVariantWeight"] == 1.0
        with pytest.raises(AwsError) as e:
            await h.sm("CreateEndpointConfig", EndpointConfigName="C1", ProductionVariants=[pv])
        assert e.value.message == f'Cannot create already existing endpoint configuration "{ARN}:endpoint-config/c1".'
        bad = dict(pv, InstanceType="ml.banana.large")
        with pytest.raises(AwsError) as e:
            await h.sm("CreateEndpointConfig", EndpointConfigName="c2", ProductionVariants=[bad])
        assert e.value.code == "ValidationException"
        assert "Member must satisfy enum value set" in e.value.message
        for i, itype in enumerate(("ml.m4.xlarge", "ml.c4.xlarge", "ml.p5.48xlarge", "ml.inf2.xlarge")):
            await h.sm("CreateEndpointConfig", EndpointConfigName=f"every-type-{i}",  # every hosting type
                       ProductionVariants=[dict(pv, InstanceType=itype)])
        with pytest.raises(AwsError) as e:
            await h.sm("CreateEndpointConfig", EndpointConfigName="c2",
                       ProductionVariants=[dict(pv, ModelName="nope")])
        assert e.value.message == f'Could not find model "{ARN}:model/nope".'
        with pytest.raises(AwsError, match="repeated"):
            await h.sm("CreateEndpointConfig", EndpointConfigName="c2", ProductionVariants=[pv, pv])
        with pytest.raises(AwsError, match="serverless variant"):  # serverless: no instance fields
            await h.sm("CreateEndpointConfig", EndpointConfigName="c2",
                       ProductionVariants=[{"VariantName": "A", "ModelName": "m", "InstanceType": "ml.m5.large",
                                            "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1}}])
        await h.sm("DeleteEndpointConfig", EndpointConfigName="c1")
        with pytest.raises(AwsError) as e:
            await h.sm("DeleteEndpointConfig", EndpointConfigName="c1")
        assert e.value.message == f'Could not find endpoint configuration "{ARN}:endpoint-config/c1".'

    h.run(body)


def test_endpoint_errors_before_any_instance(h):
    async def body(h):
        for op, extra in (("DescribeEndpoint", {}), ("DeleteEndpoint", {}),
                          ("UpdateEndpoint", {"EndpointConfigName": "c"}),
                          ("UpdateEndpointWeightsAndCapacities",
                           {"DesiredWeightsAndCapacities": [{"VariantName": "A", "DesiredWeight": 1.0}]})):
            with pytest.raises(AwsError) as e:
                await h.sm(op, EndpointName="Missing-EP", **extra)
            assert e.value.code == "ValidationException"
            assert e.value.message == f'Could not find endpoint "{ARN}:endpoint/missing-ep".'
        with pytest.raises(AwsError) as e:
            await h.sm("CreateEndpoint", EndpointName="ep", EndpointConfigName="nope")
        assert e.value.message == f'Could not find endpoint configuration "{ARN}:endpoint-config/nope".'
        with pytest.raises(AwsError) as e:
            await h.invoke("Missing-EP")
        assert (e.value.code, e.value.message) == (
            "ValidationError", "Endpoint Missing-EP of account 123456789012 not found.")

    h.run(body)


def test_list_filters_sort_and_pagination(h):
    async def body(h):
        names = ["alpha", "beta", "gamma", "delta", "epsilon"]
        for n in names:
            await h.model(n)
            h.backend.clock._start_emulated += 10  # distinct creation times, in order
        out = await h.sm("ListModels")
        assert [m["ModelName"] for m in out["Models"]] == list(reversed(names))  # CreationTime, Descending
        out = await h.sm("ListModels", SortBy="Name", SortOrder="Ascending")
        assert [m["ModelName"] for m in out["Models"]] == sorted(names)
        out = await h.sm("ListModels", NameContains="TA")
        assert sorted(m["ModelName"] for m in out["Models"]) == ["beta", "delta"]
        seen, token = [], None
        while True:
            kw = {"MaxResults": 2, "SortBy": "Name", "SortOrder": "Ascending"}
            if token:
                kw["NextToken"] = token
            out = await h.sm("ListModels", **kw)
            assert len(out["Models"]) <= 2
            seen += [m["ModelName"] for m in out["Models"]]
            token = out.get("NextToken")
            if not token:
                break
        assert seen == sorted(names)
        created = {m["ModelName"]: m["CreationTime"] for m in (await h.sm("ListModels"))["Models"]}
        out = await h.sm("ListModels", CreationTimeAfter=created["beta"], CreationTimeBefore=created["epsilon"])
        assert sorted(m["ModelName"] for m in out["Models"]) == ["delta", "gamma"]
        with pytest.raises(AwsError, match="pagination token"):
            await h.sm("ListModels", NextToken="garbage")

    h.run(body)


def test_tags_on_models_configs_and_endpoints(h):
    async def body(h):
        await h.model("m")
        model_arn = f"{ARN}:model/m"
        await h.sm("AddTags", ResourceArn=model_arn, Tags=[{"Key": "team", "Value": "cats"}])
        await h.sm("AddTags", ResourceArn=model_arn, Tags=[{"Key": "team", "Value": "hats"},
                                                          {"Key": "env", "Value": "dev"}])
        tags = (await h.sm("ListTags", ResourceArn=model_arn))["Tags"]
        assert {t["Key"]: t["Value"] for t in tags} == {"team": "hats", "env": "dev"}
        page = await h.sm("ListTags", ResourceArn=model_arn, MaxResults=1)
        assert len(page["Tags"]) == 1 and page["NextToken"]
        await h.sm("DeleteTags", ResourceArn=model_arn, TagKeys=["team"])
        assert (await h.sm("ListTags", ResourceArn=model_arn))["Tags"] == [{"Key": "env", "Value": "dev"}]
        await h.config("c", [("A", "m", 1)])
        await h.sm("AddTags", ResourceArn=f"{ARN}:endpoint-config/c", Tags=[{"Key": "k", "Value": "v"}])
        assert (await h.sm("ListTags", ResourceArn=f"{ARN}:endpoint-config/c"))["Tags"] == [{"Key": "k", "Value": "v"}]
        await h.sm("CreateEndpoint", EndpointName="ep", EndpointConfigName="c", Tags=[{"Key": "a", "Value": "1"}])
        await h.sm("AddTags", ResourceArn=f"{ARN}:endpoint/ep", Tags=[{"Key": "b", "Value": "2"}])
        tags = (await h.sm("ListTags", ResourceArn=f"{ARN}:endpoint/ep"))["Tags"]
        assert {t["Key"] for t in tags} == {"a", "b"}
        with pytest.raises(AwsError, match="Could not find model"):
            await h.sm("ListTags", ResourceArn=f"{ARN}:model/ghost")
        with pytest.raises(AwsError, match="not a model, endpoint-config or endpoint"):
            await h.sm("ListTags", ResourceArn="arn:aws:s3:::bucket")
        with pytest.raises(AwsError, match="reserved"):
            await h.sm("AddTags", ResourceArn=model_arn, Tags=[{"Key": "aws:x", "Value": "1"}])
        await h.sm("DeleteEndpoint", EndpointName="ep")
        await h.wait_gone("ep")

    h.run(body)


def test_persisted_models_and_configs_survive_a_new_manager(h, fake_backend):
    async def first(h):
        await h.model("kept")
        await h.config("kept-config", [("A", "kept", 1)])

    h.run(first)

    async def second(h):
        assert (await h.sm("DescribeModel", ModelName="kept"))["ModelName"] == "kept"
        d = await h.sm("DescribeEndpointConfig", EndpointConfigName="kept-config")
        assert d["ProductionVariants"][0]["ModelName"] == "kept"

    h.run(second)
