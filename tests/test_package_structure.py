"""House rules, checked like scanpy's tests/test_package_structure.py."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import manifoldseg as ms

NAMESPACES = ["pp", "tl", "pl", "io", "datasets", "metrics"]


def public_functions():
    for ns in NAMESPACES:
        mod = getattr(ms, ns)
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                yield f"{ns}.{name}", obj


FUNCS = list(public_functions())


def test_namespaces_exported():
    for ns in NAMESPACES:
        assert ns in ms.__all__ and getattr(ms, ns).__name__ == f"manifoldseg.{ns}"
    assert ms.__version__
    assert len(FUNCS) > 30


@pytest.mark.parametrize(("name", "func"), FUNCS, ids=[n for n, _ in FUNCS])
def test_signature_rules(name, func):
    params = list(inspect.signature(func).parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert len(positional) <= 3, f"{name}: at most three positional parameters"
    for p in positional:
        assert not isinstance(p.default, bool), f"{name}: boolean {p.name!r} must be keyword-only"


@pytest.mark.parametrize(("name", "func"), FUNCS, ids=[n for n, _ in FUNCS])
def test_documented(name, func):
    doc = inspect.getdoc(func) or ""
    assert len(doc) > 40, f"{name} needs a docstring"


def test_adata_functions_document_what_they_write():
    for name, func in FUNCS:
        params = inspect.signature(func).parameters
        if "copy" in params and "key_added" in params:
            doc = inspect.getdoc(func)
            assert "Returns" in doc and "adata." in doc, f"{name}: the Returns section lists the slots written"


def test_kernels_import_no_anndata():
    root = Path(ms.__file__).parent / "_kernels"
    for path in root.glob("*.py"):
        text = path.read_text()
        assert "anndata" not in text and "scanpy" not in text, f"{path.name} imports AnnData"


def test_every_numba_kernel_is_cached():
    root = Path(ms.__file__).parent
    for path in root.rglob("*.py"):
        for line in path.read_text().splitlines():
            s = line.strip()
            if s.startswith("@njit") or s.startswith("@numba.njit") or s.startswith("@jit"):
                assert "cache=True" in s, f"{path.name}: {s} lacks cache=True"


def test_import_is_light():
    code = "import sys, manifoldseg; bad = [m for m in ('anndata', 'scanpy', 'numba', 'umap') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pp_never_imports_tl():
    root = Path(ms.__file__).parent / "pp"
    for path in root.glob("*.py"):
        for line in path.read_text().splitlines():
            if line.strip().startswith(("from ..tl", "import manifoldseg.tl", "from manifoldseg.tl")):
                pytest.fail(f"{path.name} imports tl: {line}")
