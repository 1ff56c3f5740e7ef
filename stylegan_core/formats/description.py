"""What `stylegan-eval inspect` reports about a model file, filled by each format's reader
without running anything from the file."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NetworkDescription:
    """One network in a file."""

    name: str  # as the file names it ("Gs", "G_ema", "D")
    kind: str  # what builds it ("G_style", "D_basic", "Generator", ...)
    parameters: int  # trainable scalars
    buffers: int = 0  # other stored scalars (running averages, stored noise, lod)
    details: dict = field(default_factory=dict)  # resolution, sizes, options: JSON-able values


@dataclass(frozen=True)
class FileDescription:
    """A model file: its format, networks and anything a user should know before running it."""

    path: str
    format: str  # e.g. "nvlabs-stylegan1-tf", "stylegan-eval-checkpoint"
    sha256: str
    size_bytes: int
    networks: tuple[NetworkDescription, ...]
    facts: dict = field(default_factory=dict)  # e.g. {"resolution": 1024, "truncation_psi": 0.7}
    notes: tuple[str, ...] = ()  # one line each (how to run it, what is refused, ...)

    def to_dict(self) -> dict:
        return {
            "path": self.path, "format": self.format, "sha256": self.sha256, "size_bytes": self.size_bytes,
            "networks": [vars(n) for n in self.networks], "facts": dict(self.facts), "notes": list(self.notes),
        }
