"""manifoldseg: cell segmentation for subcellular spatial transcriptomics from RNA alone.

``import manifoldseg as ms`` exposes the scanpy-style namespaces ``ms.pp``, ``ms.tl``,
``ms.pl``, ``ms.io``, ``ms.datasets`` and ``ms.metrics``. They are imported on first use so
that ``manifoldseg --help`` and ``import manifoldseg`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

_SUBMODULES = ("pp", "tl", "pl", "io", "datasets", "metrics")

__all__ = [*_SUBMODULES, "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from . import datasets, io, metrics, pl, pp, tl  # noqa: F401


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'manifoldseg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
