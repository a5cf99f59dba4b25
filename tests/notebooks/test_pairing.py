"""Every notebook is a jupytext percent script paired with an .ipynb, and the two never drift apart."""

from __future__ import annotations

from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SCRIPTS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def _cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells if c.source.strip()]


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script_and_notebook_have_the_same_cells(script: Path) -> None:
    ipynb = script.with_suffix(".ipynb")
    assert ipynb.exists(), f"{script.name} has no paired {ipynb.name}: run `jupytext --sync {script}`"
    from_script = jupytext.read(script)
    from_ipynb = jupytext.read(ipynb)
    assert _cells(from_script) == _cells(from_ipynb), (
        f"{script.name} and {ipynb.name} differ: run `jupytext --sync {script}`"
    )


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_notebook_has_a_papermill_parameters_cell(script: Path) -> None:
    nb = jupytext.read(script)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{script.name} needs exactly one cell tagged 'parameters'"
    for name in ("backend", "out_dir", "run_id"):
        assert name in tagged[0].source, f"{script.name}: parameter {name!r} missing"


def test_every_ipynb_has_a_script() -> None:
    orphans = [p.name for p in NOTEBOOKS.glob("*.ipynb") if not p.with_suffix(".py").exists()]
    assert not orphans, f"notebooks without a paired .py: {orphans}"
