"""What an emulated instance gets of this machine: its type's vCPU and memory, scaled down to fit.

Every SageMaker hosting instance type is accepted (:mod:`catkit.instance_types`), from
``ml.t2.medium`` to ``ml.p5.48xlarge``; a laptop or a CI runner has a few cores and some GiB.
An instance process is given ``min(type's vCPU, machine's CPUs)`` vCPU (CPUUtilization then reads
0..100·vCPU %, like AWS's sum over cores) and ``min(type's memory, machine's memory)`` of memory
(the budget its process is recycled beyond, and 90% of it for multi-model caches). Accelerators
are not emulated: the model server runs handlers on the CPU. When a type is scaled down, the log
says so once per type.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cache

import psutil

from catkit.instance_types import InstanceType, get_instance_type

log = logging.getLogger("catkit.local.fleet.hardware")

_reported: set[str] = set()


@dataclass(frozen=True)
class Machine:
    """This machine's CPUs and memory."""

    cpus: int
    memory_bytes: int


@dataclass(frozen=True)
class EmulatedHardware:
    """What one instance of ``itype`` gets here (``scaled``: less than the type has)."""

    itype: InstanceType
    vcpu: int
    memory_bytes: int

    @property
    def scaled(self) -> bool:
        return self.vcpu < self.itype.vcpu or self.memory_bytes < self.itype.memory_bytes


@cache
def machine() -> Machine:
    """This machine (read once): usable CPUs and total memory."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return Machine(max(1, cpus), int(psutil.virtual_memory().total))


def emulated(instance_type: str) -> EmulatedHardware:
    """The vCPU and memory an instance of ``instance_type`` is emulated with (logged once per type
    when scaled down or when the type has accelerators)."""
    itype = get_instance_type(instance_type)
    here = machine()
    hw = EmulatedHardware(itype, min(itype.vcpu, here.cpus), min(itype.memory_bytes, here.memory_bytes))
    if instance_type not in _reported and (hw.scaled or itype.gpus):
        _reported.add(instance_type)
        notes = []
        if hw.scaled:
            notes.append(
                f"{itype.vcpu} vCPU and {itype.memory_gib:g} GiB on AWS; this machine has {here.cpus} CPUs and "
                f"{here.memory_bytes / 2**30:.1f} GiB, so each instance is emulated with {hw.vcpu} vCPU and "
                f"{hw.memory_bytes / 2**30:.1f} GiB"
            )
        if itype.gpus:
            notes.append(f"its {itype.gpus} x {itype.accelerator} are not emulated: models run on the CPU")
        log.info("instance type %s: %s", instance_type, "; ".join(notes))
    return hw


__all__ = ["EmulatedHardware", "Machine", "emulated", "machine"]
