"""Result records: one JSON object per metric evaluation, appended as a line to a results file.

Reports are built from these records with pandas, so every table cell can be traced back to the
record's parameters, sample count, feature network and checkpoint hash.
"""

import dataclasses
import datetime
import json
import math
import os
import platform
from dataclasses import dataclass, field
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stylegan_core.errors import UserError
from stylegan_core.hashing import file_sha256  # noqa: F401  (the hash records carry; imported from here)

RECORD_VERSION = 1


@dataclass(frozen=True)
class FeatureNetwork:
    """Identity of the network a metric measured with (LPIPS-VGG16, Inception-v3, a classifier)."""

    name: str  # e.g. "lpips-vgg16-v0.1", "inception-v3-compat"
    weights: str  # file the backbone weights came from, or "substitute:<how>"
    substitute: bool  # True when the weights are NOT the standard pretrained ones
    sha256: str | None = None  # hash of the weights file, when there is one


@dataclass(frozen=True)
class ResultRecord:
    metric: str  # protocol name, e.g. "ppl_wend", "fid50k", "ls"
    value: float  # the headline number (for ls: the W score; see extras)
    params: dict[str, Any]  # the metric's parameters (space, epsilon, crop, ...)
    num_samples: int  # samples actually used (compare with the paper's count)
    seed: int
    model: str  # a label: preset name or checkpoint stem
    checkpoint: str | None  # path as given, or None for a generator built in memory
    checkpoint_sha256: str | None
    feature_network: FeatureNetwork | None
    wall_time_s: float
    extras: dict[str, Any] = field(default_factory=dict)  # metric-specific details
    versions: dict[str, str] = field(default_factory=lambda: library_versions())
    created: str = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat())
    record_version: int = RECORD_VERSION

    def __post_init__(self):
        if not math.isfinite(self.value):
            raise ValueError(f"metric {self.metric} produced a non-finite value {self.value}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "ResultRecord":
        if not isinstance(d, dict):
            raise ValueError(f"expected a JSON object, got {type(d).__name__}")
        d = dict(d)
        version = d.get("record_version", RECORD_VERSION)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"invalid record_version {version!r}")
        if version > RECORD_VERSION:
            # A newer writer may have changed what fields mean; reading it as version 1 could mislabel numbers.
            raise ValueError(f"record version {version} was written by a newer stylegan-eval (this one reads up to "
                             f"{RECORD_VERSION}); upgrade stylegan-eval to read it")
        fn = d.get("feature_network")
        d["feature_network"] = FeatureNetwork(**fn) if fn is not None else None
        names = {f.name for f in dataclasses.fields(ResultRecord)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown record fields {sorted(unknown)}")
        return ResultRecord(**d)


def library_versions() -> dict[str, str]:
    """Versions of the libraries a number depends on (from package metadata: importing sklearn
    and friends just to read a version string would cost seconds)."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for dist in ("torch", "numpy", "scikit-learn", "scipy", "lpips", "torch-fidelity", "stylegan-eval"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions


def append_jsonl(path: str | os.PathLike, record: ResultRecord) -> None:
    """Append the record as one line; a single write so concurrent appenders never interleave."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record.to_dict(), sort_keys=True) + "\n"
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        if e.filename is None:  # a full disk shows at write/fsync, whose errors name no file
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


def read_jsonl(path: str | os.PathLike) -> list[ResultRecord]:
    """All records in a results file; a malformed line is an error naming the file and line."""
    return [record for _, record in iter_records(path)]


def iter_records(path: str | os.PathLike) -> Iterator[tuple[int, ResultRecord]]:
    """(line number, record) for each non-blank line; a binary, non-JSON or newer-version line is
    a UserError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: results file not found" if not path.exists() else f"{path}: not a results file (a folder?)")
    with open(path, "rb") as f:  # bytes: a binary file must be one clear error, not a UnicodeDecodeError
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                yield lineno, ResultRecord.from_dict(json.loads(raw.decode("utf-8")))
            except UnicodeDecodeError:
                raise UserError(f"{path}:{lineno}: not a results file (binary data, not JSON text)") from None
            except (ValueError, TypeError) as e:
                raise UserError(f"{path}:{lineno}: not a result record ({e})") from None
