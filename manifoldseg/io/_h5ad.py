"""Read ``.h5ad`` files of spots (Stereo-seq, Visium HD bins, any AnnData with coordinates)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .._constants import SPATIAL_KEY
from .._validate import InputError, MissingFileError, MissingKeyError, _fmt_list

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["read_h5ad"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _check_input_file(path: Path) -> None:
    if not path.exists():
        parent = path.parent
        hint = "" if parent.exists() else f" (the folder {str(parent)!r} does not exist either)"
        raise MissingFileError(f"input file {str(path)!r} not found{hint}; check the path.")
    if path.is_dir():
        raise InputError(f"{str(path)!r} is a folder, not a file; give the path of the file to read.")


def read_h5ad(
    path: str | os.PathLike,
    *,
    spatial_key: str | None = SPATIAL_KEY,
    backed: Literal["r"] | bool = False,
) -> AnnData:
    """Read an ``.h5ad`` file of spots or transcripts, with clear errors.

    Parameters
    ----------
    path
        The ``.h5ad`` file. It is only read, never modified.
    spatial_key
        ``obsm`` key that must hold the coordinates (um). ``None`` skips the check (e.g. for a
        file whose points are in ``uns``; read those with :func:`read_transcripts`).
    backed
        ``"r"`` (or ``True``) opens the file read-only in backed mode (``X`` stays on disk).

    Returns
    -------
    anndata.AnnData
        The AnnData as stored.

    Raises
    ------
    MissingFileError
        The file does not exist.
    InputError
        The file is not a valid (or is a truncated) h5ad file.
    MissingKeyError
        ``obsm[spatial_key]`` is missing; the message lists the ``obsm`` keys present.
    """
    import anndata

    path = Path(path)
    _check_input_file(path)
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic != _HDF5_MAGIC:
        raise InputError(
            f"{str(path)!r} is not a valid h5ad file (it is not HDF5: the file starts with {magic[:8]!r}). "
            "Check the file; for transcript tables use ms.io.read_transcripts."
        )
    mode = "r" if backed is True else backed
    if mode not in (False, None, "r"):
        raise InputError(f"backed={backed!r} is not valid; use False or 'r' (the input is never written to).")
    try:
        adata = anndata.read_h5ad(path, backed=mode or None)
    except Exception as err:  # h5py/anndata raise many kinds on corrupt or truncated files
        raise InputError(
            f"{str(path)!r} is not a valid h5ad file or is truncated or corrupt ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}). Re-copy or re-export the file."
        ) from err
    if spatial_key is not None and spatial_key not in adata.obsm:
        keys = list(adata.obsm.keys())
        extra = ""
        if "points" in adata.uns:
            extra = " The file holds a points table in uns['points']: read it with ms.io.read_transcripts(path)."
        if adata.isbacked:
            adata.file.close()
        raise MissingKeyError(
            f"{str(path)!r} has no obsm[{spatial_key!r}]; obsm keys present: {_fmt_list(keys)}. Pass "
            f"spatial_key=<one of them>, or set adata.obsm['spatial'] = adata.obs[['x', 'y']].to_numpy(dtype=float) "
            f"from the coordinate columns (in um) and save again.{extra}"
        )
    return adata
