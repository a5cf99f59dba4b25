"""Agreement: the simulator and the local backend scale the same traffic the same way.

One local backend at time scale 60 (one emulated minute per real second) serves an echo model on
one instance; the load generator replays a step-up / step-down shape against it while a
target-tracking policy (1-minute InvocationsPerInstance) scales it. The simulator runs the same
shape, settings and start time, with the provisioning delay the backend showed when it created
the endpoint. The simulator is given the requests as the endpoint recorded them (the plan moved by
how late the load generator sent them), so a busy test machine does not count as disagreement.
Each scaling event (new capacity and decision time, from DescribeScalingActivities and from the
simulator's engine) must match within one metric period (60 s).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from catkit import deploy as d
from catkit.local import lifecycle
from catkit.session import Session
from catkit.testing import echo_archive
from catkit.whatif import load
from catkit.whatif.simulate import ScalingConfig, compare_with_endpoint, simulated_capacity_events

pytestmark = pytest.mark.slow

TIME_SCALE = 60.0
PROVISIONING_S = 60.0  # emulated; the instance process start adds its real start-up time x 60
METRIC_PERIOD_S = 60.0
# Per emulated minute: 0.2 req/s, then 1.45 req/s for 9 minutes (87 invocations/min on one
# instance > target 30 -> scale out to ceil(87/30) = 3, where 29 per instance sits between the
# scale-in threshold 27 and the target), then 0.1 req/s (2 per instance per minute < 27 for 15
# minutes -> scale in to 1). Scale-in timing thus depends on the traffic, not on how long the
# instance processes took to start.
SHAPE = load.Replay.from_rates([0.2] + [1.45] * 9 + [0.1] * 21, step_s=60)
DURATION_S = 31 * 60.0
# A scale-out cooldown longer than the launch keeps the metric lag after a scale-out (the minute in
# which new instances join still reads high) from adding a borderline extra instance, which the two
# runs could resolve differently by a second of process start-up.
CONFIG = ScalingConfig(
    min_capacity=1, max_capacity=4, target_value=30.0, scale_out_cooldown=300, scale_in_cooldown=120
)


def _archive(path: Path) -> str:
    path.write_bytes(echo_archive())
    return str(path)


@pytest.fixture
def scaled_backend(monkeypatch: pytest.MonkeyPatch):
    home = Path(tempfile.mkdtemp(prefix="catkit-agreement-"))
    monkeypatch.setenv("CATKIT_HOME", str(home))
    monkeypatch.setenv("CATKIT_PROVISIONING_SECONDS", str(PROVISIONING_S))
    try:
        yield Session(backend="local", home=str(home), time_scale=TIME_SCALE), home
    finally:
        lifecycle.stop(home, timeout=15)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.filterwarnings("ignore::catkit.deploy.HighAvailabilityWarning")
def test_simulator_matches_local_backend_instance_timeline(scaled_backend):
    session, home = scaled_backend
    ep = d.deploy(session, _archive(home / "echo.tar.gz"), name="agree", image_uri="local/echo:1",
                  instance_count=1, poll=0.2, progress=False)
    desc = ep.description
    # What one instance launch takes here (emulated): the provisioning delay plus process start.
    launch_s = (desc["LastModifiedTime"] - desc["CreationTime"]).total_seconds()
    assert launch_s >= PROVISIONING_S

    cmp = compare_with_endpoint(session, "agree", SHAPE, CONFIG, duration_s=DURATION_S, provisioning_s=launch_s,
                                max_in_flight=64)
    assert cmp.load.time_scale == TIME_SCALE
    assert cmp.load.ok == cmp.load.requests  # every request served (no overload on the echo model)
    print("\nlaunch (emulated s):", launch_s, "\n", cmp.table.to_string())

    assert [c for _, c, _ in simulated_capacity_events(cmp.simulated)] == [3, 1]
    assert [c for _, c, _ in cmp.emulated] == [3, 1], cmp.emulated
    assert cmp.max_diff_s <= METRIC_PERIOD_S, cmp.table
    fig = cmp.plot()
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2 and max(lines[1].get_ydata()) == 3
    import matplotlib.pyplot as plt

    plt.close(fig)
