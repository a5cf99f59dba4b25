"""End to end through boto3 against a real local backend process at time scale 60.

The seed's own calls (RegisterScalableTarget on endpoint/<name>/variant/AllTraffic, min 2 max 10;
PutScalingPolicy TargetTrackingScaling on SageMakerVariantInvocationsPerInstance, target 1000,
cooldowns 60/300) run unchanged. For the load tests the target is scaled to what a test can
generate: at time scale 60 one emulated minute lasts one real second, so a real rate of r
requests/s reads as 60·r/60 = r invocations per emulated minute per variant (design.md, "Time scale
and rates"). A step of load is driven, and the instance-count timeline (DescribeEndpoint), the
alarm state changes (DescribeAlarmHistory) and the scaling activities are recorded and checked
against AWS's rules (aws-facts §1.2-§1.8).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import botocore.exceptions
import pytest

from catkit.testing import echo_archive, wait_until

pytestmark = pytest.mark.slow

SCALE = 60.0
FAST = {"Delay": 0.2, "MaxAttempts": 300}
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.2-1"
SEED_POLICY = {
    "TargetValue": 1000.0,
    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    "ScaleOutCooldown": 60,
    "ScaleInCooldown": 300,
}


ENDPOINTS = {"seed": 2, "step": 2, "hires": 2, "night": 3}  # name -> initial instance count


@pytest.fixture(scope="module")
def backend(module_backend_factory):
    """One backend at time scale 60 with the tests' endpoints, created in parallel."""
    b = module_backend_factory(time_scale=SCALE)
    s3 = b.client("s3")
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="echo/model.tar.gz", Body=echo_archive())
    sm = b.client("sagemaker")
    for name, count in ENDPOINTS.items():
        sm.create_model(
            ModelName=f"{name}-m",
            ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://models/echo/model.tar.gz"},
        )
        sm.create_endpoint_config(
            EndpointConfigName=f"{name}-c",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"{name}-m",
                    "InitialInstanceCount": count,
                    "InstanceType": "ml.m5.xlarge",
                }
            ],
        )
        sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")
    for name in ENDPOINTS:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST)
    return b


def _emulated_now(b) -> float:
    return float(b.info()["now"])


@dataclass
class Recorder:
    """Polls DescribeEndpoint: (emulated time, desired, current, status) whenever it changes."""

    backend: object
    name: str
    timeline: list[tuple[float, int, int, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._sm = self.backend.client("sagemaker")
        self._t0_real = time.monotonic()
        self._t0_emulated = _emulated_now(self.backend)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def now(self) -> float:
        return self._t0_emulated + (time.monotonic() - self._t0_real) * SCALE

    def _run(self) -> None:
        while not self._stop.is_set():
            pv = self._sm.describe_endpoint(EndpointName=self.name)
            d = pv["ProductionVariants"][0]
            row = (d["DesiredInstanceCount"], d["CurrentInstanceCount"], pv["EndpointStatus"])
            if not self.timeline or self.timeline[-1][1:] != row:
                self.timeline.append((self.now(), *row))
            time.sleep(0.1)

    def wait_for(self, predicate, timeout_real: float) -> bool:
        deadline = time.monotonic() + timeout_real
        while time.monotonic() < deadline:
            if self.timeline and predicate(self.timeline[-1]):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class Load:
    """``rate`` requests per real second from a few threads until stopped."""

    def __init__(
        self,
        backend,
        name: str,
        rate: float,
        body: bytes = b"x",
        content_type: str = "text/plain",
        threads: int = 4,
    ) -> None:
        self._stop = threading.Event()
        self.sent = 0
        self.errors = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(
                target=self._run,
                args=(backend.client("sagemaker-runtime"), name, rate / threads, body, content_type),
                daemon=True,
            )
            for _ in range(threads)
        ]
        for t in self._threads:
            t.start()

    def _run(self, rt, name, rate, body, content_type) -> None:
        interval = 1.0 / rate
        nxt = time.monotonic()
        while not self._stop.is_set():
            try:
                rt.invoke_endpoint(EndpointName=name, Body=body, ContentType=content_type)
                with self._lock:
                    self.sent += 1
            except botocore.exceptions.ClientError:
                with self._lock:
                    self.errors += 1
            nxt += interval
            time.sleep(max(0.0, nxt - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)


def _target(name: str) -> dict:
    return {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{name}/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }


def _ts(value) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _datapoints(cw, name: str, metric: str, stat: str, period: int, start: float, end: float) -> dict[float, float]:
    """What the backend recorded: period start (emulated epoch s) -> statistic."""
    rows = cw.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName=metric, Statistics=[stat], Period=period,
        Dimensions=[{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}],
        StartTime=datetime.fromtimestamp(start, UTC), EndTime=datetime.fromtimestamp(end, UTC),
    )["Datapoints"]
    return {_ts(r["Timestamp"]): r[stat] for r in rows}


def _went_to_alarm(cw, alarm: str) -> float:
    """When the alarm first went to ALARM (emulated epoch s)."""
    items = cw.describe_alarm_history(AlarmName=alarm, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    return min(_ts(h["Timestamp"]) for h in items if "to ALARM" in h["HistorySummary"])


def _assert_fired_at_first_chance(points: dict[float, float], fired: float, period: int, n: int, breaches) -> None:
    """M-of-N with M = N = n: the n periods before ``fired`` breach, and at the evaluation one period
    earlier they did not all breach yet - the alarm fired at its first chance, whatever the timing
    of the load that produced the metrics (robust to a loaded machine)."""
    window = [fired - (k + 1) * period for k in range(n)]
    assert all(t in points and breaches(points[t]) for t in window), (fired, points)
    before = [t - period for t in window]
    assert not all(t in points and breaches(points[t]) for t in before), (fired, points)


def test_seed_code_runs_unchanged_and_its_alarms_show_in_cloudwatch(backend):
    aas, cw = backend.client("application-autoscaling"), backend.client("cloudwatch")
    aas.register_scalable_target(**_target("seed"), MinCapacity=2, MaxCapacity=10)
    out = aas.put_scaling_policy(
        PolicyName="Invocations-ScalingPolicy",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration=SEED_POLICY,
        **_target("seed"),
    )
    names = [a["AlarmName"] for a in out["Alarms"]]
    assert [n.split("-")[-6] for n in names] == ["AlarmHigh", "AlarmLow"]
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNames=names)["MetricAlarms"]}
    high, low = alarms[names[0]], alarms[names[1]]
    assert (
        high["MetricName"],
        high["Namespace"],
        high["Statistic"],
        high["Period"],
        high["EvaluationPeriods"],
        high["Threshold"],
        high["ComparisonOperator"],
    ) == ("InvocationsPerInstance", "AWS/SageMaker", "Sum", 60, 3, 1000.0, "GreaterThanThreshold")
    assert (low["EvaluationPeriods"], low["Threshold"], low["ComparisonOperator"]) == (
        15,
        900.0,
        "LessThanThreshold",
    )
    assert high["AlarmActions"] == [out["PolicyARN"]]
    [t] = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (t["MinCapacity"], t["MaxCapacity"]) == (2, 10)
    [p] = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert p["TargetTrackingScalingPolicyConfiguration"] == SEED_POLICY
    # UpdateEndpoint may not change the instance type of an auto-scaled variant.
    sm = backend.client("sagemaker")
    sm.create_endpoint_config(
        EndpointConfigName="seed-c5",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "seed-m",
                "InitialInstanceCount": 2,
                "InstanceType": "ml.c5.xlarge",
            }
        ],
    )
    with pytest.raises(botocore.exceptions.ClientError, match="cannot change its instance type"):
        sm.update_endpoint(EndpointName="seed", EndpointConfigName="seed-c5")
    # Deleting the endpoint deregisters its target and deletes the policy's alarms.
    sm.delete_endpoint(EndpointName="seed")
    deadline = time.monotonic() + 20
    while (
        time.monotonic() < deadline
        and aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    ):
        time.sleep(0.1)
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert cw.describe_alarms(AlarmNames=names)["MetricAlarms"] == []


def test_step_load_scales_out_then_back_in_following_aws_rules(backend):
    name = "step"
    aas, cw = backend.client("application-autoscaling"), backend.client("cloudwatch")
    aas.register_scalable_target(**_target(name), MinCapacity=2, MaxCapacity=10)
    # 40 real requests/s at time scale 60 = 40 invocations per emulated minute = 20 per instance.
    policy = {**SEED_POLICY, "TargetValue": 10.0}
    out = aas.put_scaling_policy(
        PolicyName="step-policy",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration=policy,
        **_target(name),
    )
    high, low = (a["AlarmName"] for a in out["Alarms"])
    rec = Recorder(backend, name)
    try:
        load_start = rec.now()
        load = Load(backend, name, rate=40)
        try:
            assert rec.wait_for(lambda r: r[1] > 2 and r[3] == "InService" and r[2] == r[1], 30), rec.timeline
        finally:
            load.stop()
        load_stop = rec.now()
        assert load.errors == 0
        assert rec.wait_for(lambda r: r[1] == 2 and r[2] == 2 and r[3] == "InService", 45), rec.timeline
    finally:
        rec.stop()

    # Instance-count timeline: up, then back to MinCapacity, never outside [2, 10].
    desired = [r[1] for r in rec.timeline]
    assert max(desired) > 2 and desired[-1] == 2
    assert all(2 <= r[1] <= 10 and 1 <= r[2] <= 10 for r in rec.timeline), rec.timeline

    def activities() -> list[dict]:
        return aas.describe_scaling_activities(
            ServiceNamespace="sagemaker",
            ResourceId=_target(name)["ResourceId"],
            ScalableDimension=_target(name)["ScalableDimension"],
        )["ScalingActivities"]

    # The variant reads InService at 2 a moment before the driver's next step settles the activity.
    wait_until(lambda: all(a["StatusCode"] != "InProgress" for a in activities()), timeout=30, interval=0.1,
               what="the last scaling activity to settle")
    acts = activities()
    acts.sort(key=lambda a: a["StartTime"])
    first_out, last_in = acts[0], acts[-1]
    assert first_out["Cause"] == f"monitor alarm {high} in state ALARM triggered policy step-policy"
    assert last_in["Cause"] == f"monitor alarm {low} in state ALARM triggered policy step-policy"
    assert last_in["Description"] == "Setting desired instance count to 2."
    assert all(a["StatusCode"] == "Successful" for a in acts), [
        (a["StatusCode"], a["Description"], a.get("StatusMessage")) for a in acts]
    assert all(a["StatusMessage"].startswith("Successfully set desired instance count to") for a in acts)
    # AlarmHigh needs three complete one-minute datapoints above target; the scale-out is decided in
    # the same step. Checked on the datapoints the backend recorded, not on the load's wall clock.
    fired = _went_to_alarm(cw, high)
    assert _ts(first_out["StartTime"]) == fired
    points = _datapoints(cw, name, "InvocationsPerInstance", "Sum", 60, load_start - 600, fired)
    _assert_fired_at_first_chance(points, fired, 60, 3, lambda v: v > 10.0)
    reaction = fired - load_start
    assert reaction >= 120, reaction  # three complete minutes of load cannot come sooner
    # Scale-in needs fifteen one-minute datapoints below 90 % of the target after the load stops.
    low_fired = _went_to_alarm(cw, low)
    low_points = _datapoints(cw, name, "InvocationsPerInstance", "Sum", 60, low_fired - 1200, low_fired)
    assert all(low_points.get(low_fired - (k + 1) * 60, 99.0) < 9.0 for k in range(15)), (low_fired, low_points)
    assert _ts(last_in["StartTime"]) >= low_fired
    assert _ts(last_in["StartTime"]) - load_stop >= 14 * 60
    # The activity lasts as long as SageMaker takes to provision (InProgress -> Successful).
    assert _ts(first_out["EndTime"]) - _ts(first_out["StartTime"]) >= 200

    history = cw.describe_alarm_history(AlarmName=high, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    low_history = cw.describe_alarm_history(AlarmName=low, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    # The record (shown with pytest -s): emulated seconds since the load started.
    print(
        f"\nload {load_start - load_start:.0f}..{load_stop - load_start:.0f} s; timeline (t, desired, current, status):"
    )
    for t, d, c, st in rec.timeline:
        print(f"  {t - load_start:7.0f}  {d:2d} {c:2d}  {st}")
    for h in sorted(history + low_history, key=lambda h: h["Timestamp"]):
        print(
            f"  {_ts(h['Timestamp']) - load_start:7.0f}  {h['AlarmName'].split('-')[-6]}: {h['HistorySummary']}"
        )
    for a in acts:
        print(
            f"  {_ts(a['StartTime']) - load_start:7.0f}..{_ts(a['EndTime']) - load_start:.0f}  {a['StatusCode']}: "
            f"{a['Description']} ({a['Cause'][:60]}...)"
        )
    assert any("to ALARM" in h["HistorySummary"] for h in history)
    assert any("to ALARM" in h["HistorySummary"] for h in low_history)
    [state] = cw.describe_alarms(AlarmNames=[low])["MetricAlarms"]
    assert state["StateValue"] == "ALARM" and state["StateReason"].startswith("Threshold Crossed: ")


def test_high_resolution_metric_answers_the_same_step_sooner(backend):
    name = "hires"
    aas = backend.client("application-autoscaling")
    aas.register_scalable_target(**_target(name), MinCapacity=2, MaxCapacity=10)
    aas.put_scaling_policy(
        PolicyName="hr",
        PolicyType="TargetTrackingScaling",
        **_target(name),
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 1.0,
            "ScaleOutCooldown": 60,
            "ScaleInCooldown": 300,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantConcurrentRequestsPerModelHighResolution"
            },
        },
    )
    start = _emulated_now(backend)
    load = Load(backend, name, rate=40, body=b"0.15", content_type="application/x-slow", threads=8)
    try:
        deadline = time.monotonic() + 60
        acts = []
        while time.monotonic() < deadline and not acts:
            acts = aas.describe_scaling_activities(ServiceNamespace="sagemaker")["ScalingActivities"]
            acts = [a for a in acts if a["ResourceId"] == _target(name)["ResourceId"]]
            time.sleep(0.1)
    finally:
        load.stop()
    assert acts, "no scale-out on the high-resolution metric"
    cw = backend.client("cloudwatch")
    [high] = [a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=f"TargetTracking-endpoint/{name}/")[
        "MetricAlarms"] if "AlarmHigh" in a["AlarmName"]]
    fired = _went_to_alarm(cw, high)
    assert _ts(acts[-1]["StartTime"]) == fired
    # Three 10-second datapoints of ConcurrentRequestsPerModel above 1.0, each the in-flight peak of
    # its own 10-second window: the alarm fired at its first chance ...
    points = _datapoints(cw, name, "ConcurrentRequestsPerModel", "Average", 10, start - 60, fired)
    _assert_fired_at_first_chance(points, fired, 10, 3, lambda v: v > 1.0)
    # ... so a step is answered 30 s after it began to show, where the one-minute metric needs three
    # complete minutes (>= 180 s, previous test).
    run_start = fired - 10
    while points.get(run_start - 10, 0.0) > 1.0:
        run_start -= 10
    reaction = fired - run_start
    print(f"\nhigh-resolution reaction: {reaction:.0f} emulated s after the busy 10-s windows began")
    assert reaction == 30, (reaction, points)


def test_scheduled_night_action_lowers_min_and_max(backend):
    name = "night"
    aas = backend.client("application-autoscaling")
    aas.register_scalable_target(**_target(name), MinCapacity=3, MaxCapacity=10)
    at = datetime.fromtimestamp(_emulated_now(backend) + 120, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    aas.put_scheduled_action(
        **_target(name),
        ScheduledActionName="night",
        Schedule=f"at({at})",
        ScalableTargetAction={"MinCapacity": 1, "MaxCapacity": 2},
    )
    [sa] = aas.describe_scheduled_actions(
        ServiceNamespace="sagemaker",
        ResourceId=_target(name)["ResourceId"],
        ScalableDimension=_target(name)["ScalableDimension"],
    )["ScheduledActions"]
    assert sa["Schedule"] == f"at({at})"
    sm = backend.client("sagemaker")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        d = sm.describe_endpoint(EndpointName=name)
        pv = d["ProductionVariants"][0]
        if (
            pv["DesiredInstanceCount"] == 2
            and pv["CurrentInstanceCount"] == 2
            and d["EndpointStatus"] == "InService"
        ):
            break
        time.sleep(0.2)
    assert (pv["DesiredInstanceCount"], pv["CurrentInstanceCount"]) == (2, 2)
    [t] = aas.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[_target(name)["ResourceId"]]
    )["ScalableTargets"]
    assert (t["MinCapacity"], t["MaxCapacity"]) == (1, 2)
    acts = aas.describe_scaling_activities(
        ServiceNamespace="sagemaker",
        ResourceId=_target(name)["ResourceId"],
        ScalableDimension=_target(name)["ScalableDimension"],
    )["ScalingActivities"]
    causes = [a["Cause"] for a in acts]
    assert causes == ["maximum capacity was set to 2", "scheduled action name night was triggered"]
    assert acts[1]["Description"] == "Setting min capacity to 1 and max capacity to 2"
