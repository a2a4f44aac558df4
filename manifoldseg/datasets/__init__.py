"""Data with known answers: a simulated tissue whose true cells, types and nuclei are known."""

from __future__ import annotations

from ._simulate import simulate

__all__ = ["simulate"]
