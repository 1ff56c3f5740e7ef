"""Read the official StyleGAN (v1) TensorFlow pickles as plain data, without TensorFlow and
without running anything from the file.

NVlabs/stylegan saves a snapshot as a pickled tuple (G, D, Gs) of `dnnlib.tflib.network.Network`
objects (the released models and the CelebA-HQ attribute classifiers are the same kind of file;
a classifier is a single Network). A Network pickles as a dict (its `__getstate__`): version,
name, static_kwargs (the build function's keyword arguments), components (nested Networks, e.g.
Gs's mapping and synthesis), build_module_src (the network's Python source, as text),
build_func_name (G_style, G_mapping, G_synthesis, D_basic) and variables, a list of
(local name, ndarray).

The official loader imports the source with `exec`. We never do: a restricted unpickler maps the
Network class to a plain record (`TFNetwork`) and allows only the numpy globals that arrays,
dtypes and 0-d scalars need, in the spelling of numpy 1 (`numpy.core.multiarray._reconstruct`,
as written in 2019) and of numpy 2 (`numpy._core.numeric._frombuffer`, protocol-5 buffers),
plus `_codecs.encode` restricted to latin-1 (numpy's pickles of byte strings use it). Any other
global is refused by name before it can be called, so a `__reduce__` payload never runs; the
source text stays inert. Arrays must be plain numeric arrays (no object dtype).
"""

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stylegan_core.errors import CheckpointError
from stylegan_core.hashing import file_sha256

FORMAT = "nvlabs-stylegan1-tf"
NETWORK_CLASS = ("dnnlib.tflib.network", "Network")
# Sniffing: the class path appears near the start of every such pickle (the outer tuple's first
# element is a Network). Project checkpoints are zip archives and never contain it there.
_SNIFF_BYTES = 1 << 16
# Variables that the official code creates with trainable=False (not counted as parameters).
_NON_TRAINABLE = ("lod", "dlatent_avg")


def _latin1_encode(text, encoding="utf-8"):
    """numpy pickles raw bytes as `_codecs.encode(str, 'latin1')`; nothing else is allowed."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode({type(text).__name__}, {encoding!r})")
    return text.encode("latin-1")


def _numpy_globals() -> dict[tuple[str, str], object]:
    """The array / dtype / scalar constructors under both numpy spellings."""
    try:  # numpy >= 2 keeps the implementation in numpy._core
        from numpy._core import multiarray as _ma, numeric as _num
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray as _ma, numeric as _num
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): _latin1_encode}
    for prefix in ("numpy.core", "numpy._core"):
        allowed[(f"{prefix}.multiarray", "_reconstruct")] = _ma._reconstruct
        allowed[(f"{prefix}.multiarray", "scalar")] = _ma.scalar
        if hasattr(_num, "_frombuffer"):
            allowed[(f"{prefix}.numeric", "_frombuffer")] = _num._frombuffer
    return allowed


_ALLOWED = _numpy_globals()


class _NetworkState:
    """Stand-in for dnnlib.tflib.network.Network: keeps the pickled state dict, nothing else."""

    __slots__ = ("state",)

    def __setstate__(self, state):
        self.state = state


class _OfficialUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) == NETWORK_CLASS:
            return _NetworkState
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refused global {module}.{name}")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused persistent id")


@dataclass(frozen=True)
class TFNetwork:
    """One official Network as data: what its pickle holds, minus anything executable."""

    name: str  # e.g. "Gs", "G_mapping"
    build_func_name: str  # G_style | G_mapping | G_synthesis | D_basic
    static_kwargs: dict  # the build function's keyword arguments (defaults are not stored)
    variables: dict[str, np.ndarray]  # own variables by local name ("4x4/Conv/weight")
    components: dict[str, "TFNetwork"] = field(default_factory=dict)  # e.g. mapping, synthesis
    build_module_src: str = ""  # the network's source as inert text; never executed
    version: int = 0

    def num_values(self, trainable: bool) -> int:
        """Scalars in this network and its components; trainable=False counts lod, dlatent_avg
        and the stored noise maps (created with trainable=False by the official code)."""
        own = sum(int(v.size) for k, v in self.variables.items() if _is_trainable(k) == trainable)
        return own + sum(c.num_values(trainable) for c in self.components.values())


def _is_trainable(local_name: str) -> bool:
    leaf = local_name.rsplit("/", 1)[-1]
    return not (leaf in _NON_TRAINABLE or (leaf.startswith("noise") and leaf[5:].isdigit()))


def _as_network(path: Path, obj, where: str) -> TFNetwork:
    if not isinstance(obj, _NetworkState) or not isinstance(getattr(obj, "state", None), dict):
        raise CheckpointError(f"official pickle {path}: {where} is not a StyleGAN Network")
    s = obj.state
    missing = [k for k in ("name", "static_kwargs", "build_func_name", "variables") if k not in s]
    if missing:
        raise CheckpointError(f"official pickle {path}: {where} lacks {missing}")
    if not isinstance(s["static_kwargs"], dict) or not isinstance(s["build_func_name"], str):
        raise CheckpointError(f"official pickle {path}: {where} has malformed static_kwargs or build_func_name")
    variables = {}
    for item in s["variables"]:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise CheckpointError(f"official pickle {path}: {where} has a malformed variable entry")
        name, value = item
        value = np.asarray(value) if isinstance(value, np.generic) else value
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiub":
            raise CheckpointError(f"official pickle {path}: variable {where}/{name} is not a numeric array")
        variables[name] = value
    comps = s.get("components") or {}
    if not isinstance(comps, dict):
        raise CheckpointError(f"official pickle {path}: {where} has malformed components")
    src = s.get("build_module_src", "")
    return TFNetwork(
        name=str(s["name"]),
        build_func_name=s["build_func_name"],
        static_kwargs=dict(s["static_kwargs"]),
        variables=variables,
        components={str(k): _as_network(path, v, f"{where}.{k}") for k, v in comps.items()},
        build_module_src=src if isinstance(src, str) else "",
        version=int(s.get("version", 0)),
    )


def is_official_pickle(path: str | os.PathLike) -> bool:
    """Whether `path` looks like an official StyleGAN TF pickle (by content, not by name)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return False
    module, name = NETWORK_CLASS
    return head[:1] == b"\x80" and module.encode() in head and name.encode() in head


def read_official_pickle(path: str | os.PathLike) -> tuple[TFNetwork, ...]:
    """The Networks in an official pickle, as data: (G, D, Gs) for a snapshot or release,
    (net,) for a single Network (the CelebA-HQ attribute classifiers).
    Raises CheckpointError (one line) for a refused global, a truncated or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"official pickle {path}: no such file")
    try:
        with open(path, "rb") as f:
            obj = _OfficialUnpickler(f).load()
    except pickle.UnpicklingError as e:
        text = str(e)
        if text.startswith("refused"):
            raise CheckpointError(
                f"official pickle {path}: {text} (only numpy arrays and the StyleGAN Network class are "
                "allowed); nothing from the file was run"
            ) from None
        raise CheckpointError(f"official pickle {path}: unreadable (truncated or corrupt): {text[:160]}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError, OverflowError,
            RecursionError) as e:
        raise CheckpointError(
            f"official pickle {path}: unreadable (truncated or corrupt): {type(e).__name__}: {str(e)[:160]}"
        ) from None
    if isinstance(obj, _NetworkState):
        return (_as_network(path, obj, "network"),)
    if isinstance(obj, tuple) and len(obj) == 3:
        return tuple(_as_network(path, o, w) for o, w in zip(obj, ("G", "D", "Gs")))
    raise CheckpointError(f"official pickle {path}: expected a Network or a (G, D, Gs) tuple, got {type(obj).__name__}")
