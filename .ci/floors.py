"""Dependency floors: print a pip constraints file pinning every requirement of pyproject.toml
(runtime and the dev and sdk2 extras) to the lowest version it allows (``name==X`` for ``name>=X``).

``python .ci/floors.py > constraints.txt``; ``--check`` instead compares the installed versions
with the floors and exits 1 on a difference. Used by ``.ci/floors``.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_REQ = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$")


def floors() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    reqs = list(project.get("dependencies", [])) + list(extras.get("dev", [])) + list(extras.get("sdk2", []))
    out: dict[str, str] = {}
    for req in reqs:
        m = _REQ.match(req.split(";")[0])
        if not m:
            continue
        low = re.search(r">=\s*([0-9][^,\s]*)", m.group(2))
        if low:
            out[m.group(1).lower()] = low.group(1)
    return out


def main(argv: list[str]) -> int:
    pins = floors()
    if "--check" not in argv:
        print("\n".join(f"{name}=={version}" for name, version in sorted(pins.items())))
        return 0
    wrong = []
    for name, version in sorted(pins.items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name}: not installed")
            continue
        if installed != version and not installed.startswith(version + "."):
            wrong.append(f"{name}: {installed} installed, floor {version}")
    print("\n".join(wrong) or f"all {len(pins)} requirements at their floor")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
