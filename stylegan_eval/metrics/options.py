"""What every metric needs besides its own constants: one small options object.

A metric module takes `(options, config)`: `options` says which generator to measure, where, with
which seed and how fast (none of which may change the value, except the seed); `config` is the
metric's own frozen dataclass of protocol constants (stylegan_eval.metrics.registry names them).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from stylegan_core import distributed
from stylegan_core.errors import ConfigError


@dataclass(frozen=True)
class MetricOptions:
    G: Any  # the generator to measure (stylegan_core.interface); metrics move it to `device`
    device: torch.device = torch.device("cpu")  # where the generator and the feature networks run
    seed: int = 0  # sample i depends only on (seed, i); the only option that changes the value
    batch_size: int = 32  # samples per forward and process; does not change the value
    cache_dir: Path | None = None  # dataset statistics and features; None: fid_cache.default_cache_dir()
    substitute: bool = False  # weights policy: True allows labelled random feature networks when the real ones are absent
    progress: bool = True  # tqdm bars on rank 0
    rank: int = field(default_factory=distributed.rank)  # this process (0 without torch.distributed)
    world_size: int = field(default_factory=distributed.world_size)  # processes sharing the samples

    def __post_init__(self):
        object.__setattr__(self, "device", torch.device(self.device))
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        if self.seed < 0:
            raise ConfigError(f"seed must be non-negative, got {self.seed}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if not 0 <= self.rank < self.world_size:
            raise ConfigError(f"rank {self.rank} is not in 0..{self.world_size - 1}")

    def resolved_cache_dir(self) -> Path:
        from stylegan_eval import fid_cache

        return self.cache_dir if self.cache_dir is not None else fid_cache.default_cache_dir()
