"""Which model format a file is, and its `FileDescription`, read as data: nothing from the file
runs. Shared by `stylegan-eval inspect` and the report's model-file sections."""

import os
from pathlib import Path
from typing import Callable

from stylegan_core.errors import CheckpointError
from stylegan_core.formats.description import FileDescription


def describers() -> list[tuple[Callable[[Path], bool], Callable[[Path], FileDescription]]]:
    """(recognises(path) -> bool, describe(path) -> FileDescription) per known format, in order:
    official pickles and NVlabs pickles are told apart by content before the zip check of a
    project checkpoint."""
    from stylegan_core.checkpoint import describe_checkpoint, is_project_checkpoint
    from stylegan_core.formats.nvlabs_torch import describe as describe_nvlabs
    from stylegan_core.formats.nvlabs_torch import is_nvlabs_torch_pickle
    from stylegan_core.formats.official_tf import is_official_pickle
    from stylegan_core.formats.official_tf_networks import describe_official

    return [(is_official_pickle, describe_official), (is_nvlabs_torch_pickle, describe_nvlabs),
            (is_project_checkpoint, describe_checkpoint)]


def is_model_file(path: str | os.PathLike) -> bool:
    """Whether `path` is a file in one of the formats `describe_model_file` reads (by content)."""
    path = Path(path)
    return path.is_file() and any(recognises(path) for recognises, _ in describers())


def describe_model_file(path: str | os.PathLike) -> FileDescription:
    """What a checkpoint (or a run folder's latest snapshot), official StyleGAN pickle or NVlabs
    StyleGAN2-ADA / StyleGAN3 pickle is: format, networks, sizes, truncation defaults, SHA-256."""
    from stylegan_core.checkpoint import resolve_checkpoint

    resolved = resolve_checkpoint(path)
    if not resolved.is_file():
        raise CheckpointError(f"{path}: no such file")
    for recognises, describe in describers():
        if recognises(resolved):
            return describe(resolved)
    raise CheckpointError(
        f"{Path(path)}: not a format this program reads (a stylegan-eval checkpoint, an official StyleGAN "
        "pickle or an NVlabs StyleGAN2-ADA / StyleGAN3 pickle)"
    )
