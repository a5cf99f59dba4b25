"""cost: Pricing API parsing, bundled fallback, per-second endpoint cost, idle finder, night savings.

Hand-checked numbers are in the comments next to each assertion.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from botocore.stub import ANY
from helpers_fakes import T0, describe_endpoint, describe_endpoint_config, endpoint_arn

from catkit import cost

RID = "endpoint/ep1/variant/AllTraffic"


def product(instance="ml.m5.xlarge", usd="0.2500000000", component="Hosting", region="us-east-1", unit="Hrs"):
    """One GetProducts PriceList entry shaped like the real AmazonSageMaker offer."""
    return json.dumps({
        "product": {
            "productFamily": "ML Instance",
            "attributes": {
                "regionCode": region, "instanceName": instance, "component": component,
                "usagetype": f"USE1-Host:{instance}", "locationType": "AWS Region", "location": "US East (N. Virginia)",
                "vCpu": "4", "memory": "16 GiB", "gpu": "0", "computeType": "CPU", "servicecode": "AmazonSageMaker",
                "servicename": "Amazon SageMaker", "operation": "RunInstance", "instanceType": f"{instance}-{component}",
            },
            "sku": "ABCDEFGHJKLMNPQR",
        },
        "serviceCode": "AmazonSageMaker",
        "terms": {"OnDemand": {"ABCDEFGHJKLMNPQR.JRTCKXETXF": {
            "priceDimensions": {"ABCDEFGHJKLMNPQR.JRTCKXETXF.6YS6EN2CT7": {
                "unit": unit, "endRange": "Inf", "beginRange": "0", "appliesTo": [],
                "description": f"${usd} per {component} {instance} hour in US East (N. Virginia)",
                "rateCode": "ABCDEFGHJKLMNPQR.JRTCKXETXF.6YS6EN2CT7", "pricePerUnit": {"USD": usd}}},
            "sku": "ABCDEFGHJKLMNPQR", "effectiveDate": "2025-12-01T00:00:00Z", "offerTermCode": "JRTCKXETXF",
            "termAttributes": {}}}},
        "version": "20251201000000",
        "publicationDate": "2025-12-01T00:00:00Z",
    })


@pytest.fixture(autouse=True)
def _fresh_cache():
    cost.clear_price_cache()
    yield
    cost.clear_price_cache()


def test_parse_price_list_picks_hosting_on_demand_hourly():
    items = [
        product(component="Training", usd="0.2690000000"),
        product(instance="ml.m5.2xlarge", usd="0.4610000000"),
        product(usd="0.0000000000"),  # free-tier style zero price is ignored
        product(usd="0.2300000000"),
    ]
    assert cost.parse_price_list(items, "ml.m5.xlarge") == (0.23, "2025-12-01T00:00:00Z")
    assert cost.parse_price_list([product(unit="Quantity")], "ml.m5.xlarge") is None
    assert cost.parse_price_list([], "ml.m5.xlarge") is None


def test_price_from_pricing_api_is_cached(session, stubs):
    stubs["pricing"].add_response(
        "get_products", {"FormatVersion": "aws_v1", "PriceList": [product()], "NextToken": "n"},
        {"ServiceCode": "AmazonSageMaker", "Filters": [
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"},
            {"Type": "TERM_MATCH", "Field": "instanceName", "Value": "ml.m5.xlarge"},
            {"Type": "TERM_MATCH", "Field": "productFamily", "Value": "ML Instance"},
            {"Type": "TERM_MATCH", "Field": "component", "Value": "Hosting"}]})
    stubs["pricing"].add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": []},
                                  {"ServiceCode": "AmazonSageMaker", "Filters": ANY, "NextToken": "n"})
    quote = cost.price_per_hour(session, "ml.m5.xlarge")
    assert quote.usd_per_hour == 0.25 and "Price List API" in quote.source
    assert cost.price_per_hour(session, "ml.m5.xlarge") is quote  # no second call
    stubs.verify()


def test_pricing_failure_falls_back_to_bundled_table(session, stubs):
    stubs["pricing"].add_client_error("get_products", "AccessDeniedException", "not allowed", 400)
    quote = cost.price_per_hour(session, "ml.m5.xlarge")
    assert quote.usd_per_hour == 0.23  # bundled us-east-1 price
    assert "bundled" in quote.source and "Pricing API failed" in quote.note and quote.as_of == "2026-11"


def test_no_pricing_client_uses_bundled_and_notes_region():
    quote = cost.price_per_hour(None, "ml.c5.xlarge", region="eu-west-1")
    assert quote.usd_per_hour == 0.204 and "eu-west-1 may differ" in quote.note
    with pytest.raises(KeyError, match="unknown instance type"):
        cost.price_per_hour(None, "ml.x99.huge")


def test_monthly_cost_bundled():
    # 2 x 0.23 $/h x 730 h = 335.80 $
    assert cost.monthly_cost("ml.m5.xlarge", 2) == pytest.approx(335.80)


def _activity(i, when, n):
    return {"ActivityId": f"a{i}", "ServiceNamespace": "sagemaker", "ResourceId": RID,
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "Description": f"Setting desired instance count to {n}.", "Cause": "alarm", "StartTime": when - timedelta(minutes=5),
            "EndTime": when, "StatusCode": "Successful"}


def test_endpoint_cost_per_second_with_scaling_history(session, stubs):
    sm, aas = stubs["sagemaker"], stubs["application-autoscaling"]
    sm.add_response("describe_endpoint", describe_endpoint("ep1", current=2), {"EndpointName": "ep1"})
    sm.add_response("describe_endpoint_config", describe_endpoint_config("ep1", "ep1", count=2), {"EndpointConfigName": "ep1"})
    stubs["pricing"].add_response("get_products", {"PriceList": [product(usd="0.2500000000")]})
    aas.add_response("describe_scaling_activities", {"ScalingActivities": [
        _activity(2, T0 + timedelta(hours=3), 2), _activity(1, T0 + timedelta(hours=1), 4)]})
    result = cost.endpoint_cost(session, "ep1", until=T0 + timedelta(hours=10))
    # 12:00-13:00 2 inst = 2 h; 13:00-15:00 4 inst = 8 h; 15:00-22:00 2 inst = 14 h -> 24 instance-hours
    assert result.instance_hours == pytest.approx(24.0)
    assert result.usd == pytest.approx(6.0)  # 24 h x 0.25 $
    assert result.usd_per_month == pytest.approx(365.0)  # 2 x 0.25 x 730
    assert result.timeline["instances"].tolist() == [2, 4, 2]
    assert result.notes == []
    stubs.verify()


def test_endpoint_cost_counts_seconds_and_notes_manual_resize(session, stubs):
    sm = stubs["sagemaker"]
    sm.add_response("describe_endpoint", describe_endpoint("ep1", current=3))
    sm.add_response("describe_endpoint_config", describe_endpoint_config("ep1", "ep1", count=2))
    stubs["pricing"].add_response("get_products", {"PriceList": [product(usd="0.3600000000")]})
    stubs["application-autoscaling"].add_response("describe_scaling_activities", {"ScalingActivities": []})
    result = cost.endpoint_cost(session, "ep1", until=T0 + timedelta(seconds=90))
    # 3 instances x 90 s = 270 instance-seconds = 0.075 h -> 0.075 x 0.36 = 0.027 $
    assert result.instance_hours == pytest.approx(0.075)
    assert result.usd == pytest.approx(0.027)
    assert "manual resize" in result.notes[0]


def test_capacity_segments_clip_to_window():
    segs = cost._capacity_segments(T0, T0 + timedelta(hours=2), 2,
                                   [(T0 - timedelta(hours=1), 5), (T0 + timedelta(hours=3), 9)])
    assert segs == [(T0, T0 + timedelta(hours=2), 5)]


def test_find_idle_endpoints(session, stubs, monkeypatch):
    monkeypatch.setattr(session, "now", lambda: T0 + timedelta(days=2))
    sm, cw = stubs["sagemaker"], stubs["cloudwatch"]

    def summary(name, status="InService"):
        return {"EndpointName": name, "EndpointArn": endpoint_arn(name), "CreationTime": T0,
                "LastModifiedTime": T0, "EndpointStatus": status}

    sm.add_response("list_endpoints", {"Endpoints": [summary("idle"), summary("busy"), summary("new", "Creating")]})
    stubs["pricing"].add_client_error("get_products", "AccessDeniedException", "no", 400)
    for name, total in (("idle", []), ("busy", [{"Timestamp": T0, "Sum": 42.0}])):
        sm.add_response("describe_endpoint", describe_endpoint(name, current=2), {"EndpointName": name})
        sm.add_response("describe_endpoint_config", describe_endpoint_config(name, name), {"EndpointConfigName": name})
        cw.add_response("get_metric_statistics", {"Label": "Invocations", "Datapoints": total}, {
            "Namespace": "AWS/SageMaker", "MetricName": "Invocations",
            "Dimensions": [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}],
            "StartTime": T0 + timedelta(days=1), "EndTime": T0 + timedelta(days=2), "Period": 86400, "Statistics": ["Sum"]})
    idle = cost.find_idle_endpoints(session, hours=24)
    assert idle["endpoint"].tolist() == ["idle"]
    assert idle["usd_per_month"].tolist() == [pytest.approx(335.80)]  # bundled fallback, 2 x 0.23 x 730
    stubs.verify()


def test_night_schedule_savings_hand_checked():
    s = cost.night_schedule_savings("ml.m5.xlarge", 2, 1)
    # nights 20:00-07:00 = 11 h; 5 x 11 + 48 weekend = 103 h/week; x 730/168 = 447.56 h/month
    assert s.reduced_hours_per_week == 103
    assert s.usd_per_month_always_on == pytest.approx(335.80)
    assert s.usd_saved_per_month == pytest.approx(0.23 * 103 * 730 / 168)  # 102.94
    assert s.usd_saved_per_month == pytest.approx(102.94, abs=0.01)
    assert s.fraction_saved == pytest.approx(103 / 168 / 2)
    no_weekend = cost.night_schedule_savings("ml.m5.xlarge", 4, 2, weekends=False, night_starts_hour=22, day_starts_hour=6)
    assert no_weekend.reduced_hours_per_week == 56  # 7 x 8 h
    with pytest.raises(ValueError):
        cost.night_schedule_savings("ml.m5.xlarge", 1, 2)


def test_endpoint_cost_without_scaling_history_notes_it(session, stubs):
    sm = stubs["sagemaker"]
    sm.add_response("describe_endpoint", describe_endpoint("ep1", current=2))
    sm.add_response("describe_endpoint_config", describe_endpoint_config("ep1", "ep1", count=2))
    stubs["pricing"].add_response("get_products", {"PriceList": [product(usd="0.5000000000")]})
    stubs["application-autoscaling"].add_client_error("describe_scaling_activities", "AccessDeniedException", "no", 400)
    result = cost.endpoint_cost(session, "ep1", until=T0 + timedelta(hours=2))
    assert result.usd == pytest.approx(2.0)  # 2 instances x 2 h x 0.50 $
    assert "scaling history unavailable" in result.notes[0]
