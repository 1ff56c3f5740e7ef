"""Binary attribute labels: reading CelebA `list_attr_celeba.txt`-style files and CSV.

CelebA format (whitespace separated):
    line 1: number of rows
    line 2: attribute names
    then:   filename v1 v2 ... (one value per attribute)
CSV format: a header whose first column is the file name and the rest attribute names, then one
row per image. Values must be 1 (has it), -1 (has not) or 0 (unknown). Any deviation (a count
that does not match, a short or long row, an unknown value, a duplicate file or attribute name)
is refused with a `DatasetError` that names the file and line.
"""

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stylegan_core.errors import DatasetError

_VALUES = {"1": 1, "+1": 1, "-1": -1, "0": 0}


@dataclass(frozen=True)
class AttributeTable:
    """Labels read from one file."""

    path: Path  # the file they came from (for messages)
    names: tuple[str, ...]  # attribute names, in column order
    filenames: tuple[str, ...]  # one per row, as written in the file
    values: np.ndarray  # int8 [rows, len(names)] of 1/-1/0
    lines: tuple[int, ...]  # 1-based line number of each row (for messages)


def read_attributes(path: str | os.PathLike, names: list[str] | tuple[str, ...] | None = None) -> AttributeTable:
    """Read a CelebA list_attr-style text file or (by the .csv suffix) a CSV file.

    names: keep only these attributes, in this order (an unknown name is an error); None: all.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise DatasetError(f"cannot read attribute file {path}: {e}") from None
    except UnicodeDecodeError as e:
        raise DatasetError(
            f"{path}: not a text file (byte {e.object[e.start]:#04x} at offset {e.start} is not UTF-8); "
            "give a CelebA list_attr_celeba.txt-style file or a .csv of attribute columns"
        ) from None
    table = _parse_csv(path, text) if path.suffix.lower() == ".csv" else _parse_celeba(path, text)
    if names is None:
        return table
    unknown = [n for n in names if n not in table.names]
    if unknown:
        raise DatasetError(
            f"{path}: unknown attribute name(s) {', '.join(unknown)}; the file has: {', '.join(table.names)}"
        )
    cols = [table.names.index(n) for n in names]
    return AttributeTable(table.path, tuple(names), table.filenames, table.values[:, cols], table.lines)


def _check_names(path: Path, line: int, names: list[str]) -> None:
    if not names:
        raise DatasetError(f"{path}:{line}: no attribute names")
    seen = set()
    for n in names:
        if not n:
            raise DatasetError(f"{path}:{line}: empty attribute name")
        if n in seen:
            raise DatasetError(f"{path}:{line}: attribute name {n!r} appears twice")
        seen.add(n)


def _parse_row(path: Path, line: int, fields: list[str], names: list[str]) -> list[int]:
    if fields[0] in _VALUES:
        raise DatasetError(f"{path}:{line}: the first column must be the image file name, got {fields[0]!r}")
    if len(fields) != len(names) + 1:
        got = len(fields) - 1  # the first field is the file name (checked above)
        raise DatasetError(
            f"{path}:{line}: expected a file name and {len(names)} value{'s' if len(names) != 1 else ''} (one per attribute), "
            f"got a file name and {got} value{'s' if got != 1 else ''}"
        )
    row = []
    for name, v in zip(names, fields[1:]):
        if v.strip() not in _VALUES:
            raise DatasetError(f"{path}:{line}: value {v!r} for attribute {name!r} is not 1, -1 or 0")
        row.append(_VALUES[v.strip()])
    return row


def _build(path: Path, names: list[str], rows: list[tuple[int, str, list[int]]]) -> AttributeTable:
    seen: dict[str, int] = {}
    for line, fname, _ in rows:
        if fname in seen:
            raise DatasetError(f"{path}:{line}: file {fname!r} already listed on line {seen[fname]}")
        seen[fname] = line
    values = np.array([r for _, _, r in rows], dtype=np.int8).reshape(len(rows), len(names))
    return AttributeTable(path, tuple(names), tuple(f for _, f, _ in rows), values, tuple(n for n, _, _ in rows))


def _parse_celeba(path: Path, text: str) -> AttributeTable:
    lines = text.splitlines()
    if len(lines) < 2:
        raise DatasetError(f"{path}: expected a row count on line 1 and attribute names on line 2")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise DatasetError(f"{path}:1: expected the number of rows, got {lines[0].strip()[:40]!r}") from None
    names = lines[1].split()
    _check_names(path, 2, names)
    rows = []
    for k, raw in enumerate(lines[2:], start=3):
        fields = raw.split()
        if not fields:
            continue  # blank lines (e.g. a trailing newline) carry nothing
        rows.append((k, fields[0], _parse_row(path, k, fields, names)))
    if len(rows) != count:
        raise DatasetError(f"{path}:1: the header says {count} rows but the file has {len(rows)}")
    return _build(path, names, rows)


def _parse_csv(path: Path, text: str) -> AttributeTable:
    reader = csv.reader(text.splitlines())
    try:
        header = next(reader)
    except StopIteration:
        raise DatasetError(f"{path}: empty CSV file; expected a header 'filename,<attribute>,...'") from None
    header = [h.strip() for h in header]
    if len(header) < 2:
        raise DatasetError(f"{path}:1: expected a header 'filename,<attribute>,...', got {','.join(header)!r}")
    names = header[1:]
    _check_names(path, 1, names)
    rows = []
    for fields in reader:
        k = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        fields = [f.strip() for f in fields]
        rows.append((k, fields[0], _parse_row(path, k, fields, names)))
    return _build(path, names, rows)
