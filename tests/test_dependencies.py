"""The install story stays consistent: pyproject.toml, environment.yml, uv.lock and the pip constraints.

- the core install does not constrain the SageMaker SDK; ``sdk2`` and ``sdk3`` pick a generation;
- moto comes with the S3/STS/IAM extras only (no ``moto[server]``: cfn-lint, sympy, docker ...);
- environment.yml (conda, for Studio) has every core requirement with the same specifier;
- uv.lock was resolved from the current pyproject (``make lock`` after any dependency change) and
  the pip constraints exported from it pin the same versions.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names where they differ from PyPI's.
CONDA_NAMES = {"matplotlib": "matplotlib-base"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _core() -> list[Requirement]:
    return [Requirement(r) for r in _pyproject()["project"]["dependencies"]]


def _lock() -> dict:
    return tomllib.loads((ROOT / "uv.lock").read_text())


def _spec(text: str) -> frozenset[str]:
    return frozenset(str(s) for s in SpecifierSet(text))


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_core_install_leaves_the_sagemaker_sdk_alone() -> None:
    assert "sagemaker" not in {_canon(r.name) for r in _core()}
    extras = _pyproject()["project"]["optional-dependencies"]
    sdk2, sdk3 = Requirement(extras["sdk2"][0]), Requirement(extras["sdk3"][0])
    assert sdk2.name == sdk3.name == "sagemaker"
    assert "2.257.7" in sdk2.specifier and "3.27.0" not in sdk2.specifier
    assert "3.27.0" in sdk3.specifier and "2.257.7" not in sdk3.specifier
    conflicts = _pyproject()["tool"]["uv"]["conflicts"]
    assert [{"extra": "sdk2"}, {"extra": "sdk3"}] in conflicts


def test_only_the_moto_services_catkit_emulates() -> None:
    (moto,) = [r for r in _core() if r.name == "moto"]
    assert moto.extras == {"s3", "sts", "iam"}
    names = {_canon(r.name) for r in _core()}
    assert {"flask", "flask-cors"} <= names  # moto's server app is a Flask app (catkit.local.backend)
    locked = {_canon(p["name"]) for p in _lock()["package"]}
    core_closure = _closure({"catkit"}, extras=set())
    for heavy in ("cfn-lint", "sympy", "networkx", "docker", "aws-xray-sdk"):
        assert heavy not in core_closure, f"{heavy} is in the core install"
    assert "locust" in locked and "locust" not in core_closure  # behind catkit[locust]


def _closure(roots: set[str], extras: set[str]) -> set[str]:
    """Package names the core install (plus ``extras`` of catkit) pulls in, from uv.lock."""
    packages: dict[str, list[dict]] = {}
    for p in _lock()["package"]:
        packages.setdefault(_canon(p["name"]), []).append(p)
    seen: set[str] = set()
    todo = [(r, extras if r == "catkit" else set()) for r in roots]
    while todo:
        name, wanted = todo.pop()
        if name in seen and not wanted:
            continue
        seen.add(name)
        for p in packages.get(name, []):
            deps = list(p.get("dependencies", []))
            for extra in wanted:
                deps += p.get("optional-dependencies", {}).get(extra, [])
            for d in deps:
                todo.append((_canon(d["name"]), set(d.get("extra", []))))
    return seen


def test_environment_yml_agrees_with_pyproject() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda: dict[str, str] = {}
    pip: list[str] = []
    for item in env["dependencies"]:
        if isinstance(item, dict):
            pip += item["pip"]
            continue
        m = re.match(r"^([A-Za-z0-9_.\-]+)(.*)$", item)
        conda[_canon(m.group(1))] = m.group(2).replace(" ", "")
    pip_reqs = {_canon(Requirement(p).name): Requirement(p) for p in pip if not p.startswith("-e")}
    assert "-e ." in pip
    for req in _core():
        name = _canon(req.name)
        if name in pip_reqs:
            assert pip_reqs[name].specifier == req.specifier and pip_reqs[name].extras == req.extras, req
        else:
            conda_name = CONDA_NAMES.get(name, name)
            assert conda_name in conda, f"{req} is missing from environment.yml"
            assert conda[conda_name] == str(req.specifier) or set(conda[conda_name].split(",")) == {
                str(s) for s in req.specifier
            }, f"environment.yml pins {conda_name}{conda[conda_name]}, pyproject {req}"
    listed = set(conda) | set(pip_reqs)
    core = {CONDA_NAMES.get(_canon(r.name), _canon(r.name)) for r in _core()} | {_canon(r.name) for r in _core()}
    assert listed - {"python", "pip"} <= core, "environment.yml lists packages that pyproject.toml does not"


def test_uv_lock_was_resolved_from_this_pyproject() -> None:
    (catkit,) = [p for p in _lock()["package"] if p["name"] == "catkit"]
    locked = {(_canon(d["name"]), _spec(d.get("specifier", "")), tuple(sorted(d.get("extras", []))),
               d.get("marker", "")) for d in catkit["metadata"]["requires-dist"]}
    project = _pyproject()["project"]
    wanted = set()
    for extra, reqs in [(None, project["dependencies"]), *project["optional-dependencies"].items()]:
        for text in reqs:
            r = Requirement(text)
            marker = f"extra == '{extra}'" if extra else ""
            wanted.add((_canon(r.name), _spec(str(r.specifier)), tuple(sorted(r.extras)), marker))
    assert locked == wanted, "uv.lock is stale: run `make lock`"
    assert sorted(catkit["metadata"]["provides-extras"]) == sorted(project["optional-dependencies"])


@pytest.mark.parametrize("name", ["constraints.txt", "constraints-sdk3.txt"])
def test_pip_constraints_pin_the_locked_versions(name: str) -> None:
    versions: dict[str, set[str]] = {}
    for p in _lock()["package"]:
        if "version" in p:
            versions.setdefault(_canon(p["name"]), set()).add(p["version"])
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", (ROOT / "requirements" / name).read_text(), re.M)
    assert len(pins) > 50
    for pkg, version in pins:
        assert version in versions.get(_canon(pkg), set()), f"{name}: {pkg}=={version} is not in uv.lock"
    sdk = dict((_canon(p), v) for p, v in pins)["sagemaker"]
    assert sdk.startswith("3.") == (name == "constraints-sdk3.txt")


def test_license_is_an_spdx_expression() -> None:
    """setuptools >= 77 deprecates the ``{text = ...}`` table (PEP 639)."""
    project = _pyproject()
    assert project["project"]["license"] == "Apache-2.0"
    assert any(r.startswith("setuptools>=77") for r in project["build-system"]["requires"])
