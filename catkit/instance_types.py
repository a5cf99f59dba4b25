"""SageMaker hosting instance types: vCPU, memory, accelerators and a bundled on-demand price.

One table for every real-time hosting instance type AWS lists (the ``ProductionVariantInstanceType``
enum of botocore's SageMaker model, 277 types when this table was compiled), shared by the local
backend (CPU and memory budgets of emulated instances, which :mod:`catkit.local.fleet.hardware`
scales down to the machine), the cost helpers (fallback prices when the AWS Pricing API is not
reachable) and the simulator.

Specs are the EC2 equivalents of each type (``ml.m5.xlarge`` = ``m5.xlarge``: 4 vCPU, 16 GiB), from
the EC2 instance-type pages; families whose sizes follow one memory-per-vCPU ratio are generated
from it (general purpose m*: 4 GiB per vCPU, compute c*: 2, memory r*: 8), the others are listed
size by size. Rows marked ``unconfirmed`` below are ASSUMPTIONS (newest families). ``gpus`` counts
accelerators of any kind (NVIDIA GPUs, AWS Inferentia/Trainium chips, Gaudi), named by
``accelerator``.

Prices: USD per instance-hour, us-east-1, real-time inference, as listed on
https://aws.amazon.com/sagemaker/pricing/ (compiled 2026-11 from shared/aws-facts.md §7 and marked
there as unconfirmed - the Pricing API is the source of truth on AWS). Types without a bundled
price have ``price_per_hour`` NaN (:attr:`InstanceType.has_price` is False). ``disk_gib`` is the
emulated storage volume used for model archives and multi-model caches.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

PRICE_SOURCE = "https://aws.amazon.com/sagemaker/pricing/ (us-east-1 on-demand, real-time inference)"
PRICE_DATE = "2026-11"
PRICE_REGION = "us-east-1"

log = logging.getLogger("catkit.instance_types")


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpu: int
    memory_gib: float
    price_per_hour: float = math.nan
    gpus: int = 0
    disk_gib: int = 30
    accelerator: str = ""

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * 1024**3)

    @property
    def has_price(self) -> bool:
        """Whether the bundled table knows this type's price."""
        return not math.isnan(self.price_per_hour)


# vCPUs of each size suffix (EC2's naming: xlarge = 4 vCPU, and N·xlarge = 4·N).
SIZE_VCPU = {
    "medium": 1, "large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "6xlarge": 24, "8xlarge": 32,
    "9xlarge": 36, "10xlarge": 40, "12xlarge": 48, "16xlarge": 64, "18xlarge": 72, "24xlarge": 96,
    "32xlarge": 128, "36xlarge": 144, "48xlarge": 192,
}

# Families whose every size has the same memory per vCPU: family -> (GiB per vCPU, sizes).
_SIZES_M = ("large", "xlarge", "2xlarge", "4xlarge", "12xlarge", "24xlarge")
_SIZES_C5 = ("large", "xlarge", "2xlarge", "4xlarge", "9xlarge", "18xlarge")
_SIZES_6I = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge")
_SIZES_7I = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge")
_SIZES_G = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
_SIZES_G8 = ("medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
             "48xlarge")
_RATIO_FAMILIES: dict[str, tuple[float, tuple[str, ...]]] = {
    "m5": (4, _SIZES_M), "m5d": (4, _SIZES_M), "m6i": (4, _SIZES_6I), "m7i": (4, _SIZES_7I),
    "m6g": (4, _SIZES_G), "m6gd": (4, _SIZES_G), "m8g": (4, _SIZES_G8),
    "c5": (2, _SIZES_C5), "c5d": (2, _SIZES_C5), "c6i": (2, _SIZES_6I), "c6in": (2, _SIZES_6I),
    "c7i": (2, _SIZES_7I), "c6g": (2, _SIZES_G), "c6gd": (2, _SIZES_G), "c6gn": (2, _SIZES_G),
    "c7g": (2, _SIZES_G), "c8g": (2, _SIZES_G8),
    "r5": (8, _SIZES_M), "r5d": (8, _SIZES_M), "r6i": (8, _SIZES_6I), "r7i": (8, _SIZES_7I),
    "r6g": (8, _SIZES_G), "r6gd": (8, _SIZES_G), "r7gd": (8, _SIZES_G8[:8]), "r8g": (8, _SIZES_G8),
}

# Families listed size by size: family -> accelerator, [(size, vCPU, GiB, accelerators)].
_G5_SHAPE = [("xlarge", 4, 16, 1), ("2xlarge", 8, 32, 1), ("4xlarge", 16, 64, 1), ("8xlarge", 32, 128, 1),
             ("12xlarge", 48, 192, 4), ("16xlarge", 64, 256, 1), ("24xlarge", 96, 384, 4), ("48xlarge", 192, 768, 8)]
_G7_SHAPE = [("2xlarge", 8, 64, 1), ("4xlarge", 16, 128, 1), ("8xlarge", 32, 256, 1), ("12xlarge", 48, 512, 2),
             ("24xlarge", 96, 1024, 4), ("48xlarge", 192, 2048, 8)]  # unconfirmed
_LISTED: dict[str, tuple[str, list[tuple[str, int, float, int]]]] = {
    "t2": ("", [("medium", 2, 4, 0), ("large", 2, 8, 0), ("xlarge", 4, 16, 0), ("2xlarge", 8, 32, 0)]),
    "m4": ("", [("xlarge", 4, 16, 0), ("2xlarge", 8, 32, 0), ("4xlarge", 16, 64, 0), ("10xlarge", 40, 160, 0),
                ("16xlarge", 64, 256, 0)]),
    "c4": ("", [("large", 2, 3.75, 0), ("xlarge", 4, 7.5, 0), ("2xlarge", 8, 15, 0), ("4xlarge", 16, 30, 0),
                ("8xlarge", 36, 60, 0)]),
    "p2": ("NVIDIA K80", [("xlarge", 4, 61, 1), ("8xlarge", 32, 488, 8), ("16xlarge", 64, 732, 16)]),
    "p3": ("NVIDIA V100", [("2xlarge", 8, 61, 1), ("8xlarge", 32, 244, 4), ("16xlarge", 64, 488, 8)]),
    "g4dn": ("NVIDIA T4", [("xlarge", 4, 16, 1), ("2xlarge", 8, 32, 1), ("4xlarge", 16, 64, 1),
                           ("8xlarge", 32, 128, 1), ("12xlarge", 48, 192, 4), ("16xlarge", 64, 256, 1)]),
    "g5": ("NVIDIA A10G", _G5_SHAPE),
    "g6": ("NVIDIA L4", _G5_SHAPE),
    "g6e": ("NVIDIA L40S", [(s, c, m * 2, g) for s, c, m, g in _G5_SHAPE]),
    "g7e": ("NVIDIA RTX PRO 6000 Blackwell", _G7_SHAPE),  # unconfirmed
    "g7": ("NVIDIA GPU", _G7_SHAPE),  # unconfirmed: specs assumed equal to g7e
    "inf1": ("AWS Inferentia", [("xlarge", 4, 8, 1), ("2xlarge", 8, 16, 1), ("6xlarge", 24, 48, 4),
                                ("24xlarge", 96, 192, 16)]),
    "inf2": ("AWS Inferentia2", [("xlarge", 4, 16, 1), ("8xlarge", 32, 128, 1), ("24xlarge", 96, 384, 6),
                                 ("48xlarge", 192, 768, 12)]),
    "trn1": ("AWS Trainium", [("2xlarge", 8, 32, 1), ("32xlarge", 128, 512, 16)]),
    "trn1n": ("AWS Trainium", [("32xlarge", 128, 512, 16)]),
    "trn2": ("AWS Trainium2", [("48xlarge", 192, 2048, 16)]),
    "dl1": ("Habana Gaudi", [("24xlarge", 96, 768, 8)]),
    "p4d": ("NVIDIA A100 40GB", [("24xlarge", 96, 1152, 8)]),
    "p4de": ("NVIDIA A100 80GB", [("24xlarge", 96, 1152, 8)]),
    "p5": ("NVIDIA H100", [("4xlarge", 16, 256, 1), ("48xlarge", 192, 2048, 8)]),
    "p5e": ("NVIDIA H200", [("48xlarge", 192, 2048, 8)]),
    "p5en": ("NVIDIA H200", [("48xlarge", 192, 2048, 8)]),
    "p6-b200": ("NVIDIA B200", [("48xlarge", 192, 2048, 8)]),
    "p6-b300": ("NVIDIA B300", [("48xlarge", 192, 4096, 8)]),  # unconfirmed
    "p6e-gb200": ("NVIDIA GB200", [("36xlarge", 144, 960, 4)]),  # unconfirmed
}

# Bundled prices (USD per hour, us-east-1; see the module docstring).
_PRICES: dict[str, float] = {
    "ml.t2.medium": 0.056, "ml.t2.large": 0.111, "ml.t2.xlarge": 0.222,
    "ml.m5.large": 0.115, "ml.m5.xlarge": 0.23, "ml.m5.2xlarge": 0.461, "ml.m5.4xlarge": 0.922,
    "ml.m5.12xlarge": 2.765, "ml.m5.24xlarge": 5.53,
    "ml.m5d.large": 0.136, "ml.m5d.xlarge": 0.271, "ml.m5d.2xlarge": 0.542,
    "ml.c5.large": 0.102, "ml.c5.xlarge": 0.204, "ml.c5.2xlarge": 0.408, "ml.c5.4xlarge": 0.816,
    "ml.c5.9xlarge": 1.836,
    "ml.r5.large": 0.151, "ml.r5.xlarge": 0.302, "ml.r5.2xlarge": 0.605,
    "ml.g4dn.xlarge": 0.7364, "ml.g4dn.2xlarge": 1.0528, "ml.g5.xlarge": 1.408, "ml.g5.2xlarge": 1.515,
    "ml.p3.2xlarge": 3.825,
}


def _build() -> dict[str, InstanceType]:
    table: dict[str, InstanceType] = {}
    for family, (ratio, sizes) in _RATIO_FAMILIES.items():
        for size in sizes:
            vcpu = SIZE_VCPU[size]
            name = f"ml.{family}.{size}"
            table[name] = InstanceType(name, vcpu, vcpu * ratio, _PRICES.get(name, math.nan))
    for family, (accelerator, rows) in _LISTED.items():
        for size, vcpu, memory, gpus in rows:
            name = f"ml.{family}.{size}"
            table[name] = InstanceType(name, vcpu, memory, _PRICES.get(name, math.nan), gpus,
                                       accelerator=accelerator if gpus else "")
    return table


INSTANCE_TYPES: dict[str, InstanceType] = _build()

_NAME_RE = re.compile(r"^ml\.(?P<family>[a-z0-9-]+)\.(?P<size>[0-9]*x?large|medium)$")
_estimated: dict[str, InstanceType] = {}


def hosting_instance_types() -> list[str]:
    """Every real-time hosting instance type AWS accepts (botocore's SageMaker model's
    ``ProductionVariantInstanceType`` enum; this table's names if botocore cannot say)."""
    try:
        import botocore.session

        model = botocore.session.get_session().get_service_model("sagemaker")
        return list(model.shape_for("ProductionVariantInstanceType").enum)
    except Exception:  # pragma: no cover - botocore is a dependency
        return sorted(INSTANCE_TYPES)


def get_instance_type(name: str) -> InstanceType:
    """Look up an instance type; ``KeyError`` with the known names if it is not a hosting type.

    A type AWS lists (botocore's enum) that this table does not know yet - AWS adds families
    between catkit releases - is estimated from its size (EC2's vCPU per size, 4 GiB per vCPU,
    no price) and logged once, so it is never refused."""
    found = INSTANCE_TYPES.get(name) or _estimated.get(name)
    if found is not None:
        return found
    m = _NAME_RE.match(name or "")
    if m and m.group("size") in SIZE_VCPU and name in hosting_instance_types():
        vcpu = SIZE_VCPU[m.group("size")]
        _estimated[name] = found = InstanceType(name, vcpu, vcpu * 4.0)
        log.warning("instance type %s is not in catkit's table; assuming %d vCPU and %g GiB (no price)",
                    name, vcpu, found.memory_gib)
        return found
    known = ", ".join(sorted(INSTANCE_TYPES))
    raise KeyError(f"unknown instance type {name!r}; known: {known}")


__all__ = [
    "INSTANCE_TYPES",
    "PRICE_DATE",
    "PRICE_REGION",
    "PRICE_SOURCE",
    "SIZE_VCPU",
    "InstanceType",
    "get_instance_type",
    "hosting_instance_types",
]
