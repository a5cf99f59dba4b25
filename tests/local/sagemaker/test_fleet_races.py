"""Capacity races of the fleet (found by benchmarks/chaos.py: an auto-scaled variant with
MaxCapacity 3 had 4 instances in service): a replacement and a scale-out decided in the same event
loop step must not both launch."""

from __future__ import annotations

import asyncio


def test_replacement_and_scale_out_at_the_same_moment_launch_once(h):
    async def body(h):
        assert (await h.deploy("race"))["EndpointStatus"] == "InService"
        ep = h.manager._endpoints["race"]
        (v,) = ep.variants
        v.props["DesiredInstanceCount"] = 2  # the scaling step's new desired count ...
        scale = asyncio.ensure_future(h.manager.pool.scale("race", v, 2))  # ... launches one
        replace = asyncio.ensure_future(h.manager._replace(ep, v))  # a replacement decided meanwhile
        await asyncio.gather(scale, replace)
        assert len(v.active()) == 2, v.instances
        assert v.current_count == 2

    h.run(body)
