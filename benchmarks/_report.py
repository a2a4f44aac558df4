"""Shared pieces of the small benchmark scripts (diameter.py, seeds.py, realism.py): real-data check and output."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path

import _real

import manifoldseg as ms


def parse_args(argv, description: str, cases: list[str], output: Path) -> argparse.Namespace:
    """``--seeds`` (default 0 1 2), ``--cases`` (default all; CosMx left out without its files) and
    ``--output``; manifoldseg's INFO log is silenced. :func:`case_seeds` gives a case's seeds."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0 1 2 on the simulator, 0-44 on CosMx)")
    ap.add_argument("--cases", nargs="+", default=list(cases), choices=list(cases))
    ap.add_argument("--output", type=Path, default=output)
    args = ap.parse_args(argv)
    args.seeds_given = args.seeds is not None
    if args.seeds is None:
        args.seeds = [0, 1, 2]
    logging.disable(logging.INFO)
    args.cases = available_cases(args.cases)
    return args


def case_seeds(args: argparse.Namespace, case: str) -> list[int]:
    """The seeds a case runs: those given with ``--seeds``, else 0 1 2, and on the CosMx FOVs (where
    the seed is the method's only) ``accuracy.COSMX_SEEDS``: a median of 3, or even 9, is too noisy
    there."""
    if args.seeds_given or not case.startswith("cosmx"):
        return list(args.seeds)
    from accuracy import COSMX_SEEDS

    return list(COSMX_SEEDS)


def run_cases(args: argparse.Namespace, one, describe) -> list[dict]:
    """Rows of ``one(case, seed)`` (a row or a list of rows) for every case and its seeds
    (:func:`case_seeds`), each seed's progress printed as ``describe(rows of that seed)``."""
    rows: list[dict] = []
    for case in args.cases:
        for seed in case_seeds(args, case):
            out = one(case, seed)
            out = out if isinstance(out, list) else [out]
            rows.extend(out)
            print(f"{case} seed {seed}: {describe(out)}", flush=True)
    return rows


def available_cases(cases: list[str]) -> list[str]:
    """``cases`` without the CosMx ones when the CosMx files are not found (with a note on stderr)."""
    if any(c.startswith("cosmx") for c in cases) and _real.data_dir() is None:
        print("the CosMx files are not found (../shared/data or $MANIFOLDSEG_DATA): CosMx cases skipped",
              file=sys.stderr)
        return [c for c in cases if not c.startswith("cosmx")]
    return list(cases)


def heading(title: str, result: dict) -> str:
    """Markdown title line with the run's date and commit (``result["date"]``, ``result["git"]``)."""
    git = result["git"]
    return (f"# {title} ({result['date']}, commit {git.get('commit', '?')[:10]}"
            f"{' (dirty tree)' if git.get('dirty') else ''})\n\n")


def write_results(output: Path, result: dict, markdown: str) -> Path:
    """Write ``result`` as JSON to ``output`` and ``markdown`` beside it (``.md``), each atomically."""
    output.parent.mkdir(parents=True, exist_ok=True)
    md = output.with_suffix(".md")
    for path, content in ((output, json.dumps(result, indent=1, default=str)), (md, markdown)):
        with ms.io.atomic_path(path, overwrite=True) as tmp:
            Path(tmp).write_text(content)
    print(f"\nwrote {output} and {md}")
    return md


def finish(output: Path, title: str, note: str, text: str, t0: float, *, tail: str = "", **data) -> Path:
    """Print the ``text`` table (and ``tail``), then write the run's record (date, machine, git
    commit, seconds since ``t0``, then ``data``) as JSON to ``output`` and a markdown page beside it:
    the :func:`heading` line for ``title``, ``note``, the table and ``tail``."""
    import accuracy
    from scaling import machine

    print()
    print(text)
    if tail:
        print(tail)
    result = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine(),
              "git": accuracy._git(), "seconds": round(time.perf_counter() - t0, 1), **data}
    page = heading(title, result) + note + "\n\n" + text + "\n" + (tail + "\n" if tail else "")
    return write_results(output, result, page)
