"""Provenance: the one step that turns a metric's typed result into a ResultRecord.

Everything a record says about WHERE a number came from (label, checkpoint file and its SHA-256,
preset, library versions) is gathered once per generator here, so several metrics measured in
one process share one hash of the checkpoint; everything about WHAT was measured (value,
parameters, sample count, feature network, typed extras) comes from the metric's result.
"""

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from stylegan_eval.records import FeatureNetwork, ResultRecord, file_sha256, library_versions


class Extras(Protocol):
    """A metric's typed details; `to_dict()` is what the record's `extras` holds."""

    def to_dict(self) -> dict[str, Any]: ...


def extras_from_dict(cls, d: dict[str, Any]):
    """An extras dataclass from a record's `extras` dict: unknown keys are an error (a misspelt
    key must not vanish); fields with a default may be absent."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown extras {sorted(unknown)}")
    return cls(**d)


class RecordExtras:
    """Base of the metrics' typed extras dataclasses: `to_dict()` is the record's `extras` (an
    optional field left unset, None, is left out); `from_dict` reads one back by field."""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        return extras_from_dict(cls, d)


@dataclass(frozen=True)
class MetricResult:
    """What a metric module returns: everything about the measurement, nothing about the model."""

    metric: str  # record name, e.g. "ppl_wend", "fid50k", "kid50k", "ls_w"
    value: float  # the headline number
    params: dict[str, Any]  # the metric's constants and options that matter
    num_samples: int  # generated samples used
    seed: int
    feature_network: FeatureNetwork | None
    wall_time_s: float
    extras: Extras  # typed per metric (PPLExtras, FIDExtras, KIDExtras, PRExtras, LSExtras)


@dataclass(frozen=True)
class Provenance:
    label: str  # record.model: --label, the run folder's name or the checkpoint's stem
    checkpoint: str | None  # the file the generator came from; None for one built in memory
    checkpoint_sha256: str | None  # computed once, when the provenance is made
    preset: str | None  # the checkpoint's preset name
    versions: dict[str, str] = field(default_factory=library_versions)

    @staticmethod
    def of_checkpoint(path: str | os.PathLike, label: str | None = None, preset: str | None = None) -> "Provenance":
        """Hashes the file (once) now."""
        return Provenance(label or Path(path).stem, str(path), file_sha256(path), preset)

    @staticmethod
    def in_memory(label: str = "generator", preset: str | None = None) -> "Provenance":
        return Provenance(label, None, None, preset)

    def record(self, result: MetricResult) -> ResultRecord:
        """The ResultRecord of `result` measured on this generator."""
        return ResultRecord(
            metric=result.metric,
            value=result.value,
            params={**result.params, "preset": self.preset},
            num_samples=result.num_samples,
            seed=result.seed,
            model=self.label,
            checkpoint=self.checkpoint,
            checkpoint_sha256=self.checkpoint_sha256,
            feature_network=result.feature_network,
            wall_time_s=result.wall_time_s,
            extras=result.extras.to_dict(),
            versions=dict(self.versions),
        )
