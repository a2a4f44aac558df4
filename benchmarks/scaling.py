"""Throughput and memory of ``ms.tl.segment`` on simulated sections of 100k to 10M spots.

Each size runs in a fresh subprocess (so peak memory is per size) that builds the section, then
times ``ms.tl.segment`` (default ``tile_size="auto"``: untiled up to 400k spots, tiled above, on a
local Dask cluster of ``--n-jobs`` worker processes) while a thread samples the resident memory
of the whole process tree (the process and all its descendants, i.e. the Dask workers) every
0.1 s. The numba cold start is measured separately: the same small run in a subprocess with an
empty ``NUMBA_CACHE_DIR`` against one with the warm cache.

Large sections are made fast as a mosaic: ``--blocks`` distinct 500 x 500 um tissues from
``ms.datasets.simulate`` (1 um bins, about 170k spots each) laid side by side, repeated as
needed; the tiles of the segmentation do not line up with the blocks.

Usage::

    python benchmarks/scaling.py                      # 100k, 1M, 4M
    python benchmarks/scaling.py --sizes 100000 1000000 --repeats 1
    python benchmarks/scaling.py --quick              # 100k only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BLOCK_UM = 500.0


# ------------------------------------------------------------------ memory of the process tree


class TreeRSS:
    """Samples the summed RSS of this process and all its descendants; keeps the peak."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        try:
            import psutil

            me = psutil.Process()
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            return total
        except ImportError:  # /proc fallback (Linux)
            return _proc_tree_rss(os.getpid())

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop.wait(self.interval)

    def __enter__(self):
        self.peak = self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.sample())


def _proc_tree_rss(pid: int) -> int:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except OSError:
                pass
    total, todo = 0, [pid]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        p = todo.pop()
        try:
            total += int(open(f"/proc/{p}/statm").read().split()[1]) * page
        except OSError:
            pass
        todo.extend(children.get(p, []))
    return total


# ------------------------------------------------------------------ a large section, fast


def mosaic(n_spots: int, *, blocks: int = 4, seed: int = 0):
    """About ``n_spots`` 1 um bins: distinct simulated 500 um blocks laid out on a grid."""
    import anndata as ad
    import numpy as np
    from scipy import sparse

    import manifoldseg as ms

    made = []
    per_block = None
    pieces = []
    i = 0
    total = 0
    while total < n_spots:
        if i < blocks:
            made.append(ms.datasets.simulate(width=BLOCK_UM, height=BLOCK_UM, random_state=seed + i))
        b = made[i % len(made)]
        per_block = per_block or b.n_obs
        pieces.append(b)
        total += b.n_obs
        i += 1
    side = int(np.ceil(np.sqrt(len(pieces))))
    coords, Xs, truth, offset = [], [], [], 0
    for k, b in enumerate(pieces):
        gy, gx = divmod(k, side)
        c = np.asarray(b.obsm["spatial"], dtype=np.float64).copy()
        c[:, 0] += gx * BLOCK_UM
        c[:, 1] += gy * BLOCK_UM
        take = min(b.n_obs, n_spots - offset) if k == len(pieces) - 1 else b.n_obs
        coords.append(c[:take])
        Xs.append(b.X[:take])
        t = b.obs["true_cell"].to_numpy()[:take].copy()
        t[t >= 0] += k * 100_000
        truth.append(t)
        offset += take
    a = ad.AnnData(X=sparse.vstack(Xs).tocsr().astype(np.float32), var=pieces[0].var[[]].copy())
    a.obsm["spatial"] = np.concatenate(coords)
    a.obs["true_cell"] = np.concatenate(truth)
    return a


# ------------------------------------------------------------------ one measurement (subprocess)


def _measure(n_spots: int, n_jobs: int, blocks: int, scheduler: str | None, tile_size) -> dict:
    import numpy as np

    import manifoldseg as ms

    t = time.perf_counter()
    a = mosaic(n_spots, blocks=blocks)
    t_sim = time.perf_counter() - t
    base = TreeRSS().sample()
    with TreeRSS() as mem:
        t = time.perf_counter()
        ms.tl.segment(a, n_jobs=n_jobs, scheduler=scheduler, tile_size=tile_size, progress=False)
        wall = time.perf_counter() - t
    summ = a.uns["manifoldseg"]["summary"]
    lab = a.obs["cell_id"].to_numpy()
    truth = a.obs["true_cell"].to_numpy()
    res = {
        "n_spots": int(a.n_obs),
        "n_genes": int(a.n_vars),
        "nnz": int(a.X.nnz),
        "simulate_seconds": round(t_sim, 2),
        "wall_seconds": round(wall, 2),
        "spots_per_second": round(a.n_obs / wall, 1),
        "peak_rss_gb": round(mem.peak / 1e9, 3),
        "rss_before_gb": round(base / 1e9, 3),
        "n_cells": int(summ.get("n_cells", lab.max() + 1)),
        "tiled": bool(summ.get("tiled", False)),
        "n_tiles": int(summ.get("n_tiles", 1)),
        "tile_size_um": summ.get("tile_size"),
        "cell_diameter_um": summ.get("cell_diameter"),
        "timings": summ.get("timings"),
        "f1_vs_truth": round(float(ms.metrics.match_cells(truth, lab)["f1"]), 3) if a.n_obs <= 2_000_000 else None,
    }
    del np
    return res


def _cold(n_spots: int, cache_dir: str | None) -> float:
    """Seconds of one small untiled run in a fresh interpreter (numba cache at cache_dir)."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    code = (
        "import time, manifoldseg as ms\n"
        f"a = ms.datasets.simulate(width={(n_spots / 0.68) ** 0.5:.1f}, height={(n_spots / 0.68) ** 0.5:.1f})\n"
        "t = time.perf_counter(); ms.tl.segment(a, tile_size=None); print(time.perf_counter() - t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


#: vector extensions that change how numba / BLAS kernels round (results can differ between CPUs)
SIMD_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni")


def cpu_info() -> dict:
    """CPU model and the vector extensions of ``SIMD_FLAGS`` it has (from /proc/cpuinfo; {} elsewhere)."""
    info: dict = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and "cpu_model" not in info:
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    info["cpu_simd"] = [f for f in SIMD_FLAGS if f in flags]
                    break
    except OSError:
        pass
    return info


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 1e9, 1)
    except ImportError:
        pass
    info.update(cpu_info())
    import manifoldseg

    info["manifoldseg"] = manifoldseg.__version__
    return info


def seed_list(seeds) -> str:
    """Seeds for a table cell: ``0-44`` for a run of three or more consecutive seeds, else joined
    by commas (``0,1``; ``0,3,7``)."""
    s = sorted(int(x) for x in seeds)
    if len(s) > 2 and s == list(range(s[0], s[-1] + 1)):
        return f"{s[0]}-{s[-1]}"
    return ",".join(map(str, s))


def markdown_table(rows: list[dict], cols: list[str]) -> str:
    """A Markdown table of ``rows`` (dicts) with one column per key in ``cols`` (missing keys blank)."""
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _table(rows: list[dict]) -> str:
    head = "| spots | tiles | wall (s) | spots/s | peak RSS (GB) | cells | F1 vs truth | load before |\n"
    head += "|---:|---:|---:|---:|---:|---:|---:|---|\n"
    for r in rows:
        head += (f"| {r['n_spots']:,} | {r['n_tiles']} | {r['wall_seconds']:.1f} | {r['spots_per_second']:,.0f} | "
                 f"{r['peak_rss_gb']:.2f} | {r['n_cells']:,} | {r.get('f1_vs_truth')} | "
                 f"{', '.join(f'{x:.2f}' for x in r['loadavg_before'])} |\n")
    return head


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 4_000_000])
    ap.add_argument("--repeats", type=int, default=1, help="median over repeats")
    ap.add_argument("--quick", action="store_true", help="100k spots only, no cold start")
    ap.add_argument("--n-jobs", type=int, default=os.cpu_count() or 1, help="Dask workers")
    ap.add_argument("--blocks", type=int, default=4, help="distinct simulated 500 um blocks")
    ap.add_argument("--scheduler", default=None)
    ap.add_argument("--tile-size", default="auto")
    ap.add_argument("--no-cold", action="store_true", help="skip the numba cold-start measurement")
    ap.add_argument("--output", type=Path, default=RESULTS / "scaling.json")
    ap.add_argument("--_one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    tile = None if args.tile_size == "none" else (args.tile_size if args.tile_size == "auto" else float(args.tile_size))

    if args._one is not None:  # child: one measurement, JSON on stdout
        print(json.dumps(_measure(args._one, args.n_jobs, args.blocks, args.scheduler, tile)))
        return 0

    sizes = [100_000] if args.quick else args.sizes
    rows = []
    for n in sizes:
        reps = []
        for _ in range(args.repeats):
            load = os.getloadavg()
            cmd = [sys.executable, __file__, "--_one", str(n), "--n-jobs", str(args.n_jobs), "--blocks",
                   str(args.blocks), "--tile-size", str(args.tile_size)]
            if args.scheduler:
                cmd += ["--scheduler", args.scheduler]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stderr[-3000:], file=sys.stderr)
                rows.append({"n_spots": n, "error": out.stderr[-500:]})
                break
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r["loadavg_before"] = [round(x, 2) for x in load]
            r["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
            reps.append(r)
            print(f"{n:>10,} spots: {r['wall_seconds']:.1f} s, peak RSS {r['peak_rss_gb']:.2f} GB, "
                  f"{r['n_tiles']} tiles, load {load[0]:.2f}", flush=True)
        if reps:
            reps.sort(key=lambda r: r["wall_seconds"])
            med = dict(reps[len(reps) // 2])
            med["repeats"] = [r["wall_seconds"] for r in reps]
            rows.append(med)

    cold = None
    if not args.quick and not args.no_cold:
        warm = _cold(20_000, None)
        with tempfile.TemporaryDirectory() as tmp:
            t_cold = _cold(20_000, tmp)
        cold = {"n_spots": 20_000, "warm_seconds": round(warm, 2), "cold_seconds": round(t_cold, 2),
                "extra_seconds": round(t_cold - warm, 2)}
        print(f"numba cold start: {t_cold:.1f} s vs warm {warm:.1f} s (+{t_cold - warm:.1f} s)")

    good = [r for r in rows if "error" not in r]
    by_n = {r["n_spots"]: r for r in good}
    ratio = None
    if 1_000_000 in by_n and 4_000_000 in by_n:
        ratio = round(by_n[4_000_000]["wall_seconds"] / by_n[1_000_000]["wall_seconds"], 2)
    result = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "n_jobs": args.n_jobs,
        "scheduler": args.scheduler or "local Dask cluster",
        "tile_size": args.tile_size,
        "rows": rows,
        "t4M_over_t1M": ratio,
        "cold_start": cold,
        "targets": {"1M_seconds": 180, "1M_peak_rss_gb": 4, "t4M_over_t1M": 4.5, "10M_peak_rss_gb": 8,
                    "cold_start_extra_seconds": 60},
    }
    print()
    print(_table(good))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.output.exists():  # keep earlier sizes not re-run
        try:
            old = json.loads(args.output.read_text())
            keep = [r for r in old.get("rows", []) if r.get("n_spots") not in {r2["n_spots"] for r2 in rows}]
            if keep:
                result["earlier_rows"] = keep
        except (ValueError, OSError):
            pass
    args.output.write_text(json.dumps(result, indent=2))
    args.output.with_suffix(".md").write_text(
        f"# Scaling ({result['date']}, {result['machine'].get('cpu_model', '')}, "
        f"{result['machine']['cpu_count']} cores, n_jobs={args.n_jobs})\n\n" + _table(good)
        + (f"\nt(4M)/t(1M) = {ratio}\n" if ratio else "")
        + (f"\nnumba cold start: +{cold['extra_seconds']} s ({cold['cold_seconds']} s cold vs "
           f"{cold['warm_seconds']} s warm, {cold['n_spots']:,} spots)\n" if cold else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
