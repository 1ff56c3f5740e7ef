"""The one way pretrained weights are found and read: as data, never as code.

Files and where they are found (`locate`):
- an explicit file: a function argument (`fid --inception-weights FILE`) or the spec's
  environment variable (STYLEGAN_EVAL_VGG16_WEIGHTS, STYLEGAN_EVAL_INCEPTION_WEIGHTS): the
  user's own choice, so any weights with the right keys and shapes are accepted;
- otherwise torch's hub cache, `$TORCH_HOME/hub/checkpoints/<official name>` (TORCH_HOME defaults
  to ~/.cache/torch), where torchvision, lpips and torch-fidelity keep what they download and
  where an offline user copies the official file; downloaded there first when online
  (STYLEGAN_EVAL_OFFLINE=1 forbids that).

Reading (`load_state_dict`):
- a file found in the hub cache, shipped inside a package, or carrying the official file name
  anywhere must be the official file: its SHA-256 must start with the published prefix (torch
  hub's naming convention puts it in the file name, e.g. `vgg16-397923af.pth`) before anything in
  it is parsed;
- every file is read with `torch.load(weights_only=True)`, whose restricted unpickler builds only
  tensors and plain containers and refuses any other object, so a pickle payload never runs;
- the result must be a flat {name: tensor} dict, and `check_layout` compares its names and shapes
  with the network that will receive it.
Every failure is one line (`WeightsFileError`) naming the file, what it should be and the fix.
A library's own loader (torchvision through lpips, torch-fidelity) may unpickle arbitrary objects
and check no hash, so it is never handed a file: the networks here get state dicts.
"""

import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stylegan_core.errors import UserError
from stylegan_eval.records import file_sha256


class MissingWeightsError(UserError):
    """Pretrained weights are not cached and could not be downloaded."""


class WeightsFileError(UserError):
    """A weights file that is present but must not or cannot be used (wrong hash, unsafe, corrupt)."""


@dataclass(frozen=True)
class PretrainedFile:
    what: str  # human name, e.g. "ImageNet VGG16 (torchvision)"
    filename: str  # official name, as cached by torch hub
    url: str  # where the official file is published
    sha256_prefix: str  # published SHA-256 (prefix) of the official file, lower-case hex
    env_var: str = ""  # environment variable naming the user's own file instead; "" for none

    def __post_init__(self):
        if len(self.sha256_prefix) < 8 or any(c not in "0123456789abcdef" for c in self.sha256_prefix):
            raise ValueError(f"{self.filename}: sha256_prefix must be at least 8 lower-case hex digits")


@dataclass(frozen=True)
class WeightsFile:
    path: Path
    spec: PretrainedFile
    official: bool  # must match spec.sha256_prefix (found where official files live, or by its name)


@dataclass(frozen=True)
class LoadedWeights:
    state: dict[str, torch.Tensor]  # flat state dict, on the CPU
    path: Path
    sha256: str  # of the whole file, hex
    official: bool  # verified against the published hash (False: a file the user named explicitly)


def hub_checkpoint_path(filename: str) -> Path:
    """Where torch's hub cache keeps `filename` (reads TORCH_HOME at call time)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def offline() -> bool:
    return os.environ.get("STYLEGAN_EVAL_OFFLINE", "") not in ("", "0")


def _fix(file: WeightsFile) -> str:
    spec = file.spec
    if not file.official:
        return f"name a file that holds a plain state dict of the {spec.what} (torch.save(model.state_dict(), ...))"
    own = f" (or name your own file with {spec.env_var})" if spec.env_var else ""
    return f"delete it and place the official file {spec.url} there{own}"


def locate(spec: PretrainedFile, explicit: str | os.PathLike | None = None) -> WeightsFile:
    """The weights file for `spec`: `explicit`, else $spec.env_var, else the hub cache (downloading
    it there first when online). Raises MissingWeightsError naming the file and where it goes
    when the hub cache has none, WeightsFileError when an explicitly named file does not exist."""
    named, source = explicit, "given"
    if named is None and spec.env_var and os.environ.get(spec.env_var):
        named, source = os.environ[spec.env_var], spec.env_var
    if named is not None:
        path = Path(named)
        if not path.is_file():
            # Not "missing": a file the user named must be used, never silently substituted.
            raise WeightsFileError(f"{spec.what}: weights file {path} ({source}) not found; correct the path")
        # Even when named explicitly, a file calling itself the official one must be it.
        return WeightsFile(path, spec, official=path.name == spec.filename)
    path = hub_checkpoint_path(spec.filename)
    if not path.is_file():
        _download(spec, path)
    return WeightsFile(path, spec, official=True)


def _download(spec: PretrainedFile, path: Path) -> None:
    own = f" (or set {spec.env_var} to a file)" if spec.env_var else ""
    hint = (
        f"{spec.what}: weights file not found at {path}; download {spec.url} on a machine with "
        f"internet and copy it there{own}, or pass --substitute-weights for a labelled, "
        f"non-comparable substitute"
    )
    if offline():
        raise MissingWeightsError(hint)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # hash_prefix: torch hub deletes a download whose SHA-256 does not match.
        torch.hub.download_url_to_file(spec.url, str(path), hash_prefix=spec.sha256_prefix, progress=True)
    except Exception as e:  # any network or disk failure means the same thing to the user
        raise MissingWeightsError(f"{hint} (download failed: {type(e).__name__})") from None


def resolve(spec: PretrainedFile) -> Path:
    """The path `locate(spec)` finds (MissingWeightsError when there is none); nothing is read."""
    return locate(spec).path


def read_data(path: str | os.PathLike) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU: tensors and plain containers only.

    Raises WeightsFileError with a short reason ("contains pickled Python objects other than
    tensors", "truncated or not a PyTorch file: ..."), which callers put into their own one line;
    FileNotFoundError, IsADirectoryError and PermissionError pass through.
    Every other torch.load of this package goes through here.
    """
    try:
        with warnings.catch_warnings():
            # A refused file's pickle protocol is worth no warning of its own: the error says it all.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\._weights_only_unpickler")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # The restricted unpickler stopped before building anything it does not know.
        if "GLOBAL" in str(e) or "global" in str(e):
            raise WeightsFileError("it contains pickled Python objects other than tensors (refused, nothing was run)") from None
        raise WeightsFileError("not a PyTorch weights file (its pickle was refused, nothing was run)") from None
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise  # cannot open the file at all: the caller says which file and why
    except Exception as e:  # zip, EOF, unicode, memory errors from a damaged file all mean "unusable"
        first = str(e).strip().splitlines()[0][:120] if str(e).strip() else ""
        detail = f"{type(e).__name__}: {first}" if first else type(e).__name__
        raise WeightsFileError(f"truncated or not a PyTorch file ({detail})") from None


def load_state_dict(file: WeightsFile) -> LoadedWeights:
    """Verify (official files) and read `file` as a flat {name: tensor} dict; see the module docstring."""
    spec, path = file.spec, file.path
    try:
        digest = file_sha256(path)
    except OSError as e:
        raise WeightsFileError(f"{path}: cannot read {spec.what} weights ({e.strerror or type(e).__name__})") from None
    if file.official and not digest.startswith(spec.sha256_prefix):
        raise WeightsFileError(
            f"{path}: not the official {spec.what} file (its SHA-256 starts {digest[:len(spec.sha256_prefix)]}, "
            f"the published one {spec.sha256_prefix}); {_fix(file)}"
        )
    # The file is hashed, then read again: swapping it in between cannot run code (weights_only);
    # it would only change the numbers, as any file the user controls can.
    try:
        state = read_data(path)
    except OSError as e:
        raise WeightsFileError(f"{path}: cannot read {spec.what} weights ({e.strerror or type(e).__name__})") from None
    except WeightsFileError as e:
        raise WeightsFileError(f"{path}: not a usable {spec.what} file: {e}; {_fix(file)}") from None
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise WeightsFileError(
            f"{path}: not a usable {spec.what} file: not a flat state dict of tensors; {_fix(file)}"
        )
    return LoadedWeights(state=dict(state), path=path, sha256=digest, official=file.official)


def check_layout(weights: LoadedWeights, file: WeightsFile, expected: Mapping[str, torch.Size]) -> None:
    """The state dict has exactly the names of `expected`, each with its shape; else one line."""
    got = weights.state
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(expected) & set(got) if tuple(got[k].shape) != tuple(expected[k]))
    if not (missing or unexpected or wrong):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if wrong:
        k = wrong[0]
        parts.append(f"{len(wrong)} of the wrong shape (e.g. {k}: {list(got[k].shape)}, expected {list(expected[k])})")
    raise WeightsFileError(
        f"{weights.path}: not a usable {file.spec.what} file: wrong tensor names or shapes ({', '.join(parts)}); "
        f"{_fix(file)}"
    )


def load_pretrained(spec: PretrainedFile, expected: Mapping[str, torch.Size],
                    explicit: str | os.PathLike | None = None) -> LoadedWeights:
    """locate -> load_state_dict -> check_layout: the weights of `spec`, safe to load strictly."""
    file = locate(spec, explicit)
    weights = load_state_dict(file)
    check_layout(weights, file, expected)
    return weights
