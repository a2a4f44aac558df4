"""The ``manifoldseg`` command line: ``segment``, ``simulate``, ``evaluate``, ``report``, ``demo``.

The command line only parses arguments and calls the Python API (``ms.io``, ``ms.tl``,
``ms.metrics``, ``manifoldseg.report``). Nothing heavy is imported at module level, so
``manifoldseg --help`` answers at once.

Exit codes: 0 success; 1 failure, with a one-line message on stderr that names the problem and
the fix (``--debug`` shows the traceback); 2 usage error; 130 interrupted (Ctrl-C). An existing
output is never overwritten without ``--force``, the input is never written to, and every output
is written to a temporary file that is renamed into place only when all outputs succeeded, so a
failed or interrupted run leaves no partial file.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from ._version import __version__

PROG = "manifoldseg"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet", ".pq")
# obs columns the transcript reader writes itself (a --prior-key among them is not a table column)
_READER_COLUMNS = {"vendor_nucleus", "vendor_cell", "vendor_compartment", "overlaps_nucleus", "gene", "fov",
                   "qv", "z_plane", "input_row"}

logger = logging.getLogger("manifoldseg")

_EPILOG = """\
examples:
  manifoldseg demo                                   simulate a small tissue, segment it, print scores
  manifoldseg segment spots.h5ad -o segmented.h5ad --cells cells.h5ad
  manifoldseg segment transcripts.parquet -o labeled.parquet --boundaries cells.geojson
  manifoldseg segment tx_file.csv -o labeled.csv.gz --platform cosmx --prior-key vendor_nucleus
  manifoldseg segment table.csv -o out.csv --x X_um --y Y_um --gene target --cell-diameter 12
  manifoldseg simulate tissue.h5ad --width 200 --height 200
  manifoldseg evaluate segmented.h5ad --truth-key true_cell --json
  manifoldseg report segmented.h5ad -o report.html

Exit codes: 0 ok, 1 failure (one-line message; --debug for the traceback), 2 usage error,
130 interrupted. Outputs are never overwritten without --force and never left half-written.
Run 'manifoldseg COMMAND --help' for the options of each command.
"""


class UsageError(Exception):
    """A bad combination of arguments (exit code 2)."""


# --------------------------------------------------------------------------------------------- #
# argument parsing
# --------------------------------------------------------------------------------------------- #
def _number(text: str, ok, expected: str, not_a_number: str = "a number") -> float:
    """A float that passes ``ok``; the argparse errors name what was ``expected``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {not_a_number}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _fraction(text: str) -> float:
    return _number(text, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]", "a number in [0, 1]")


def _nuclear_genes_arg(text: str):
    """``--nuclear-genes``: ``"auto"``, ``None`` (none) or a list of gene names."""
    t = text.strip()
    if t.lower() == "auto":
        return "auto"
    if t.lower() == "none":
        return None
    names = [g.strip() for g in t.split(",") if g.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected auto, none, or gene names separated by commas, got {text!r}")
    return names


def _positive_float(text: str) -> float:
    return _number(text, lambda v: 0.0 < v < float("inf"), "a positive number")


def _non_negative_float(text: str) -> float:
    return _number(text, lambda v: 0.0 <= v < float("inf"), "a number >= 0")


def _int_jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer (-1 = all cores), got {text!r}") from None
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or -1 (all cores), got {text!r}")
    return value


def _common(quiet: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("general")
    if quiet:
        g.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary line")
    g.add_argument("-v", "--verbose", action="store_true", help="log each step (INFO messages on stderr)")
    g.add_argument("--debug", action="store_true", help="show the full traceback when something fails")
    return p


def _table_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "transcript tables", "how to read a CSV/TSV/Parquet/GEM table (ignored for .h5ad); see ms.io.read_transcripts"
    )
    g.add_argument("--platform", choices=("xenium", "merscope", "cosmx", "stereoseq", "generic"),
                   help="column preset (default: detected from the column names)")
    g.add_argument("--x", metavar="COL", help="column of x coordinates")
    g.add_argument("--y", metavar="COL", help="column of y coordinates")
    g.add_argument("--z", metavar="COL", help="column of z coordinates (3D)")
    g.add_argument("--gene", metavar="COL", help="column of gene names")
    g.add_argument("--count", metavar="COL", help="column of counts per row (Stereo-seq MIDCount)")
    g.add_argument("--pixel-size", type=_positive_float, metavar="UM", help="um per coordinate unit (CosMx 0.18)")
    g.add_argument("--min-qv", type=float, metavar="Q", help="keep rows with qv >= Q (Xenium; 20 is usual)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``manifoldseg`` (all subcommands)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Cell segmentation for subcellular spatial transcriptomics from RNA alone "
        "(spots/bins such as Stereo-seq or Visium HD, or single transcripts such as Xenium, MERSCOPE, CosMx).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    common = _common()
    fmt = argparse.RawDescriptionHelpFormatter

    # segment
    p = sub.add_parser(
        "segment", parents=[common], formatter_class=fmt, help="segment spots or transcripts into cells",
        description="Segment an .h5ad of spots (obsm['spatial'] in um) or a transcript table into cells.\n\n"
        "INPUT .h5ad -> OUTPUT .h5ad: the input spots, in their order, with obs['cell_id'] (-1 = background)\n"
        "and obs['cell_id_confidence'] added.\n"
        "INPUT table (.csv, .csv.gz, .tsv, .parquet, .gem) -> OUTPUT .csv/.csv.gz/.tsv/.parquet: every input\n"
        "row in its order with all its columns plus cell_id and cell_id_confidence (rows the reader\n"
        "dropped, e.g. control probes, get cell_id -1), or OUTPUT .h5ad (the transcripts as AnnData).",
        epilog="examples:\n"
        "  manifoldseg segment spots.h5ad -o segmented.h5ad --cells cells.h5ad --boundaries cells.geojson\n"
        "  manifoldseg segment transcripts.csv.gz -o labeled.parquet --platform xenium --min-qv 20\n"
        "  manifoldseg segment tissue.h5ad -o out.h5ad --prior-key nucleus --cell-diameter 10 --seed 1",
    )
    p.add_argument("input", metavar="INPUT", help="spots .h5ad or transcript table")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="segmented spots/transcripts")
    p.add_argument("--cells", metavar="CELLS.h5ad", help="also write the cells x genes AnnData (ms.tl.aggregate)")
    p.add_argument("--boundaries", metavar="CELLS.geojson", help="also write cell polygons as GeoJSON")
    p.add_argument("--spatialdata", metavar="OUT.zarr",
                   help="also write a SpatialData zarr (needs: pip install 'manifoldseg[spatialdata]')")
    g = p.add_argument_group("segmentation")
    g.add_argument("--cell-diameter", type=_positive_float, metavar="UM",
                   help="typical cell diameter in um (default: estimated from the data); a prior combined with "
                        "the data's estimate when they agree within 0.57-1.75x")
    g.add_argument("--fixed-diameter", action="store_true",
                   help="use --cell-diameter as given, not combined with the data's estimate")
    g.add_argument("--prior-key", metavar="KEY",
                   help="obs column (h5ad) or table column of nucleus ids (-1 outside nuclei) used as seeds")
    g.add_argument("--nuclear-genes", type=_nuclear_genes_arg, default="auto", metavar="GENES",
                   help="nuclear-retained RNA the nuclear contrast is weighted towards: auto (found from the "
                        "data; default), none, or gene names separated by commas (e.g. MALAT1,NEAT1)")
    g.add_argument("--spatial-key", default=None, metavar="KEY", help="obsm key of coordinates (h5ad; default spatial)")
    g.add_argument("--key-added", default=None, metavar="NAME",
                   help="name of the label column (default cell_id; manifoldseg_cell_id when a table has cell_id)")
    g.add_argument("--tile-size", type=_positive_float, metavar="UM", help="segment in tiles of this side (large data)")
    g.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address for tiles (e.g. tcp://host:8786)")
    g.add_argument("--n-jobs", type=_int_jobs, metavar="N", help="threads (-1 = all cores; results do not depend on it)")
    g.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    _table_options(p)
    p.set_defaults(func=_cmd_segment)

    # simulate
    p = sub.add_parser(
        "simulate", parents=[common], formatter_class=fmt, help="simulate a tissue with known cells",
        description="Simulate a tissue of known cells (ms.datasets.simulate).\n\n"
        "OUT.h5ad: spots (bins) or transcripts with obs true_cell, true_type, nucleus.\n"
        "OUT.csv/.csv.gz/.tsv/.parquet (transcripts mode): a table x, y[, z], gene, true_cell, true_type,\n"
        "nucleus that 'manifoldseg segment' reads back.",
        epilog="examples:\n  manifoldseg simulate tissue.h5ad --width 200 --height 200 --bin-size 2\n"
        "  manifoldseg simulate transcripts.csv --mode transcripts --seed 3",
    )
    p.add_argument("output", metavar="OUT", help="output .h5ad, or a table for transcripts")
    p.add_argument("--mode", choices=("bins", "transcripts"),
                   help="bins (spots) or transcripts (default: bins for .h5ad, transcripts for tables)")
    p.add_argument("--width", type=_positive_float, default=250.0, metavar="UM", help="width in um (default 250)")
    p.add_argument("--height", type=_positive_float, default=250.0, metavar="UM", help="height in um (default 250)")
    p.add_argument("--depth", type=_positive_float, metavar="UM", help="thickness in um for 3D coordinates")
    p.add_argument("--bin-size", type=_positive_float, metavar="UM", help="bin side in um (bins mode; default 1)")
    p.add_argument("--false-positive-fraction", type=_fraction, default=0.0, metavar="F",
                   help="share of transcripts whose gene is decoding noise spread over the panel "
                        "(default 0; CosMx-like about 0.45)")
    p.add_argument("--clumping", type=_non_negative_float, default=0.0, metavar="V",
                   help="variance of a gamma multiplier of each cell pixel's RNA: sub-cellular clumps "
                        "(default 0 = Poisson; CosMx-like 2 with --diffusion 0.3, see benchmarks/realism.py)")
    p.add_argument("--background-clumping", type=_non_negative_float, default=0.0, metavar="V",
                   help="the same for the ambient background between cells (default 0; CosMx-like 4)")
    p.add_argument("--nuclear-retained", type=_fraction, default=0.0, metavar="F",
                   help="share of each cell's transcripts from one nuclear-retained RNA made in the "
                        "nucleus (default 0; CosMx Lung12's MZT2A about 0.1)")
    p.add_argument("--diffusion", type=_non_negative_float, default=0.6, metavar="UM",
                   help="sd in um of each transcript's displacement from where it was made (default 0.6)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=_cmd_simulate)

    # evaluate
    p = sub.add_parser(
        "evaluate", parents=[_common(quiet=False)], formatter_class=fmt, help="score a segmentation",
        description="Print every metric the inputs allow (ms.metrics.evaluate): agreement with reference cells\n"
        "(F1, ARI, AP, ...) when a truth column exists, nuclear consistency when a nucleus column\n"
        "exists, and reference-free quality (cells, assigned fraction, counts and genes per cell, MECR).\n"
        "INPUT is a segmented .h5ad or a segmented transcript table.",
        epilog="examples:\n  manifoldseg evaluate segmented.h5ad\n"
        "  manifoldseg evaluate labeled.csv --truth-key true_cell --json > scores.json",
    )
    p.add_argument("input", metavar="INPUT", help="segmented .h5ad or transcript table")
    _label_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _table_options(p)
    p.set_defaults(func=_cmd_evaluate)

    # report
    p = sub.add_parser(
        "report", parents=[common], formatter_class=fmt, help="write an HTML report of a segmentation",
        description="Write one self-contained HTML page (images embedded): run summary, metrics, QC\n"
        "distributions, an overview of the whole section, zoomed regions, the embedding and the\n"
        "parameters used.",
        epilog="example:\n  manifoldseg report segmented.h5ad -o report.html --cells cells.h5ad",
    )
    p.add_argument("input", metavar="INPUT", help="segmented .h5ad or transcript table")
    p.add_argument("-o", "--output", required=True, metavar="REPORT.html", help="the HTML file to write")
    p.add_argument("--cells", metavar="CELLS.h5ad", help="cells x genes AnnData from 'segment --cells'")
    _label_options(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing report")
    _table_options(p)
    p.set_defaults(func=_cmd_report)

    # demo
    p = sub.add_parser(
        "demo", parents=[common], formatter_class=fmt, help="simulate, segment and score a small tissue",
        description="Simulate a small tissue with known cells, segment it and print how well the cells were\n"
        "found (F1, ARI, assigned spots in and outside cells, cells true vs found).",
        epilog="examples:\n  manifoldseg demo\n  manifoldseg demo --mode transcripts --size 200 --report demo.html",
    )
    p.add_argument("--mode", choices=("bins", "transcripts"), default="bins", help="data kind (default bins)")
    p.add_argument("--size", type=_positive_float, default=150.0, metavar="UM", help="tissue side in um (default 150)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--prior", action="store_true", help="use the simulated nuclei as a prior")
    p.add_argument("--report", metavar="REPORT.html", help="also write an HTML report")
    p.add_argument("--force", action="store_true", help="overwrite an existing report")
    p.set_defaults(func=_cmd_demo)
    return parser


def _label_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("columns")
    g.add_argument("--key", default=None, metavar="KEY",
                   help="column of the segmentation (default cell_id, or manifoldseg_cell_id in a table that has it)")
    g.add_argument("--truth-key", default=None, metavar="KEY", help="column of reference cells (default true_cell if present)")
    g.add_argument("--nucleus-key", default=None, metavar="KEY", help="column of reference nuclei (default nucleus if present)")


# --------------------------------------------------------------------------------------------- #
# shared helpers
# --------------------------------------------------------------------------------------------- #
def _is_h5ad(path: Path) -> bool:
    if path.name.lower().endswith(".h5ad"):
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == _HDF5_MAGIC
    except OSError:
        return False


def _table_suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in _TABLE_SUFFIXES if name.endswith(s)), None)


def _check_input(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"input {str(path)!r} not found; check the path (cwd is {os.getcwd()!r}).")
    if path.is_dir():
        raise IsADirectoryError(f"input {str(path)!r} is a folder; give the path of a file.")


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _check_outputs(inputs: list[Path], outputs: list[tuple[str, Path]], force: bool) -> None:
    """Refuse, before any work, outputs that are an input, repeated, existing (without --force)
    or in a missing folder."""
    seen: dict[Path, str] = {}
    for flag, out in outputs:
        for inp in inputs:
            if _same_file(out, inp):
                raise UsageError(
                    f"{flag} {str(out)!r} is the input file; manifoldseg never writes to its input: choose "
                    "another output path."
                )
        key = out.resolve()
        if key in seen:
            raise UsageError(f"{seen[key]} and {flag} are the same path {str(out)!r}; give each output its own path.")
        seen[key] = flag
        parent = out.parent if str(out.parent) else Path(".")
        if not parent.is_dir():
            raise FileNotFoundError(
                f"the folder of {flag} {str(out)!r} does not exist; create it first (mkdir -p {str(parent)!r})."
            )
    existing = [(flag, out) for flag, out in outputs if out.exists() or out.is_symlink()]
    if existing and not force:
        names = ", ".join(f"{str(o)!r}" for _, o in existing)
        raise FileExistsError(
            f"{names} already exist{'s' if len(existing) == 1 else ''}; pass --force to overwrite, or choose "
            "another output path."
        )
    for flag, out in existing:
        if out.is_dir() and not out.name.lower().endswith(".zarr"):
            raise IsADirectoryError(f"{flag} {str(out)!r} is a folder; give a file path.")


_API_TO_FLAGS = (
    ("read_transcripts(path, x='...', y='...', gene='...')", "--x COL --y COL --gene COL"),
    ("platform=<one of", "--platform <one of"),
    ("overwrite=True (--force on the command line)", "--force"),
    ("pass overwrite=True (--force)", "pass --force"),
    ("pass spatial_key=", "pass --spatial-key"),
    ("pass prior_key=", "pass --prior-key"),
    ("pass truth_key=", "pass --truth-key"),
    ("pass nucleus_key=", "pass --nucleus-key"),
    ("pass min_qv=", "pass --min-qv"),
    ("Leave min_qv out", "Leave --min-qv out"),
)


def _cli_wording(text: str) -> str:
    """Python-API hints in library messages reworded as command-line flags."""
    for api, flag in _API_TO_FLAGS:
        text = text.replace(api, flag)
    return text


def _one_line(err: BaseException) -> str:
    if isinstance(err, KeyError) and len(err.args) == 1 and isinstance(err.args[0], str):
        text = err.args[0]
    else:
        text = str(err)
    text = _cli_wording(" ".join(text.split()))
    if not text:
        text = type(err).__name__
    return text


def _item_word(adata) -> str:
    sim = adata.uns.get("simulation", {})
    params = sim.get("params", {}) if isinstance(sim, dict) else {}
    if "manifoldseg_io" in adata.uns or (isinstance(params, dict) and params.get("mode") == "transcripts"):
        return "transcripts"
    return "spots"


def _table_reader_kwargs(args) -> dict:
    kw = {}
    for name in ("platform", "x", "y", "z", "gene", "count", "pixel_size", "min_qv"):
        value = getattr(args, name, None)
        if value is not None:
            kw[name] = value
    return kw


def _refuse_table_options(args, what: str) -> None:
    given = [f"--{k.replace('_', '-')}" for k in _table_reader_kwargs(args)]
    if given:
        raise UsageError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to transcript tables, not to {what}.")


def _int_labels(values):
    """Integer labels (-1 = background) from a numeric or text column of a table."""
    import numpy as np
    import pandas as pd

    s = pd.Series(values)
    if not isinstance(s.dtype, pd.CategoricalDtype) and s.dtype.kind in "biuf":
        v = s.to_numpy(dtype=np.float64)
        return np.where(np.isfinite(v) & (v >= 0), np.nan_to_num(v, nan=-1.0), -1).astype(np.int64)
    text = s.astype(str).str.strip()
    num = pd.to_numeric(text, errors="coerce")
    if num.notna().all() and (num == num.round()).all():
        v = num.to_numpy(dtype=np.float64)
        return np.where(v >= 0, v, -1).astype(np.int64)
    background = text.str.lower().isin(["", "-1", "nan", "none", "unassigned", "background"])
    codes, _ = pd.factorize(text.where(~background), use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64)


def _load_segmented(args, *, need_key: bool = True):
    """An AnnData of a segmented .h5ad or a segmented transcript table (labels as int obs columns)."""
    import manifoldseg as ms

    from ._cli_table import table_columns

    path = Path(args.input)
    _check_input(path)
    if _is_h5ad(path):
        _refuse_table_options(args, "an .h5ad input")
        adata = ms.io.read_h5ad(path)
        key = args.key or "cell_id"
        if need_key and key not in adata.obs:
            raise KeyError(
                f"{str(path)!r} has no obs[{key!r}] (obs columns: {list(adata.obs.columns)[:12]}); segment it first "
                "with 'manifoldseg segment', or pass --key <the column of cell labels>."
            )
        return adata, key
    columns = table_columns(path)
    key = args.key or ("manifoldseg_cell_id" if "manifoldseg_cell_id" in columns else "cell_id")
    truth = args.truth_key or ("true_cell" if "true_cell" in columns else None)
    nucleus = args.nucleus_key or ("nucleus" if "nucleus" in columns else None)
    # vendor_cell / vendor_nucleus are the reader's parsed reference labels (per-FOV ids, background
    # codes of the platform); a reference column of the platform itself is read that way too
    reader_labels = {"vendor_cell", "vendor_nucleus"}
    wanted = [c for c in dict.fromkeys((key, truth, nucleus)) if c is not None]
    missing = [c for c in wanted if c not in columns and c not in reader_labels]
    if missing:
        raise KeyError(
            f"{str(path)!r} has no column {', '.join(repr(c) for c in missing)} (columns: {columns[:20]}); segment "
            "it first with 'manifoldseg segment', or pass --key/--truth-key/--nucleus-key naming existing columns."
        )
    conf = f"{key}_confidence"
    from_table = [c for c in wanted if c not in reader_labels]
    keep = list(dict.fromkeys(from_table + ([conf] if conf in columns else [])))
    adata = ms.io.read_transcripts(path, keep_columns=keep, **_table_reader_kwargs(args))
    for c in from_table:
        adata.obs[c] = _int_labels(adata.obs[c].to_numpy())
    roles = adata.uns.get("manifoldseg_io", {}).get("columns", {})
    if truth is not None and truth != key and truth == roles.get("cell") and "vendor_cell" in adata.obs:
        truth = "vendor_cell"
    if nucleus is not None and nucleus == roles.get("nucleus") and "vendor_nucleus" in adata.obs:
        nucleus = "vendor_nucleus"
    for c in (truth, nucleus):
        if c in reader_labels and c not in adata.obs:
            raise KeyError(f"{str(path)!r} gives no {c} (the platform's reference labels); pass a column name instead.")
    args.truth_key, args.nucleus_key = truth, nucleus
    return adata, key


# --------------------------------------------------------------------------------------------- #
# commands
# --------------------------------------------------------------------------------------------- #
def _cmd_segment(args) -> int:
    inp = Path(args.input)
    out = Path(args.output)
    _check_input(inp)
    spots_input = _is_h5ad(inp)
    out_table = _table_suffix(out)
    if not out.name.lower().endswith(".h5ad") and out_table is None:
        raise UsageError(
            f"cannot tell the format of -o {str(out)!r} from its name; use .h5ad"
            + ("" if spots_input else f" or a table ({', '.join(_TABLE_SUFFIXES)})") + "."
        )
    if spots_input and out_table is not None:
        raise UsageError(
            f"the input is an .h5ad of spots, so -o must be .h5ad (got {str(out)!r}); tables are written for "
            "transcript-table inputs."
        )
    if spots_input:
        _refuse_table_options(args, "an .h5ad input")
    elif args.spatial_key is not None:
        raise UsageError("--spatial-key applies to .h5ad inputs; a transcript table's coordinates come from --x/--y.")
    outputs = [("-o", out)]
    if args.cells:
        if not args.cells.lower().endswith(".h5ad"):
            raise UsageError(f"--cells {args.cells!r} must end in .h5ad.")
        outputs.append(("--cells", Path(args.cells)))
    if args.boundaries:
        if not args.boundaries.lower().endswith((".geojson", ".json")):
            raise UsageError(f"--boundaries {args.boundaries!r} must end in .geojson or .json.")
        outputs.append(("--boundaries", Path(args.boundaries)))
    if args.spatialdata:
        if not args.spatialdata.lower().rstrip("/").endswith(".zarr"):
            raise UsageError(f"--spatialdata {args.spatialdata!r} must be a folder name ending in .zarr.")
        outputs.append(("--spatialdata", Path(args.spatialdata.rstrip("/"))))
    _check_outputs([inp], outputs, args.force)
    if args.spatialdata:
        from .io._spatialdata import _require_spatialdata

        _require_spatialdata()

    import inspect

    import manifoldseg as ms

    from ._constants import CONFIDENCE_SUFFIX, ORDER_KEY, UNS_KEY

    seg_params = inspect.signature(ms.tl.segment).parameters
    for flag, name in (("--tile-size", "tile_size"), ("--scheduler", "scheduler")):
        if getattr(args, name) is not None and name not in seg_params:
            raise UsageError(f"{flag} is not supported by this version of manifoldseg (ms.tl.segment has no {name}=).")

    t0 = time.perf_counter()
    key = args.key_added or "cell_id"
    table_columns: list[str] = []
    _status(args, f"reading {inp}")
    if spots_input:
        spatial_key = args.spatial_key or "spatial"
        if _stream_wanted(args, inp, ".h5ad"):
            return _segment_streamed(args, inp, None, outputs, key, t0)
        adata = ms.io.read_h5ad(inp, spatial_key=spatial_key)
    else:
        from ._cli_table import table_columns as _columns

        spatial_key = "spatial"
        table_columns = _columns(inp)
        if out_table is not None and args.key_added is None and "cell_id" in table_columns:
            key = "manifoldseg_cell_id"
            logger.warning("the input table already has a 'cell_id' column; the labels are written as %r", key)
        keep = []
        if args.prior_key is not None and args.prior_key not in _READER_COLUMNS:
            if args.prior_key not in table_columns:
                raise KeyError(
                    f"--prior-key {args.prior_key!r} is not a column of {str(inp)!r} (columns: {table_columns[:20]}); "
                    "name the column of nucleus ids, or vendor_nucleus for the platform's own nuclei."
                )
            keep = [args.prior_key]
        if _stream_wanted(args, inp, out_table):
            return _segment_streamed(args, inp, out_table, outputs, key, t0)
        adata = ms.io.read_transcripts(inp, keep_columns=keep, **_table_reader_kwargs(args))
        if args.prior_key in keep:
            adata.obs[args.prior_key] = _int_labels(adata.obs[args.prior_key].to_numpy())
    conf_key = f"{key}{CONFIDENCE_SUFFIX}"
    if out_table is not None and (key in table_columns or conf_key in table_columns):
        raise UsageError(f"the input table already has a column {key!r} or {conf_key!r}; pass --key-added <another name>.")

    kw = {
        "cell_diameter": args.cell_diameter, "refine_diameter": not args.fixed_diameter,
        "prior_key": args.prior_key, "spatial_key": spatial_key, "key_added": key, "n_jobs": args.n_jobs,
        "random_state": args.seed, "progress": not args.quiet, "nuclear_genes": args.nuclear_genes,
    }
    if args.tile_size is not None:
        kw["tile_size"] = args.tile_size
    if args.scheduler is not None:
        kw["scheduler"] = args.scheduler
    _status(args, f"segmenting {adata.n_obs:,} {_item_word(adata)}")
    ms.tl.segment(adata, **kw)
    uns = adata.uns.setdefault(UNS_KEY, {})
    uns["run"] = {
        "command": " ".join([PROG, *map(str, args.argv)]), "input": str(inp), "output": str(out),
        "version": __version__, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }

    cells = None
    if args.cells or args.boundaries or args.spatialdata:
        _status(args, "aggregating cells")
        cells = ms.tl.aggregate(adata, key=key, spatial_key=spatial_key)

    _status(args, f"writing {out}")
    with ExitStack() as stack:
        tmp = stack.enter_context(ms.io.atomic_path(out, overwrite=args.force))
        if out_table is None:
            adata.write_h5ad(tmp)
        else:
            from ._cli_table import full_labels, write_labeled_table

            n_rows = int(adata.uns["manifoldseg_io"]["n_rows_read"])
            lab, conf = full_labels(n_rows, adata.obs[ORDER_KEY].to_numpy(), adata.obs[key].to_numpy(),
                                    adata.obs[conf_key].to_numpy() if conf_key in adata.obs else None)
            write_labeled_table(inp, tmp, n_rows=n_rows, labels=lab, confidence=conf, label_column=key,
                                confidence_column=conf_key, output_format=out_table)
        if args.cells:
            tmp = stack.enter_context(ms.io.atomic_path(args.cells, overwrite=args.force))
            cells.write_h5ad(tmp)
        if args.boundaries:
            import json

            tmp = stack.enter_context(ms.io.atomic_path(args.boundaries, overwrite=args.force))
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(ms.io.cells_to_geojson(cells), fh, separators=(",", ":"), allow_nan=False)
                fh.write("\n")
        if args.spatialdata:
            ms.io.write_spatialdata(adata, args.spatialdata.rstrip("/"), cells=cells, key=key,
                                    spatial_key=spatial_key, overwrite=args.force)
    labels = adata.obs[key].to_numpy()
    n_cells = len(set(labels[labels >= 0].tolist()))
    frac = float((labels >= 0).mean()) if labels.size else 0.0
    written = " ".join(str(o) for _, o in outputs)
    _summary(args, f"{n_cells:,} cells, {100 * frac:.1f}% of {_item_word(adata)} assigned, "
                   f"{time.perf_counter() - t0:.1f} s -> {written}")
    return EXIT_OK


def _stream_wanted(args, inp: Path, out_table: str | None) -> bool:
    """Whether the input is segmented from disk in bounded memory (manifoldseg._stream): a table to
    a table with --tile-size given or more rows than the auto-tiling threshold, or an .h5ad of spots
    (``out_table=".h5ad"``) with more spots than that threshold."""
    from . import _stream
    from ._tiling import AUTO_MIN_SPOTS

    if out_table is None:
        return False
    # an .h5ad small enough to tile automatically in memory is read whole (it fits)
    if args.tile_size is None or out_table == ".h5ad":
        try:
            n = _stream.estimate_rows(inp)
        except (OSError, ValueError):
            return False
        if n <= AUTO_MIN_SPOTS:
            return False
    why = []
    if args.cells or args.boundaries or args.spatialdata:
        why.append("--cells, --boundaries and --spatialdata need the whole section in memory")
    if out_table != ".h5ad" and args.prior_key is not None and args.prior_key in _READER_COLUMNS:
        why.append(f"--prior-key {args.prior_key} is made by the reader from the whole table")
    if isinstance(args.nuclear_genes, list):
        why.append("--nuclear-genes with gene names needs the panel's gene names in memory")
    if why:
        logger.warning("%s: segmenting in memory (leave them out to segment from disk in bounded memory)",
                       "; ".join(why))
        return False
    return True


def _segment_streamed(args, inp: Path, out_table: str | None, outputs, key: str, t0: float) -> int:
    """Segment a table or an .h5ad of spots from disk, tile by tile, and write the result chunk by
    chunk (manifoldseg._stream); ``out_table`` is None for an .h5ad of spots."""
    import inspect

    import manifoldseg as ms

    from . import _stream
    from ._constants import CONFIDENCE_SUFFIX

    conf_key = f"{key}{CONFIDENCE_SUFFIX}"
    kw = {}
    if out_table is not None:
        from ._cli_table import table_columns

        columns = table_columns(inp)
        if key in columns or conf_key in columns:
            raise UsageError(f"the input table already has a column {key!r} or {conf_key!r}; pass --key-added "
                             "<another name>.")
        kw["reader_kwargs"] = _table_reader_kwargs(args)
    else:
        kw["spatial_key"] = args.spatial_key or "spatial"
        kw["uns"] = {"run": {"command": " ".join([PROG, *map(str, args.argv)]), "input": str(inp),
                             "output": str(args.output), "version": __version__,
                             "date": time.strftime("%Y-%m-%d %H:%M:%S")}}
    seg = inspect.signature(ms.tl.segment).parameters
    passed = ("n_neighbors", "n_epochs", "embed_method", "persistence", "background", "prior_extent")
    defaults = {k: seg[k].default for k in passed if k in seg}
    defaults["nuclear_genes"] = args.nuclear_genes  # "auto" or None here
    _status(args, f"segmenting {inp} from disk in tiles")
    info = _stream.segment_file(
        inp, args.output, key_added=key, overwrite=args.force, prior_column=args.prior_key,
        tile_size=args.tile_size if args.tile_size is not None else "auto",
        cell_diameter=args.cell_diameter, refine_diameter=not args.fixed_diameter, random_state=args.seed,
        scheduler=args.scheduler, n_jobs=args.n_jobs, progress=not args.quiet, **kw, **defaults,
    )
    written = " ".join(str(o) for _, o in outputs)
    word = "transcripts" if out_table is not None else "spots"
    _summary(args, f"{info['n_cells']:,} cells, {100 * info['assigned_fraction']:.1f}% of {word} assigned, "
                   f"{time.perf_counter() - t0:.1f} s -> {written}")
    return EXIT_OK


def _cmd_simulate(args) -> int:
    out = Path(args.output)
    table = _table_suffix(out)
    if not out.name.lower().endswith(".h5ad") and table is None:
        raise UsageError(f"cannot tell the format of {str(out)!r}; use .h5ad or a table ({', '.join(_TABLE_SUFFIXES)}).")
    mode = args.mode or ("transcripts" if table else "bins")
    if table and mode != "transcripts":
        raise UsageError("a table output holds transcripts; use --mode transcripts or an .h5ad output for bins.")
    if args.bin_size is not None and mode != "bins":
        raise UsageError("--bin-size applies to --mode bins.")
    _check_outputs([], [("OUT", out)], args.force)

    import manifoldseg as ms

    t0 = time.perf_counter()
    kw = {"mode": mode, "width": args.width, "height": args.height, "random_state": args.seed,
          "false_positive_fraction": args.false_positive_fraction, "clumping": args.clumping,
          "background_clumping": args.background_clumping, "diffusion": args.diffusion,
          "nuclear_retained": args.nuclear_retained}
    if args.depth is not None:
        kw["depth"] = args.depth
    if args.bin_size is not None:
        kw["bin_size"] = args.bin_size
    _status(args, f"simulating {args.width:g} x {args.height:g} um ({mode})")
    adata = ms.datasets.simulate(**kw)
    if table is None:
        ms.io.write_h5ad(adata, out, overwrite=args.force)
    else:
        import numpy as np
        import pandas as pd

        xyz = np.asarray(adata.obsm["spatial"], dtype=np.float64)
        df = pd.DataFrame({a: np.round(xyz[:, i], 4) for i, a in enumerate("xyz"[: xyz.shape[1]])})
        df["gene"] = adata.obs["gene"].astype(str).to_numpy()
        for c in ("true_cell", "true_type", "nucleus"):
            if c in adata.obs:
                col = adata.obs[c]
                df[c] = col.astype(str).to_numpy() if c == "true_type" else col.to_numpy()
        ms.io.write_table(df, out, overwrite=args.force)
    truth = adata.obs["true_cell"].to_numpy()
    n_cells = len(set(truth[truth >= 0].tolist()))
    _summary(args, f"simulated {n_cells:,} cells, {adata.n_obs:,} {mode if mode == 'transcripts' else 'spots'}, "
                   f"{adata.n_vars} genes, {time.perf_counter() - t0:.1f} s -> {out}")
    return EXIT_OK


def _cmd_evaluate(args) -> int:
    import json

    import manifoldseg as ms

    from ._cli_format import json_ready, metrics_text

    adata, key = _load_segmented(args)
    scores = ms.metrics.evaluate(adata, key=key, truth_key=args.truth_key, nucleus_key=args.nucleus_key)
    if args.json:
        print(json.dumps(json_ready(scores), indent=2, allow_nan=False))
    else:
        what = f"{args.input}: {adata.n_obs:,} {_item_word(adata)}, labels in {key!r}"
        truth = args.truth_key or ("true_cell" if "true_cell" in adata.obs else None)
        what += f", reference {truth!r}" if truth else ", no reference cells"
        print(what)
        print(metrics_text(scores))
    return EXIT_OK


def _cmd_report(args) -> int:
    out = Path(args.output)
    if not out.name.lower().endswith((".html", ".htm")):
        raise UsageError(f"-o {str(out)!r} must end in .html.")
    inputs = [Path(args.input)] + ([Path(args.cells)] if args.cells else [])
    for p in inputs:
        _check_input(p)
    _check_outputs(inputs, [("-o", out)], args.force)

    import manifoldseg as ms

    from .report import write_report

    t0 = time.perf_counter()
    adata, key = _load_segmented(args)
    cells = ms.io.read_h5ad(args.cells, spatial_key=None) if args.cells else None
    _status(args, f"writing {out}")
    write_report(adata, out, cells=cells, key=key, truth_key=args.truth_key, nucleus_key=args.nucleus_key,
                 overwrite=args.force, title=Path(args.input).name)
    _summary(args, f"report of {adata.n_obs:,} {_item_word(adata)}, {time.perf_counter() - t0:.1f} s -> {out}")
    return EXIT_OK


def _cmd_demo(args) -> int:
    if args.report:
        if not args.report.lower().endswith((".html", ".htm")):
            raise UsageError(f"--report {args.report!r} must end in .html.")
        _check_outputs([], [("--report", Path(args.report))], args.force)

    import manifoldseg as ms

    t0 = time.perf_counter()
    _status(args, f"simulating a {args.size:g} x {args.size:g} um tissue ({args.mode})")
    adata = ms.datasets.simulate(mode=args.mode, width=args.size, height=args.size, random_state=args.seed)
    t1 = time.perf_counter()
    _status(args, f"segmenting {adata.n_obs:,} {_item_word(adata)}")
    ms.tl.segment(adata, prior_key="nucleus" if args.prior else None, random_state=args.seed,
                  progress=not args.quiet)
    t2 = time.perf_counter()
    s = ms.metrics.score_all(adata.obs["true_cell"], adata.obs["cell_id"], nucleus=adata.obs["nucleus"])
    word = _item_word(adata)
    rows = [
        ("cells (true / found)", f"{s.get('n_true', 0):,} / {s.get('n_pred', s.get('n_cells', 0)):,}"),
        ("cell F1 at IoU >= 0.5", _f(s.get("f1"))),
        ("precision / recall", f"{_f(s.get('precision'))} / {_f(s.get('recall'))}"),
        ("ARI (assigned on both sides)", _f(s.get("ari"))),
        (f"in-cell {word} assigned", _f(s.get("in_cell_assigned"))),
        (f"background {word} assigned", _f(s.get("background_assigned"))),
        ("nuclei kept whole", _f(s.get("nuclear_consistency"))),
        ("cells with 2+ nuclei", _f(s.get("merge_rate"))),
        ("seconds (simulate / segment)", f"{t1 - t0:.1f} / {t2 - t1:.1f}"),
    ]
    print(f"manifoldseg {__version__} demo: {args.size:g} x {args.size:g} um, {args.mode}, {adata.n_obs:,} {word}, "
          f"seed {args.seed}{', nuclear prior' if args.prior else ''}")
    w = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"  {name:<{w}}  {value}")
    if args.report:
        from .report import write_report

        write_report(adata, args.report, truth_key="true_cell", overwrite=args.force, title="manifoldseg demo")
        _summary(args, f"report -> {args.report}")
    return EXIT_OK


def _f(value) -> str:
    if value is None or value != value:
        return "n/a"
    return f"{float(value):.3f}"


def _status(args, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(f"{PROG}: {message} ...", file=sys.stderr, flush=True)


def _summary(args, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(f"{PROG}: {message}", flush=True)


# --------------------------------------------------------------------------------------------- #
# entry point
# --------------------------------------------------------------------------------------------- #
def _failure_hint(err: BaseException) -> str:
    if isinstance(err, MemoryError):
        return "out of memory; segment in tiles with --tile-size UM (e.g. 500), or use a machine with more memory."
    return ""


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 failure, 2 usage error, 130 interrupted).

    Parameters
    ----------
    argv
        The arguments after the program name (default ``sys.argv[1:]``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    args.argv = argv
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    from ._validate import ManifoldsegError

    try:
        return int(args.func(args) or EXIT_OK)
    except BrokenPipeError:  # e.g. 'manifoldseg evaluate out.h5ad | head': the reader left, that is fine
        try:  # Python flushes stdout at exit: point it at devnull so that does not fail again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted; no output was written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as err:
        parser_usage = f"{PROG} {args.command}: error: {_one_line(err)}"
        print(parser_usage, file=sys.stderr)
        return EXIT_USAGE
    except (ManifoldsegError, FileExistsError, FileNotFoundError, KeyError, ValueError, OSError, MemoryError,
            ImportError) as err:
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"{PROG} {args.command}: error: {_failure_hint(err) or _one_line(err)}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as err:  # a bug: still one line, with where to look
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"{PROG} {args.command}: unexpected error ({type(err).__name__}: {_one_line(err)}); rerun with "
              "--debug for the traceback and report it to the manifoldseg developers.", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
