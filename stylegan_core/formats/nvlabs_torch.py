"""StyleGAN2-ADA / StyleGAN3 PyTorch network pickles (NVlabs stylegan2-ada-pytorch, stylegan3).

The format. A snapshot `network-snapshot-*.pkl` is a plain pickle of a dict: G, D, G_ema (and
usually augment_pipe, training_set_kwargs). The networks are instances of classes decorated by
NVlabs `torch_utils.persistence.persistent_class`; each one pickles as a call
`torch_utils.persistence._reconstruct_persistent_obj(meta)` with
meta = {type: "class", version, module_src, class_name, state}: `module_src` is the whole Python
source of the module that defined the class, and `state` is the module's `__dict__` (its
`_parameters`, `_buffers`, `_modules`, plain attributes and the constructor's `_init_kwargs`).
The official loader EXECUTES module_src to rebuild the class. Tensors pickle as
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` whose storage is a nested
`torch.save` archive (`torch.storage._load_from_bytes`); StyleGAN3 keeps numpy arrays and scalars
in its attributes.

Two ways to read it:
- `describe(path)` reads the file as DATA: a restricted unpickler maps each persistent object to a
  `PersistentObject` record (module_src stays inert text), rebuilds tensors only through
  `torch.load(weights_only=True)` on the nested archives, allows the numpy array/scalar
  constructors, plain containers and stand-ins for torch.nn's own layer classes, and refuses every
  other global with one line naming it. Nothing from the file runs.
- `load_nvlabs_generator(path, trust_code=True)` runs the file's own code (the normal pickle, with
  the NVlabs repository importable) and adapts its `G(z, c, truncation_psi, truncation_cutoff,
  noise_mode)` to this project's generator interface (`NVlabsGenerator`). Without trust_code it
  raises one line saying what the file is and how to run it.

What a StyleGAN2/3 model can be measured with: every metric. The metrics draw per-sample noise and
pass it with noise_mode="given"; NVlabs' layers only know "random"/"const"/"none", so the adapter
lends the given maps to each layer's `noise_const` buffer for the call (the layer scales them by
its learned strength exactly as random noise). StyleGAN3 has no noise inputs (noise_shapes = []).
A conditional model is measured on one class at a time (`class_idx`); the official metrics
instead draw labels from the training set.
"""

import collections
import importlib
import io
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from stylegan_core.errors import CheckpointError, ConfigError
from stylegan_core.formats.description import FileDescription, NetworkDescription
from stylegan_core.hashing import file_sha256

PERSISTENCE_MODULE = "torch_utils.persistence"
RECONSTRUCT = "_reconstruct_persistent_obj"
NETWORK_KEYS = ("G", "D", "G_ema", "augment_pipe")
NOISE_MODES = ("random", "const", "none", "given")
_SNIFF_BYTES = 1 << 20  # the first persistent object's global comes before its (large) source text


class UnsafePickleError(CheckpointError):
    """A pickle that needs something this reader does not load as data (a possible code payload)."""


class UntrustedPickleError(CheckpointError):
    """A network pickle that can only run with its own code, which the user has not trusted."""


# ---------------------------------------------------------------------------------------------
# Reading the pickle as data.


@dataclass
class PersistentObject:
    """One persistent network object, as data: its class name, its module source (text, never
    run), the persistence version, and its state dict (`_parameters`, `_buffers`, `_modules`, ...)."""

    class_name: str
    module_src: str
    version: object
    state: dict


class TorchModuleStandIn:
    """A torch.nn layer class inside a network (e.g. torch.nn.Linear), recorded, never built."""

    qualname = "torch.nn.Module"

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {}


class _EasyDict(dict):
    """dnnlib.util.EasyDict as a plain dict (it holds the networks' constructor kwargs)."""


def _persistent_record(meta) -> PersistentObject:
    ok = isinstance(meta, dict) and meta.get("type") == "class"
    if not (ok and isinstance(meta.get("class_name"), str) and isinstance(meta.get("module_src"), str)):
        raise pickle.UnpicklingError("a persistent object without type 'class', class_name and module_src")
    state = meta.get("state")
    return PersistentObject(meta["class_name"], meta["module_src"], meta.get("version"), dict(state or {}))


def _storage_from_bytes(data):
    """A tensor storage pickled as a nested torch.save archive, read with weights_only=True."""
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("a tensor storage that is not bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage deprecation notices
        storage = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    if not isinstance(storage, torch.storage.TypedStorage):
        raise pickle.UnpicklingError(f"a tensor storage that reads as {type(storage).__name__}")
    return storage


def _is_int_tuple(v) -> bool:
    return isinstance(v, tuple) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)


def _tensor(storage, offset, size, stride, *_ignored):
    """torch._utils._rebuild_tensor_v2 with checked arguments (requires_grad, hooks and metadata
    are dropped: a network read as data needs values only)."""
    if not isinstance(storage, torch.storage.TypedStorage) or not isinstance(offset, int):
        raise pickle.UnpicklingError("a tensor whose storage or offset is malformed")
    size, stride = tuple(size), tuple(stride)
    if not (_is_int_tuple(size) and _is_int_tuple(stride) and len(size) == len(stride)):
        raise pickle.UnpicklingError("a tensor whose size or stride is malformed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch._utils._rebuild_tensor(storage, offset, size, stride)  # bounds-checked by set_


def _parameter(data, *_ignored):
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("a parameter without tensor data")
    return data


def _numpy_globals() -> dict:
    """numpy's array/dtype/scalar constructors under both spellings (numpy 1 `numpy.core`,
    numpy 2 `numpy._core`), so files written by either read here."""
    import numpy

    try:
        multiarray = importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy 1
        multiarray = importlib.import_module("numpy.core.multiarray")
    out = {("numpy", "ndarray"): numpy.ndarray, ("numpy", "dtype"): numpy.dtype}
    for mod in ("numpy._core.multiarray", "numpy.core.multiarray"):
        out[(mod, "_reconstruct")], out[(mod, "scalar")] = multiarray._reconstruct, multiarray.scalar
    return out


class _DataUnpickler(pickle.Unpickler):
    """Unpickler that builds only data; any global outside the table below is refused."""

    def __init__(self, f):
        super().__init__(f)
        self._allowed = {
            (PERSISTENCE_MODULE, RECONSTRUCT): _persistent_record,
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("dnnlib.util", "EasyDict"): _EasyDict,
            ("dnnlib", "EasyDict"): _EasyDict,
            ("torch._utils", "_rebuild_tensor_v2"): _tensor,
            ("torch._utils", "_rebuild_parameter"): _parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): _parameter,
            ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
            ("torch", "Size"): torch.Size,
            ("torch", "device"): torch.device,
            **_numpy_globals(),
        }

    def find_class(self, module, name):
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module.startswith("torch.nn.modules.") and isinstance(getattr(nn, name, None), type):
            return type(name, (TorchModuleStandIn,), {"qualname": f"{module}.{name}"})
        raise UnsafePickleError(f"{module}.{name}")

    def persistent_load(self, pid):
        raise UnsafePickleError(f"persistent id {str(pid)[:40]!r}")


def is_nvlabs_torch_pickle(path: str | os.PathLike) -> bool:
    """True for a pickle that holds NVlabs persistent objects (decided from its first bytes; no
    unpickling). False for folders, zip checkpoints and other pickles."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    return head[:1] == b"\x80" and PERSISTENCE_MODULE.encode() in head and RECONSTRUCT.encode() in head


def read_persistence_pickle(path: str | os.PathLike):
    """The unpickled file as data: dicts, tensors, numpy values and PersistentObject records.
    Raises UnsafePickleError / CheckpointError with one line; never runs code from the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            return _DataUnpickler(f).load()
    except UnsafePickleError as e:
        raise UnsafePickleError(
            f"{path}: refused: the pickle needs {e}, which a StyleGAN2/3 network file does not "
            "(possibly a code payload); nothing from it was run"
        ) from None
    except Exception as e:  # truncated or corrupt: EOFError, UnpicklingError, RuntimeError, ...
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(f"{path}: unreadable (truncated or corrupt pickle): {type(e).__name__}: {first}") from None


# ---------------------------------------------------------------------------------------------
# describe(): what the file is, from the data alone.


_HEADLINE_KWARGS = ("z_dim", "c_dim", "w_dim", "num_ws", "img_resolution", "img_channels")
_FORMAT_NAMES = {"stylegan2-ada": "StyleGAN2-ADA", "stylegan3": "StyleGAN3", "unknown": "NVlabs-style (torch_utils.persistence)"}


def source_origin(src: str) -> tuple[str, str]:
    """(format, module) recognised from a persistent class's source text: which NVlabs file it is."""
    if "class SynthesisInput" in src and "filtered_lrelu" in src:
        return "stylegan3", "training/networks_stylegan3.py of NVlabs stylegan3"
    if "class SynthesisBlock" in src and "modulated_conv2d" in src:
        if "update_emas" in src:
            return "stylegan2-ada", "training/networks_stylegan2.py of NVlabs stylegan3"
        return "stylegan2-ada", "training/networks.py of NVlabs stylegan2-ada-pytorch"
    if "class AugmentPipe" in src:
        return "unknown", "training/augment.py of NVlabs"
    return "unknown", f"unrecognised module, {src.count(chr(10)) + 1} source lines"


def _count(obj) -> tuple[int, int]:
    """(parameter elements, buffer elements) of a network record and all its sub-networks."""
    state = getattr(obj, "state", None)
    if not isinstance(state, dict):
        return 0, 0
    params = sum(t.numel() for t in (state.get("_parameters") or {}).values() if isinstance(t, torch.Tensor))
    bufs = sum(t.numel() for t in (state.get("_buffers") or {}).values() if isinstance(t, torch.Tensor))
    for sub in (state.get("_modules") or {}).values():
        p, b = _count(sub)
        params, bufs = params + p, bufs + b
    return params, bufs


def _scalar(v):
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if hasattr(v, "item") and getattr(v, "size", 2) == 1:  # numpy scalars
        return v.item()
    return None


def _init_kwargs(state: dict) -> dict:
    """Scalar constructor arguments (nested kwargs dicts one level down, dotted), then the
    network's own scalar attributes for the headline fields the constructor did not name."""
    out = {}
    for k, v in dict(state.get("_init_kwargs") or {}).items():
        if isinstance(v, dict):
            out.update({f"{k}.{k2}": _scalar(v2) for k2, v2 in v.items() if _scalar(v2) is not None})
        elif _scalar(v) is not None:
            out[k] = _scalar(v)
    for k in _HEADLINE_KWARGS:
        if k not in out and isinstance(_scalar(state.get(k)), int):
            out[k] = _scalar(state[k])
    return out


def _generator(networks) -> NetworkDescription | None:
    return next((n for n in networks if n.name == "G_ema"), None) or next((n for n in networks if n.name == "G"), None)


def _repository(gen: NetworkDescription | None) -> str:
    """The repository whose code runs the generator, from its recognised module."""
    module = gen.details.get("module", "") if gen is not None else ""
    for repo in ("NVlabs stylegan2-ada-pytorch", "NVlabs stylegan3"):
        if module.endswith(repo):
            return repo
    return "NVlabs stylegan2-ada-pytorch or stylegan3"


NO_TRUNCATION = "none stored (metrics use psi = 1)"  # NVlabs pickles keep no truncation defaults


def describe(path: str | os.PathLike) -> FileDescription:
    """What an NVlabs StyleGAN2-ADA / StyleGAN3 pickle holds, read as data (nothing runs).
    Each network: its class name as kind, parameter and buffer counts, and in details the
    defining module (recognised from its source text) and scalar constructor arguments.
    Facts: the generator's resolution and the (absent) truncation defaults; notes: ADA's p,
    labels, training set, how to run it. Raises CheckpointError (one line) for unsafe or
    unreadable files."""
    path = Path(path)
    data = read_persistence_pickle(path)
    if not isinstance(data, dict) or not any(isinstance(data.get(k), PersistentObject) for k in NETWORK_KEYS):
        raise CheckpointError(f"{path}: a pickle, but not an NVlabs network snapshot (no G, D or G_ema network in it)")
    networks, notes = [], []
    for key in NETWORK_KEYS:
        obj = data.get(key)
        if not isinstance(obj, PersistentObject):
            continue
        _, module = source_origin(obj.module_src)
        params, bufs = _count(obj)
        kwargs = {k: v for k, v in _init_kwargs(obj.state).items() if k != "module"}
        networks.append(NetworkDescription(name=key, kind=obj.class_name, parameters=params, buffers=bufs,
                                           details={"module": module, **kwargs}))
        if key == "augment_pipe" and isinstance(obj.state.get("_buffers", {}).get("p"), torch.Tensor):
            notes.append(f"augment_pipe p = {float(obj.state['_buffers']['p']):.4f} (ADA augmentation probability)")
        if obj.version != 6:
            notes.append(f"{key}: persistence version {obj.version!r} (NVlabs releases write 6)")
    gen = _generator(networks)
    # The generator decides the format (StyleGAN3 snapshots hold a StyleGAN2 discriminator).
    fmt = source_origin(data[gen.name].module_src)[0] if gen else "unknown"
    if fmt == "unknown":
        notes.append("torch_utils.persistence pickle whose generator source is not a recognised NVlabs release")
    resolution = gen.details.get("img_resolution") if gen else None
    if gen and gen.details.get("c_dim"):
        notes.append(f"conditional generator: {gen.details['c_dim']} classes (run one with --class)")
    ts = data.get("training_set_kwargs")
    if isinstance(ts, dict):
        labels = "labels used" if ts.get("use_labels") else "no labels"
        notes.append(f"training set: {ts.get('path')} ({labels}, x-flips {'on' if ts.get('xflip') else 'off'})")
    notes.append(f"running it executes the module source stored in the file: needs the {_repository(gen)} "
                 "repository importable and --trust-pickle-code")
    return FileDescription(path=str(path), format=fmt, sha256=file_sha256(path), size_bytes=path.stat().st_size,
                           networks=tuple(networks), facts={"resolution": resolution, "truncation": NO_TRUNCATION},
                           notes=tuple(notes))


# ---------------------------------------------------------------------------------------------
# Running it (trusted): the adapter to the project's generator interface.


class NVlabsMapping(nn.Module):
    """z [N, z_dim] -> ws [N, num_ws, w_dim] through NVlabs' MappingNetwork(z, c, ...), with c the
    adapter's fixed label (zeros [N, 0] for an unconditional model)."""

    def __init__(self, net: nn.Module, c: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("c", c)  # [1, c_dim]
        self.z_dim = int(net.z_dim)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.net.w_avg

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None):
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"mapping network expects z of shape [N, {self.z_dim}], got {list(z.shape)}")
        c = self.c.expand(z.shape[0], -1)
        return self.net(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


class NVlabsSynthesis(nn.Module):
    """ws -> images through NVlabs' SynthesisNetwork, with this project's noise_mode vocabulary."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.num_ws, self.w_dim = int(net.num_ws), int(net.w_dim)
        # Noise inputs in layer order (module registration order: b4.conv1, b8.conv0, b8.conv1, ...).
        self._noise_layers = [
            name for name, m in net.named_modules()
            if getattr(m, "use_noise", False) and isinstance(getattr(m, "noise_const", None), torch.Tensor)
        ]

    @property
    def noise_shapes(self) -> list[tuple[int, int]]:
        return [tuple(int(s) for s in self.net.get_submodule(n).noise_const.shape[-2:]) for n in self._noise_layers]

    def _check_given(self, noise, n: int) -> None:
        shapes = self.noise_shapes
        if noise is None or len(noise) != len(shapes):
            got = None if noise is None else f"{len(noise)} tensors"
            raise ValueError(f"noise_mode='given' needs a list of {len(shapes)} tensors shaped [N, 1, h, w] for "
                             f"noise_shapes {shapes}, got {got}")
        for i, (t, (h, w)) in enumerate(zip(noise, shapes)):
            if t.ndim != 4 or tuple(t.shape[1:]) != (1, h, w) or t.shape[0] not in (1, n):
                raise ValueError(f"noise[{i}] must have shape [{n}, 1, {h}, {w}], got {list(t.shape)}")

    def forward(
        self,
        ws: torch.Tensor,  # [N, num_ws, w_dim]
        noise_mode: str = "random",  # "random" | "const" | "none" | "given"
        noise: list[torch.Tensor] | None = None,  # "given": [N or 1, 1, h, w] per noise input
        generator: torch.Generator | None = None,  # RNG for "random" (torch's default if None)
    ) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"synthesis network expects ws of shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {list(NOISE_MODES)}, got {noise_mode!r}")
        if noise_mode != "given" and noise is not None:
            raise ValueError(f"noise was passed with noise_mode={noise_mode!r}; use noise_mode='given'")
        n = ws.shape[0]
        if noise_mode == "random":  # drawn here so that `generator` decides it
            dev = generator.device if generator is not None else ws.device
            noise = [torch.randn(n, 1, h, w, generator=generator, device=dev).to(ws.device) for h, w in self.noise_shapes]
            noise_mode = "given"
        if noise_mode != "given":
            return self.net(ws, noise_mode=noise_mode)
        self._check_given(noise, n)
        if not self._noise_layers:
            return self.net(ws, noise_mode="none")
        # NVlabs layers add noise_const * strength in "const" mode; lend them the given maps for
        # this call (broadcast over channels like their random noise), then put the stored ones back.
        layers = [self.net.get_submodule(name) for name in self._noise_layers]
        stored = [layer.noise_const for layer in layers]
        try:
            for layer, t in zip(layers, noise):
                layer.noise_const = t.to(device=ws.device, dtype=torch.float32)
            return self.net(ws, noise_mode="const")
        finally:
            for layer, t in zip(layers, stored):
                layer.noise_const = t


class NVlabsGenerator(nn.Module):
    """An NVlabs StyleGAN2-ADA / StyleGAN3 generator behind this project's generator interface
    (stylegan_core.interface.GeneratorInterface). `class_idx` picks the label of a conditional
    model (c = one-hot); an unconditional model gets c = zeros [N, 0]."""

    def __init__(self, G: nn.Module, class_idx: int | None = None):
        super().__init__()
        self.c_dim = int(getattr(G, "c_dim", 0))
        if self.c_dim > 0 and class_idx is None:
            raise ConfigError(f"the generator is conditional ({self.c_dim} classes): pick one with --class 0..{self.c_dim - 1}")
        if class_idx is not None and (self.c_dim == 0 or not 0 <= class_idx < self.c_dim):
            what = "it is unconditional" if self.c_dim == 0 else f"it has classes 0..{self.c_dim - 1}"
            raise ConfigError(f"--class {class_idx} does not fit the generator: {what}")
        c = torch.zeros(1, self.c_dim)
        if class_idx is not None:
            c[0, class_idx] = 1
        self.class_idx = class_idx
        self.mapping = NVlabsMapping(G.mapping, c)
        self.synthesis = NVlabsSynthesis(G.synthesis)
        self.z_dim, self.w_dim, self.num_ws = int(G.z_dim), int(G.w_dim), int(G.num_ws)
        self.img_resolution, self.img_channels = int(G.img_resolution), int(G.img_channels)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping.w_avg

    def forward(self, z, truncation_psi=1.0, truncation_cutoff=None, noise_mode="random", noise=None, generator=None):
        ws = self.mapping(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, noise=noise, generator=generator)


def refusal(info: FileDescription) -> str:
    """The one line shown for an NVlabs pickle (as `describe` found it) when its code is not trusted."""
    gen, res = _generator(info.networks), info.facts.get("resolution")
    what = f"{gen.name}: {gen.kind} {res}x{res}, {gen.parameters:,} parameters" if gen else "no generator"
    return (f"{info.path} is a {_FORMAT_NAMES[info.format]} PyTorch network pickle ({what}); running it EXECUTES the "
            f"Python code stored in the file: if you trust it, put the {_repository(gen)} repository (dnnlib/, "
            "torch_utils/) on PYTHONPATH and add --trust-pickle-code (`stylegan-eval inspect` shows the file "
            "without running it)")


def load_nvlabs_generator(path: str | os.PathLike, trust_code: bool = False, class_idx: int | None = None,
                          device: str | torch.device = "cpu") -> NVlabsGenerator:
    """G_ema of an NVlabs pickle behind the project's interface, in eval mode on `device`.
    trust_code=True EXECUTES the source stored in the file (normal pickle; the NVlabs repository
    must be importable); False raises UntrustedPickleError with what the file is and how to run it."""
    from stylegan_core.interface import check_generator

    path = Path(path)
    if not trust_code:
        raise UntrustedPickleError(refusal(describe(path)))
    try:
        importlib.import_module(PERSISTENCE_MODULE)
    except ImportError:
        raise CheckpointError(f"{path}: running it needs the NVlabs stylegan2-ada-pytorch or stylegan3 repository "
                              "importable: add its folder (with dnnlib/ and torch_utils/) to PYTHONPATH") from None
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)  # noqa: S301 -- runs the file's code: the caller trusted it
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(f"{path}: loading it with its own code failed: {type(e).__name__}: {first}") from None
    G = data.get("G_ema") if isinstance(data, dict) else None
    if not isinstance(G, nn.Module):
        raise CheckpointError(f"{path}: no G_ema generator in the pickle")
    adapted = NVlabsGenerator(G, class_idx).to(device).eval().requires_grad_(False)
    check_generator(adapted, name=f"G_ema of {path}", probe=False)
    return adapted
