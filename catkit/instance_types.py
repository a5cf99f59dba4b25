"""SageMaker real-time instance types: vCPU, memory, GPU and a bundled on-demand price.

One table shared by the local backend (memory/disk budgets, validation of unknown types), the
cost helpers (fallback prices when the AWS Pricing API is not reachable) and the simulator.

Prices: USD per instance-hour, us-east-1, real-time inference, as listed on
https://aws.amazon.com/sagemaker/pricing/ (table compiled 2026-11 from shared/aws-facts.md §7;
marked there as unconfirmed - the Pricing API is the source of truth on AWS). vCPU/memory are the
EC2 equivalents. ``disk_gib`` is the emulated instance storage volume used for multi-model caches.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICE_SOURCE = "https://aws.amazon.com/sagemaker/pricing/ (us-east-1 on-demand, real-time inference)"
PRICE_DATE = "2026-11"
PRICE_REGION = "us-east-1"


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpu: int
    memory_gib: float
    price_per_hour: float
    gpus: int = 0
    disk_gib: int = 30

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * 1024**3)


def _t(name: str, vcpu: int, mem: float, price: float, gpus: int = 0, disk: int = 30) -> InstanceType:
    return InstanceType(name, vcpu, mem, price, gpus, disk)


INSTANCE_TYPES: dict[str, InstanceType] = {
    t.name: t
    for t in (
        _t("ml.t2.medium", 2, 4, 0.056),
        _t("ml.t2.large", 2, 8, 0.111),
        _t("ml.t2.xlarge", 4, 16, 0.222),
        _t("ml.m5.large", 2, 8, 0.115),
        _t("ml.m5.xlarge", 4, 16, 0.23),
        _t("ml.m5.2xlarge", 8, 32, 0.461),
        _t("ml.m5.4xlarge", 16, 64, 0.922),
        _t("ml.m5.12xlarge", 48, 192, 2.765),
        _t("ml.m5.24xlarge", 96, 384, 5.53),
        _t("ml.m5d.large", 2, 8, 0.136),
        _t("ml.m5d.xlarge", 4, 16, 0.271),
        _t("ml.m5d.2xlarge", 8, 32, 0.542),
        _t("ml.c5.large", 2, 4, 0.102),
        _t("ml.c5.xlarge", 4, 8, 0.204),
        _t("ml.c5.2xlarge", 8, 16, 0.408),
        _t("ml.c5.4xlarge", 16, 32, 0.816),
        _t("ml.c5.9xlarge", 36, 72, 1.836),
        _t("ml.r5.large", 2, 16, 0.151),
        _t("ml.r5.xlarge", 4, 32, 0.302),
        _t("ml.r5.2xlarge", 8, 64, 0.605),
        _t("ml.g4dn.xlarge", 4, 16, 0.7364, gpus=1),
        _t("ml.g4dn.2xlarge", 8, 32, 1.0528, gpus=1),
        _t("ml.g5.xlarge", 4, 16, 1.408, gpus=1),
        _t("ml.g5.2xlarge", 8, 32, 1.515, gpus=1),
        _t("ml.p3.2xlarge", 8, 61, 3.825, gpus=1),
    )
}


def get_instance_type(name: str) -> InstanceType:
    """Look up an instance type; ``KeyError`` with the known names if it is not in the table."""
    try:
        return INSTANCE_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(INSTANCE_TYPES))
        raise KeyError(f"unknown instance type {name!r}; known: {known}") from None
