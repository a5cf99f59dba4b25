"""``make demo``: run every notebook headless against the local backend, print a short summary.

Executed notebooks, their figures (PNG) and an HTML walkthrough of each (``out/<name>.html``,
figures embedded, widgets in their final state; :mod:`.walkthrough`) land in ``out/``, with
``out/index.html`` linking them. The local backend keeps its state in ``$CATKIT_HOME`` (default
``out/catkit-home`` for the demo, so a demo never touches your own ``~/.catkit``) and is stopped
at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from catkit.notebook.runner import REPO_ROOT, NotebookRun, notebook_paths, run_notebook


def _headline(run: NotebookRun) -> str:
    return run.results.get("headline") or ((run.error or "").splitlines() or [""])[0][:160]


def _summary_line(run: NotebookRun) -> str:
    status = "ok  " if run.ok else "FAIL"
    return f"[{status}] {run.name:<32} {run.seconds:6.1f} s  {_headline(run)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="catkit demo", description=__doc__)
    parser.add_argument("--out", default=str(REPO_ROOT / "out"), help="output folder (default: out/)")
    parser.add_argument("--only", nargs="*", help="notebook names (stems) to run; default all")
    parser.add_argument("--keep-backend", action="store_true", help="leave the local backend running")
    args = parser.parse_args(argv)

    out_root = Path(args.out).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CATKIT_HOME", str(out_root / "catkit-home"))
    paths = notebook_paths(args.only)
    if not paths:
        print("no notebooks found in notebooks/", file=sys.stderr)
        return 1
    print(f"catkit demo: {len(paths)} notebooks -> {out_root} (CATKIT_HOME={os.environ['CATKIT_HOME']})")
    runs: list[NotebookRun] = []
    try:
        for path in paths:
            print(f"  running {path.name} ...", flush=True)
            run = run_notebook(path, out_root)
            runs.append(run)
            print("  " + _summary_line(run), flush=True)
    finally:
        if not args.keep_backend:
            _stop_backend()
    figures = sorted(p.relative_to(out_root) for p in out_root.glob("*/*.png"))
    print(f"\n{sum(r.ok for r in runs)}/{len(runs)} notebooks ok, {sum(r.seconds for r in runs):.1f} s; "
          f"{len(figures)} figures:")
    for fig in figures:
        print(f"  {out_root / fig}")
    index = _walkthroughs(runs, out_root)
    if index is not None:
        print(f"\nwalkthroughs (HTML): {index}")
    return 0 if all(r.ok for r in runs) else 1


def _walkthroughs(runs: list[NotebookRun], out_root: Path) -> Path | None:
    """Render each executed notebook to HTML and write ``index.html``; None without nbconvert."""
    try:
        from catkit.notebook.walkthrough import render_html, write_index
    except ImportError as exc:  # nbconvert comes with the dev extra
        print(f"warning: no HTML walkthroughs ({exc}); install catkit[dev]", file=sys.stderr)
        return None
    entries = []
    for run in runs:
        page = None
        if run.output_notebook.exists():
            try:
                page = render_html(run.output_notebook)
            except Exception as exc:  # one page failing must not hide the others
                print(f"warning: could not render {run.output_notebook.name}: {exc}", file=sys.stderr)
        entries.append({"name": run.name, "html": page, "ok": run.ok, "seconds": run.seconds,
                        "headline": _headline(run),
                        "figures": sorted(run.out_dir.glob("*.png"))})
    return write_index(out_root, entries)


def _stop_backend() -> None:
    try:
        from catkit.local import lifecycle
    except ImportError:
        return
    try:
        lifecycle.stop()
    except Exception as exc:  # report, never mask the demo result
        print(f"warning: could not stop the local backend: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
