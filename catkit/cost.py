"""What endpoints cost: on-demand prices, cost so far and per month, idle endpoints, night savings.

Prices come from the AWS Price List API (``pricing:GetProducts``, service ``AmazonSageMaker``,
product family ``ML Instance``, component ``Hosting``) when the session has a pricing client and
the call works; otherwise from the bundled table in :mod:`catkit.instance_types` (us-east-1,
source and date in ``PRICE_SOURCE``/``PRICE_DATE``; the quote says so in ``source``). Real-time
instances are billed per second of instance time; a month is 730 hours (AWS's convention).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from catkit import instance_types
from catkit.names import SAGEMAKER_METRICS, variant_dimensions
from catkit.session import Session

HOURS_PER_MONTH = 730.0
HOURS_PER_WEEK = 168.0
SERVICE_CODE = "AmazonSageMaker"
PRODUCT_FAMILY = "ML Instance"
COMPONENT = "Hosting"

_PRICE_CACHE: dict[tuple[str, str], PriceQuote] = {}


@dataclass(frozen=True)
class PriceQuote:
    """On-demand USD per instance-hour and where the number came from."""

    instance_type: str
    region: str
    usd_per_hour: float
    source: str
    as_of: str
    note: str = ""


def clear_price_cache() -> None:
    """Forget prices fetched from the Pricing API."""
    _PRICE_CACHE.clear()


def pricing_filters(instance_type: str, region: str) -> list[dict[str, str]]:
    """GetProducts filters for a real-time hosting instance in ``region``."""
    return [
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
        {"Type": "TERM_MATCH", "Field": "instanceName", "Value": instance_type},
        {"Type": "TERM_MATCH", "Field": "productFamily", "Value": PRODUCT_FAMILY},
        {"Type": "TERM_MATCH", "Field": "component", "Value": COMPONENT},
    ]


def parse_price_list(price_list: Iterable[str | Mapping[str, Any]], instance_type: str) -> tuple[float, str] | None:
    """USD/hour and publication date for ``instance_type`` from GetProducts ``PriceList`` items.

    Each item is a JSON string (as the API returns it) with ``product.attributes`` and
    ``terms.OnDemand.<offer>.priceDimensions.<rate>.pricePerUnit.USD`` (unit ``Hrs``). Products of
    another instance or component are skipped; zero prices (free-tier SKUs) are ignored.
    """
    for item in price_list:
        doc = json.loads(item) if isinstance(item, str | bytes) else item
        attrs = doc.get("product", {}).get("attributes", {})
        if attrs.get("instanceName", instance_type) != instance_type:
            continue
        if attrs.get("component", COMPONENT) != COMPONENT:
            continue
        for offer in doc.get("terms", {}).get("OnDemand", {}).values():
            for dim in offer.get("priceDimensions", {}).values():
                if dim.get("unit", "").lower() not in ("hrs", "hr", "hours"):
                    continue
                usd = float(dim.get("pricePerUnit", {}).get("USD", "0") or 0)
                if usd > 0:
                    return usd, str(doc.get("publicationDate", offer.get("effectiveDate", "")))
    return None


def _bundled(instance_type: str, region: str, note: str) -> PriceQuote:
    info = instance_types.get_instance_type(instance_type)
    if not info.has_price:  # a valid type the bundled table has no price for: the cost is unknown (NaN)
        note = (note + "; " if note else "") + f"no bundled price for {instance_type}: costs are NaN"
    if region != instance_types.PRICE_REGION:
        note = (note + "; " if note else "") + (
            f"bundled prices are for {instance_types.PRICE_REGION}; {region} may differ"
        )
    return PriceQuote(
        instance_type=instance_type,
        region=region,
        usd_per_hour=info.price_per_hour,
        source=f"bundled table: {instance_types.PRICE_SOURCE}",
        as_of=instance_types.PRICE_DATE,
        note=note,
    )


def price_per_hour(session: Session | None, instance_type: str, region: str | None = None) -> PriceQuote:
    """On-demand price of one real-time ``instance_type`` instance per hour.

    Tries the Pricing API through ``session.pricing`` (cached per region/type), then the bundled
    table (``note`` says why). ``KeyError`` if the type is in neither.
    """
    region = region or (session.region if session is not None else instance_types.PRICE_REGION)
    key = (region, instance_type)
    if key in _PRICE_CACHE:
        return _PRICE_CACHE[key]
    client = session.pricing if session is not None else None
    if client is None:
        return _bundled(instance_type, region, "no Pricing API on this backend")
    try:
        items: list[str] = []
        pages = client.get_paginator("get_products").paginate(
            ServiceCode=SERVICE_CODE, Filters=pricing_filters(instance_type, region)
        )
        for page in pages:
            items.extend(page.get("PriceList", []))
        parsed = parse_price_list(items, instance_type)
    except (ClientError, BotoCoreError) as exc:
        return _bundled(instance_type, region, f"Pricing API failed: {exc}")
    if parsed is None:
        return _bundled(instance_type, region, f"Pricing API has no on-demand price for {instance_type} in {region}")
    usd, as_of = parsed
    quote = PriceQuote(instance_type, region, usd, "AWS Price List API (GetProducts)", as_of)
    _PRICE_CACHE[key] = quote
    return quote


def monthly_cost(
    instance_type: str,
    count: int = 1,
    *,
    session: Session | None = None,
    region: str | None = None,
    hours: float = HOURS_PER_MONTH,
) -> float:
    """USD for ``count`` instances running all month (730 h): price x count x hours."""
    return price_per_hour(session, instance_type, region).usd_per_hour * count * hours


# -- endpoint cost so far ----------------------------------------------------------------------
@dataclass
class EndpointCost:
    """Cost of one endpoint from its creation until ``until``.

    ``timeline`` is a DataFrame of constant-capacity segments (variant, instance_type, start, end,
    instances, instance_hours, usd). ``usd_per_month`` prices the current instance counts.
    """

    endpoint: str
    since: datetime
    until: datetime
    instance_hours: float
    usd: float
    usd_per_month: float
    prices: dict[str, PriceQuote]
    timeline: Any
    notes: list[str] = field(default_factory=list)


def _capacity_segments(
    created: datetime, until: datetime, initial: int, changes: list[tuple[datetime, int]]
) -> list[tuple[datetime, datetime, int]]:
    """Piecewise-constant instance counts from ``created`` to ``until`` given (time, new count)."""
    segments = []
    start, count = created, initial
    for when, new_count in sorted(changes):
        when = min(max(when, created), until)
        if when > start:
            segments.append((start, when, count))
            start = when
        count = new_count
    if until > start:
        segments.append((start, until, count))
    return segments


def endpoint_cost(session: Session, endpoint: str, *, until: datetime | None = None) -> EndpointCost:
    """Cost of ``endpoint`` so far, per second of instance time.

    Capacity over time: the endpoint config's InitialInstanceCount from CreationTime, changed by
    each successful auto scaling activity ("Setting desired instance count to N"). Manual
    resizes are not in that history; if the current count differs from the reconstructed one,
    a note says so and the final segment uses the current count from the last change on.
    """
    import pandas as pd

    until = until or session.now()
    desc = session.sagemaker.describe_endpoint(EndpointName=endpoint)
    config = session.sagemaker.describe_endpoint_config(EndpointConfigName=desc["EndpointConfigName"])
    created = desc["CreationTime"]
    current = {v["VariantName"]: v for v in desc.get("ProductionVariants", [])}
    rows, notes, prices = [], [], {}
    per_month = 0.0
    for variant in config["ProductionVariants"]:
        name = variant["VariantName"]
        itype = variant.get("InstanceType")
        if not itype:
            notes.append(f"variant {name} is serverless; not priced")
            continue
        quote = prices.get(itype) or price_per_hour(session, itype)
        prices[itype] = quote
        changes = _scaling_changes(session, endpoint, name, notes)
        segments = _capacity_segments(created, until, int(variant.get("InitialInstanceCount", 1)), changes)
        now_count = int(current.get(name, {}).get("CurrentInstanceCount", segments[-1][2] if segments else 0))
        if segments and segments[-1][2] != now_count:
            notes.append(
                f"variant {name}: {now_count} instances now but scaling history gives "
                f"{segments[-1][2]} (manual resize?); last segment uses {now_count}"
            )
            start, end, _ = segments[-1]
            segments[-1] = (start, end, now_count)
        for start, end, count in segments:
            hours = (end - start).total_seconds() / 3600.0 * count
            rows.append(
                {
                    "variant": name,
                    "instance_type": itype,
                    "start": start,
                    "end": end,
                    "instances": count,
                    "instance_hours": hours,
                    "usd": hours * quote.usd_per_hour,
                }
            )
        per_month += now_count * quote.usd_per_hour * HOURS_PER_MONTH
    timeline = pd.DataFrame(
        rows, columns=["variant", "instance_type", "start", "end", "instances", "instance_hours", "usd"]
    )
    return EndpointCost(
        endpoint=endpoint,
        since=created,
        until=until,
        instance_hours=float(timeline["instance_hours"].sum()),
        usd=float(timeline["usd"].sum()),
        usd_per_month=per_month,
        prices=prices,
        timeline=timeline,
        notes=notes,
    )


def _scaling_changes(session: Session, endpoint: str, variant: str, notes: list[str]) -> list[tuple[datetime, int]]:
    """(time, new desired count) of successful scaling activities; [] with a note if unavailable."""
    from catkit.scaling import scaling_activities

    try:
        acts = scaling_activities(session, endpoint, variant)
    except (ClientError, BotoCoreError) as exc:
        notes.append(f"variant {variant}: scaling history unavailable ({exc}); assuming no auto scaling")
        return []
    done = acts[(acts["status"] == "Successful") & acts["desired_capacity"].notna()]
    whens = done["end_time"].fillna(done["start_time"])
    return [(ts.to_pydatetime(), int(n)) for ts, n in zip(whens, done["desired_capacity"], strict=False)]


# -- idle endpoints ----------------------------------------------------------------------------
def find_idle_endpoints(session: Session, hours: float = 24, *, include_all: bool = False) -> Any:
    """InService endpoints with no invocations (CloudWatch ``Invocations`` Sum == 0) in ``hours``.

    Returns a DataFrame: endpoint, created, variants, instance_type, instances, invocations,
    usd_per_month (what deleting it would save). ``include_all=True`` lists busy ones too, with
    an ``idle`` column. Endpoints younger than ``hours`` are judged on their lifetime so far.
    """
    import pandas as pd

    from catkit.deploy import list_endpoints

    if hours <= 0:
        raise ValueError(f"hours must be > 0, got {hours}")
    end = session.now()
    start = end - timedelta(hours=hours)
    period = 3600 * max(1, math.ceil(hours))  # one bucket covers the window; hour multiples work for old data
    rows = []
    for summary in list_endpoints(session):
        if summary.get("EndpointStatus") != "InService":
            continue
        name = summary["EndpointName"]
        desc = session.sagemaker.describe_endpoint(EndpointName=name)
        config = session.sagemaker.describe_endpoint_config(EndpointConfigName=desc["EndpointConfigName"])
        types = {v["VariantName"]: v.get("InstanceType") for v in config["ProductionVariants"]}
        invocations = 0.0
        instances = 0
        usd_month = 0.0
        for variant in desc.get("ProductionVariants", []):
            vname = variant["VariantName"]
            invocations += _sum_metric(session, "Invocations", name, vname, start, end, period)
            count = int(variant.get("CurrentInstanceCount") or 0)
            instances += count
            if types.get(vname):
                usd_month += monthly_cost(types[vname], count, session=session)
        rows.append(
            {
                "endpoint": name,
                "created": desc.get("CreationTime"),
                "variants": len(desc.get("ProductionVariants", [])),
                "instance_type": ",".join(sorted({t for t in types.values() if t})),
                "instances": instances,
                "invocations": invocations,
                "idle": invocations == 0,
                "usd_per_month": usd_month,
            }
        )
    frame = pd.DataFrame(
        rows,
        columns=["endpoint", "created", "variants", "instance_type", "instances", "invocations", "idle", "usd_per_month"],
    )
    if not include_all:
        frame = frame[frame["idle"]].drop(columns=["idle"])
    return frame.reset_index(drop=True)


def _sum_metric(
    session: Session, metric: str, endpoint: str, variant: str, start: datetime, end: datetime, period: int
) -> float:
    response = session.cloudwatch.get_metric_statistics(
        Namespace=SAGEMAKER_METRICS,
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in variant_dimensions(endpoint, variant).items()],
        StartTime=start,
        EndTime=end,
        Period=period,
        Statistics=["Sum"],
    )
    return float(sum(p.get("Sum", 0.0) for p in response.get("Datapoints", [])))


# -- scheduled-scaling savings -----------------------------------------------------------------
@dataclass(frozen=True)
class ScheduleSavings:
    """Monthly cost with and without a night/weekend schedule."""

    instance_type: str
    day_instances: int
    night_instances: int
    reduced_hours_per_week: float
    usd_per_month_always_on: float
    usd_per_month_scheduled: float
    usd_saved_per_month: float
    fraction_saved: float
    price: PriceQuote


def night_hours_per_week(night_starts_hour: int = 20, day_starts_hour: int = 7, weekends: bool = True) -> float:
    """Hours per week at night capacity for the schedule of :func:`catkit.scaling.schedule_night_scaling`.

    Every night lasts ``(day_starts_hour - night_starts_hour) mod 24`` hours; with ``weekends`` the
    Friday night stretches to Monday morning (+48 h): 5 nights + 48 h, else 7 nights.
    """
    night = (day_starts_hour - night_starts_hour) % 24
    return 5 * night + 48.0 if weekends else 7.0 * night


def night_schedule_savings(
    instance_type: str,
    day_instances: int,
    night_instances: int,
    *,
    night_starts_hour: int = 20,
    day_starts_hour: int = 7,
    weekends: bool = True,
    session: Session | None = None,
) -> ScheduleSavings:
    """What a night (and weekend) schedule saves per month versus running ``day_instances`` always.

    Example: ml.m5.xlarge at $0.23/h, 2 by day, 1 at night 20:00-07:00 plus weekends: 103 night
    hours a week = 447.6 h/month, saving 1 x 0.23 x 447.6 = $102.94 of $335.80.
    """
    if night_instances > day_instances:
        raise ValueError("night_instances should not exceed day_instances")
    quote = price_per_hour(session, instance_type)
    reduced_week = night_hours_per_week(night_starts_hour, day_starts_hour, weekends)
    reduced_month = reduced_week * HOURS_PER_MONTH / HOURS_PER_WEEK
    always = day_instances * quote.usd_per_hour * HOURS_PER_MONTH
    saved = (day_instances - night_instances) * quote.usd_per_hour * reduced_month
    return ScheduleSavings(
        instance_type=instance_type,
        day_instances=day_instances,
        night_instances=night_instances,
        reduced_hours_per_week=reduced_week,
        usd_per_month_always_on=always,
        usd_per_month_scheduled=always - saved,
        usd_saved_per_month=saved,
        fraction_saved=saved / always if always else 0.0,
        price=quote,
    )


# -- serverless and asynchronous endpoints -----------------------------------------------------
#: Serverless Inference, on demand, us-east-1 (USD). AWS bills the memory you chose times the
#: duration of each request (GB-seconds) plus the data processed in and out. UNCONFIRMED in the
#: stored sources beyond a secondary table ("Serverless inference: $0.0000200 per second per GB
#: memory"); the data rate is from the SageMaker pricing page as remembered. Verify both at
#: https://aws.amazon.com/sagemaker/pricing/ (Inference -> Serverless) before relying on them.
SERVERLESS_USD_PER_GB_SECOND = 0.0000200
SERVERLESS_USD_PER_GB_PROCESSED = 0.016
#: Provisioned concurrency is billed per GB-second while provisioned (ASSUMPTION: rate from memory,
#: unconfirmed; inference on provisioned workers is billed at the on-demand rate above here).
PROVISIONED_USD_PER_GB_SECOND = 0.0000048
SERVERLESS_PRICE_SOURCE = "catkit bundled serverless rates (us-east-1, unconfirmed; see catkit.cost)"


@dataclass(frozen=True)
class ServerlessCost:
    """What a serverless variant costs for a number of requests (USD), and the quantities billed."""

    requests: int
    gb_seconds: float
    gb_processed: float
    compute_usd: float
    data_usd: float
    provisioned_usd: float
    total_usd: float
    source: str = SERVERLESS_PRICE_SOURCE


def serverless_cost(
    requests: int,
    mean_duration_s: float,
    memory_mb: int,
    *,
    request_bytes: float = 0.0,
    response_bytes: float = 0.0,
    provisioned_concurrency: int = 0,
    hours: float = 24.0,
) -> ServerlessCost:
    """Serverless cost of ``requests`` requests of ``mean_duration_s`` each on ``memory_mb`` of
    memory: compute (GB-seconds x rate) + data processed (request and response bytes) +
    ``provisioned_concurrency`` workers kept for ``hours``. Idle time between requests costs
    nothing (unless provisioned)."""
    from catkit.endpoint_kinds import check_serverless

    check_serverless(memory_mb, max(1, provisioned_concurrency or 1), provisioned_concurrency or None)
    gb = memory_mb / 1024.0
    gb_seconds = requests * max(0.0, mean_duration_s) * gb
    gb_processed = requests * (request_bytes + response_bytes) / 1024**3
    compute = gb_seconds * SERVERLESS_USD_PER_GB_SECOND
    data = gb_processed * SERVERLESS_USD_PER_GB_PROCESSED
    provisioned = provisioned_concurrency * gb * hours * 3600.0 * PROVISIONED_USD_PER_GB_SECOND
    return ServerlessCost(requests, gb_seconds, gb_processed, compute, data, provisioned, compute + data + provisioned)


def async_cost(
    instance_type: str, instance_hours: float, *, session: Session | None = None, region: str | None = None
) -> float:
    """An asynchronous endpoint is billed as instances: USD for ``instance_hours`` instance-hours
    (zero while scaled to zero)."""
    return price_per_hour(session, instance_type, region).usd_per_hour * max(0.0, instance_hours)
