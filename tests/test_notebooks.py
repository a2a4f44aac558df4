"""The example notebooks: clean in the repository, and executed end to end by a real Jupyter kernel.

Each notebook runs with nbclient in a fresh ``python3`` kernel (installed into the virtualenv by
``make install``), in a temporary working directory, with ``MPLBACKEND=Agg``. The tests then
check what the notebook printed and wrote: scores above a floor, counts conserved, files created,
no error output.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
NOTEBOOKS = ("01_quickstart.ipynb", "02_imaging_transcripts.ipynb", "03_scanpy_workflow.ipynb")
CELL_TIMEOUT = 240  # seconds per cell; a whole notebook takes 15-30 s once numba caches exist

pytestmark = pytest.mark.slow


def _real_data() -> Path | None:
    """The shared data folder (the one lookup of ``benchmarks/_real.py``) when it holds the CosMx file."""
    from _real import data_dir  # benchmarks/ is on sys.path (conftest)

    d = data_dir()
    return d if d is not None and (d / "cosmx_lung12_giotto" / "Lung12_tx_file.csv").is_file() else None


def _kernel_or_skip() -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.skip("no 'python3' Jupyter kernel: run `python -m ipykernel install --sys-prefix --name python3`")


class Executed:
    """An executed notebook: its cells, and the text it printed (stdout, results) and logged (stderr)."""

    def __init__(self, nb, workdir: Path):
        self.nb = nb
        self.workdir = workdir
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.errors: list[str] = []
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            for out in cell.outputs:
                if out.output_type == "stream":
                    (self.stdout if out.name == "stdout" else self.stderr).append(out.text)
                elif out.output_type in ("execute_result", "display_data"):
                    self.stdout.append(out.get("data", {}).get("text/plain", ""))
                elif out.output_type == "error":
                    self.errors.append(f"{out.ename}: {out.evalue}")

    @property
    def text(self) -> str:
        return "\n".join(self.stdout)

    def number(self, pattern: str) -> float:
        """The number captured by ``pattern`` (one group) in the printed text."""
        m = re.search(pattern, self.text)
        assert m is not None, f"{pattern!r} not found in the notebook's output:\n{self.text[-3000:]}"
        return float(m.group(1))

    def check_clean(self) -> None:
        """No error output, no traceback, no warning raised by manifoldseg's own code."""
        assert not self.errors, self.errors
        stderr = "\n".join(self.stderr)
        assert "Traceback" not in stderr, stderr
        own = re.findall(r"manifoldseg/\S+\.py:\d+: \w*Warning.*", stderr)
        assert not own, own


def execute(name: str, workdir: Path, monkeypatch, data: Path | None = None) -> Executed:
    """Run ``examples/<name>`` in a fresh python3 kernel with ``workdir`` as working directory."""
    _kernel_or_skip()
    monkeypatch.setenv("MPLBACKEND", "Agg")
    if data is None:  # make sure the notebook takes its simulated branch
        empty = workdir / "_no_data"
        empty.mkdir()
        monkeypatch.setenv("MANIFOLDSEG_DATA", str(empty))
    else:
        monkeypatch.setenv("MANIFOLDSEG_DATA", str(data))
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    run = Executed(nb, workdir)
    run.check_clean()
    return run


def _png(path: Path) -> None:
    assert path.is_file(), f"{path.name} was not written"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000, path


# --------------------------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_clean(name):
    """Outputs cleared, no execution counts, valid nbformat, the python3 kernel."""
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 5
    for cell in code:
        assert cell.outputs == [], f"{name}: a cell has outputs; clear them before committing"
        assert cell.execution_count is None, f"{name}: a cell has an execution count"
    assert nb.metadata.kernelspec.name == "python3"
    # notebooks go through the public API only
    source = "\n".join(c.source for c in code)
    assert "manifoldseg._" not in source and "from manifoldseg." not in source


def test_examples_readme_lists_notebooks():
    text = (EXAMPLES / "README.md").read_text()
    for name in NOTEBOOKS:
        assert name in text


def test_quickstart(tmp_path, monkeypatch):
    run = execute("01_quickstart.ipynb", tmp_path, monkeypatch)
    f1 = run.number(r"F1 = ([0-9.]+)")
    ari = run.number(r"ARI = ([0-9.]+)")
    n_cells = run.number(r"cells found: (\d+)")
    n_true = run.number(r"(\d+) true cells")
    # floors well below what the method reaches on this tissue (F1 ~0.5, ARI ~0.6)
    assert f1 >= 0.25, f"F1 {f1} on the quickstart tissue"
    assert ari >= 0.4, f"ARI {ari} on the quickstart tissue"
    assert 0.3 * n_true <= n_cells <= 2.5 * n_true
    assert "counts conserved (cells + background == input): True" in run.text
    for png in ("quickstart_segmentation.png", "quickstart_embedding.png", "quickstart_cells.png"):
        _png(tmp_path / png)


def _check_transcripts_outputs(run: Executed, tmp_path: Path) -> pd.DataFrame:
    import anndata

    kept = run.number(r"kept: (\d+)")
    assert re.search(r"transcripts_segmented\.csv: \d+ rows, in input order: True", run.text)
    table = pd.read_csv(tmp_path / "transcripts_segmented.csv")
    assert list(table.columns) == ["input_row", "x", "y", "gene", "cell_id", "confidence"]
    assert len(table) == kept
    assert np.all(np.diff(table["input_row"].to_numpy()) > 0)
    assert table["cell_id"].min() >= -1 and (table["cell_id"] >= 0).mean() > 0.3
    assert table["confidence"].between(0, 1).all()
    cells = anndata.read_h5ad(tmp_path / "cells.h5ad")
    assert cells.n_obs == table.loc[table["cell_id"] >= 0, "cell_id"].nunique() > 5
    assert cells.obsm["spatial"].shape == (cells.n_obs, 2)
    # every assigned transcript is in its cell's counts
    assert int(cells.X.sum()) == int((table["cell_id"] >= 0).sum())
    for png in ("transcripts_segmentation.png", "transcripts_cells.png"):
        _png(tmp_path / png)
    return table


def test_imaging_transcripts_simulated(tmp_path, monkeypatch):
    run = execute("02_imaging_transcripts.ipynb", tmp_path, monkeypatch, data=None)
    assert "using simulated transcripts" in run.text
    assert "platform: xenium" in run.text
    assert run.number(r"controls dropped: (\d+)") == 40
    assert (tmp_path / "transcripts.csv").is_file()
    _check_transcripts_outputs(run, tmp_path)
    assert run.number(r"ARI with the vendor's cells = ([0-9.]+)") >= 0.4  # here the vendor's cells are the truth


@pytest.mark.realdata
def test_imaging_transcripts_cosmx(tmp_path, monkeypatch):
    data = _real_data()
    if data is None:
        pytest.skip("CosMx data not found: set MANIFOLDSEG_DATA or place it in ../shared/data")
    run = execute("02_imaging_transcripts.ipynb", tmp_path, monkeypatch, data=data)
    assert "Lung12_tx_file.csv" in run.text
    assert "platform: cosmx" in run.text
    table = _check_transcripts_outputs(run, tmp_path)
    # FOV 2 of the NSCLC crop: 12,414 transcripts after the negative probes are dropped
    assert 11_000 < len(table) < 13_000
    assert run.number(r"ARI with the vendor's cells = ([0-9.]+)") >= 0.3


def test_scanpy_workflow(tmp_path, monkeypatch):
    run = execute("03_scanpy_workflow.ipynb", tmp_path, monkeypatch)
    assert "X is sparse raw counts: True" in run.text
    n_clusters = run.number(r"(\d+) Leiden clusters, ARI")
    ari = run.number(r"ARI\(leiden, majority true type\) = ([0-9.]+)")
    assert n_clusters >= 3
    assert ari >= 0.3, f"Leiden clusters of the cells vs their true types: ARI {ari}"
    assert run.number(r"(\d+) Leiden clusters on \d+ spots \(neighbors_key='manifold'\)") >= 5
    # rank_genes_groups finds the simulator's marker genes
    m = re.search(r"top markers that are simulated markers: (\d+) of (\d+)", run.text)
    assert m is not None and int(m.group(1)) >= 0.5 * int(m.group(2)), run.text[-2000:]
    for png in ("scanpy_clusters.png", "scanpy_markers.png", "scanpy_spot_leiden.png"):
        _png(tmp_path / png)
