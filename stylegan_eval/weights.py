"""Finding pretrained backbone weights (VGG16 for LPIPS, Inception-v3 for FID) in the torch hub
cache, downloading them when allowed, or failing with one line that says where the file goes.

The cache is torch's own: `$TORCH_HOME/hub/checkpoints/<file>` (TORCH_HOME defaults to
~/.cache/torch), so weights fetched by torchvision, lpips or torch-fidelity are found, and a user
offline can copy the file there. Set STYLEGAN_EVAL_OFFLINE=1 to never attempt a download.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from stylegan_core.errors import UserError


class MissingWeightsError(UserError):
    """Pretrained weights are not cached and could not be downloaded."""


@dataclass(frozen=True)
class PretrainedFile:
    what: str  # human name, e.g. "ImageNet VGG16 (torchvision) for LPIPS"
    filename: str  # name in the hub cache
    url: str  # where the official file is published


def hub_checkpoint_path(filename: str) -> Path:
    """Where torch's hub cache keeps `filename` (reads TORCH_HOME at call time)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def offline() -> bool:
    return os.environ.get("STYLEGAN_EVAL_OFFLINE", "") not in ("", "0")


def resolve(spec: PretrainedFile) -> Path:
    """The cached weights file for `spec`, downloading it first when online.

    Raises MissingWeightsError naming the file and where to put it when it cannot be had.
    """
    path = hub_checkpoint_path(spec.filename)
    if path.is_file():
        return path
    hint = (
        f"{spec.what}: weights file not found at {path}; download {spec.url} on a machine with "
        f"internet and copy it there (or set TORCH_HOME), or pass --substitute-weights for a "
        f"labelled, non-comparable substitute"
    )
    if offline():
        raise MissingWeightsError(hint)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(spec.url, str(path), progress=True)
    except Exception as e:  # any network failure means the same thing to the user
        raise MissingWeightsError(f"{hint} (download failed: {type(e).__name__})") from None
    return path
