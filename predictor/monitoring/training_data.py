"""Reading training data for a profile: ``.npy``, ``.csv`` and, with pyarrow or pandas, ``.parquet``.

Every reader returns a float64 (rows, features) array whose columns are in the input's feature
order: a CSV or Parquet file with named columns is put in the manifest's ``feature_order`` when it
has one (extra columns, such as the target, are left out), else taken as it is.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from predictor.monitoring.reference import ProfileError

SUFFIXES = (".npy", ".csv", ".parquet")


def read_rows(path: Path, feature_order: Sequence[str] | None) -> np.ndarray:
    """The file's rows as a (rows, features) float64 array."""
    if not path.is_file():
        raise ProfileError(f"training data {str(path)!r} not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _as_rows(_read_npy(path), path)
    if suffix == ".csv":
        header, rows = _read_csv(path)
        return _in_order(header, rows, feature_order, path)
    if suffix == ".parquet":
        header, rows = _read_parquet(path)
        return _in_order(header, rows, feature_order, path)
    raise ProfileError(f"training data {str(path)!r}: expected a file ending in {', '.join(SUFFIXES)}")


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.asarray(np.load(path, allow_pickle=False))  # a pickle in a .npy would run code
    except ValueError as exc:
        raise ProfileError(f"training data {str(path)!r}: not a plain numeric .npy array ({exc})") from None


def _as_rows(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim < 2:
        raise ProfileError(f"training data {str(path)!r}: expected rows of features, got shape {list(array.shape)}")
    try:
        return array.reshape(array.shape[0], -1).astype(np.float64)
    except (TypeError, ValueError):
        raise ProfileError(f"training data {str(path)!r}: values must be numbers, got dtype {array.dtype}") from None


def _read_csv(path: Path) -> tuple[list[str] | None, np.ndarray]:
    """A header is a first line that is not all numbers."""
    with path.open(newline="", encoding="utf-8") as stream:
        lines = [row for row in csv.reader(stream) if row]
    if not lines:
        raise ProfileError(f"training data {str(path)!r} is empty")
    header = None if all(_is_number(cell) for cell in lines[0]) else [cell.strip() for cell in lines[0]]
    body = lines[1:] if header is not None else lines
    widths = {len(row) for row in body}
    if len(widths) > 1:
        raise ProfileError(f"training data {str(path)!r}: rows have different numbers of columns {sorted(widths)}")
    try:
        rows = np.asarray(body, dtype=np.float64)
    except ValueError as exc:
        raise ProfileError(f"training data {str(path)!r}: {exc}") from None
    return header, rows.reshape(len(body), -1)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_parquet(path: Path) -> tuple[list[str] | None, np.ndarray]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        pq = None
    if pq is not None:
        table = pq.read_table(path)
        return list(table.column_names), np.column_stack([table.column(n).to_numpy() for n in table.column_names])
    try:
        import pandas  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        pandas = None
    if pandas is not None:
        try:
            frame = pandas.read_parquet(path)
        except ImportError:
            pass  # pandas without a parquet engine
        else:
            return [str(c) for c in frame.columns], frame.to_numpy()
    raise ProfileError(
        f"training data {str(path)!r}: reading .parquet needs pyarrow (pip install pyarrow); "
        "or save the data as .npy or .csv"
    )


def _in_order(
    header: list[str] | None, rows: np.ndarray, feature_order: Sequence[str] | None, path: Path
) -> np.ndarray:
    if header is None or feature_order is None:
        return _as_rows(rows, path)
    missing = [name for name in feature_order if name not in header]
    if missing:
        raise ProfileError(
            f"training data {str(path)!r} lacks columns {missing} of the manifest's feature_order; it has {header}"
        )
    return _as_rows(rows[:, [header.index(name) for name in feature_order]], path)
