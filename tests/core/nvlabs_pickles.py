"""Builds NVlabs-style persistence pickles for the tests, from stand-ins written here (no NVlabs
code): a minimal `torch_utils.persistence` that pickles each network as
`_reconstruct_persistent_obj({type, version, module_src, class_name, state})` and runs
module_src on load, a `dnnlib.util.EasyDict`, and a tiny generator module with NVlabs' call
signatures (G(z, c, truncation_psi, truncation_cutoff, noise_mode), layers with a `noise_const`
buffer and a `noise_strength` parameter, numpy values in attributes).

The tiny module's top level appends a line to the file named by $NVLABS_TEST_MARKER when it runs,
so a test can tell whether the pickled source was executed.
"""

import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

MARKER_ENV = "NVLABS_TEST_MARKER"

PERSISTENCE_SRC = '''
"""Stand-in for torch_utils.persistence (test fixture)."""
import inspect
import sys
import types
import uuid

_module_src = {}  # module -> its source
_src_module = {}  # source -> module made from it


def persistent_class(cls):
    module = sys.modules[cls.__module__]
    src = _module_src.get(module) or inspect.getsource(module)

    class Persistent(cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._init_args, self._init_kwargs = args, kwargs

        def __reduce__(self):
            meta = dict(type="class", version=6, module_src=src, class_name=cls.__name__, state=dict(self.__dict__))
            return (_reconstruct_persistent_obj, (meta,))

    Persistent.__name__ = cls.__name__
    return Persistent


def _reconstruct_persistent_obj(meta):
    src = meta["module_src"]
    module = _src_module.get(src)
    if module is None:
        module = types.ModuleType("_imported_module_" + uuid.uuid4().hex)
        sys.modules[module.__name__] = module
        _module_src[module], _src_module[src] = src, module
        exec(src, module.__dict__)
    cls = module.__dict__[meta["class_name"]]
    obj = cls.__new__(cls)
    obj.__setstate__(dict(meta["state"]))
    return obj
'''

DNNLIB_UTIL_SRC = '''
class EasyDict(dict):
    def __getattr__(self, name):
        return self[name]
'''

TINY_NET_SRC = '''
"""Tiny generator with NVlabs call signatures (test fixture). Recognised as: {marker}"""
import os

import numpy as np
import torch
import torch.nn.functional as F

from torch_utils import persistence

if os.environ.get("{env}"):  # planted side effect: shows whether this source was executed
    with open(os.environ["{env}"], "a") as _f:
        _f.write("ran\\n")


@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, num_ws):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.weight = torch.nn.Parameter(torch.randn(w_dim, z_dim + c_dim))
        self.weight_gain = np.float64(1 / np.sqrt(z_dim + c_dim))
        self.register_buffer("w_avg", torch.randn(w_dim))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, skip_w_avg_update=False):
        x = torch.cat([z, c * 3], dim=1) if self.c_dim else z
        x = F.leaky_relu(x @ (self.weight * float(self.weight_gain)).t(), 0.2)
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x[:, :cut] = self.w_avg.lerp(x[:, :cut], truncation_psi)
        return x


@persistence.persistent_class
class SynthesisLayer(torch.nn.Module):
    def __init__(self, channels, w_dim, resolution, use_noise):
        super().__init__()
        self.resolution, self.use_noise = resolution, use_noise
        self.size = np.broadcast_to(np.asarray(resolution), [2])
        self.affine = torch.nn.Parameter(torch.randn(channels, w_dim) * 0.3)
        self.weight = torch.nn.Parameter(torch.randn(channels, channels) / channels ** 0.5)
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.full([], 0.7))

    def forward(self, x, w, noise_mode="random"):
        assert noise_mode in ["random", "const", "none"]
        s = w @ self.affine.t() + 1
        x = torch.einsum("oc,nchw->nohw", self.weight, x * s[:, :, None, None])
        if self.use_noise and noise_mode == "random":
            x = x + torch.randn([x.shape[0], 1, self.resolution, self.resolution]) * self.noise_strength
        if self.use_noise and noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        return F.leaky_relu(x, 0.2)


@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    def __init__(self, w_dim, img_resolution, img_channels, channels=4, use_noise=True):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.resolutions = [4] + [r for r in (8, 16, 32, 64) if r <= img_resolution for _ in (0, 1)]
        self.num_ws = len(self.resolutions) + 1
        self.const = torch.nn.Parameter(torch.randn(channels, 4, 4))
        for i, res in enumerate(self.resolutions):
            setattr(self, f"L{{i}}", SynthesisLayer(channels, w_dim, res, use_noise))
        self.torgb = torch.nn.Parameter(torch.randn(img_channels, channels, w_dim) * 0.2)

    def forward(self, ws, noise_mode="random", force_fp32=False):
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        for i, res in enumerate(self.resolutions):
            if res > x.shape[-1]:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = getattr(self, f"L{{i}}")(x, ws[:, i], noise_mode=noise_mode)
        rgb = torch.einsum("kcw,nw->nkc", self.torgb, ws[:, -1])
        return torch.tanh(torch.einsum("nkc,nchw->nkhw", rgb, x))


@persistence.persistent_class
class Generator(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={{}}, synthesis_kwargs={{}}):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **mapping_kwargs)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)


@persistence.persistent_class
class Discriminator(torch.nn.Module):
    def __init__(self, c_dim, img_resolution, img_channels):
        super().__init__()
        self.fc = torch.nn.Linear(img_channels * img_resolution ** 2 + c_dim, 1)  # a torch.nn layer inside


@persistence.persistent_class
class AugmentPipe(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("p", torch.tensor(0.25))
'''

STYLEGAN2_MARKER = "class SynthesisBlock and modulated_conv2d of networks.py"
STYLEGAN3_MARKER = "class SynthesisInput and filtered_lrelu of networks_stylegan3.py"


@dataclass(frozen=True)
class Built:
    path: Path  # the .pkl
    root: Path  # folder to put on sys.path to run it (torch_utils/, dnnlib/, tinynet*.py)
    G: torch.nn.Module  # the generator as pickled (G_ema)
    module: str  # name of the tiny module that defined it


def write_sources(root: Path, module: str, marker: str) -> None:
    (root / "torch_utils").mkdir(exist_ok=True)
    (root / "torch_utils" / "__init__.py").write_text("")
    (root / "torch_utils" / "persistence.py").write_text(PERSISTENCE_SRC)
    (root / "dnnlib").mkdir(exist_ok=True)
    (root / "dnnlib" / "__init__.py").write_text("from .util import EasyDict\n")
    (root / "dnnlib" / "util.py").write_text(DNNLIB_UTIL_SRC)
    (root / f"{module}.py").write_text(TINY_NET_SRC.format(marker=marker, env=MARKER_ENV))


def build_pickle(root: Path, name: str = "network-snapshot.pkl", stylegan3: bool = False, c_dim: int = 0,
                 resolution: int = 16, protocol: int = pickle.DEFAULT_PROTOCOL, seed: int = 0,
                 plant: dict | None = None) -> Built:
    """Write the stand-in sources into `root`, import them (root goes on sys.path; the caller
    removes the modules again, see `forget_modules`) and pickle a snapshot dict like NVlabs'
    training loop: training_set_kwargs, G, D, G_ema, augment_pipe. `plant`: extra attributes
    set on G_ema before pickling (e.g. a payload object hidden in a network's state)."""
    import importlib

    module = "tinynet3" if stylegan3 else "tinynet2"
    write_sources(root, module, STYLEGAN3_MARKER if stylegan3 else STYLEGAN2_MARKER)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    net = importlib.import_module(module)
    dnnlib = importlib.import_module("dnnlib")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        kwargs = dict(z_dim=8, c_dim=c_dim, w_dim=6, img_resolution=resolution, img_channels=3,
                      synthesis_kwargs=dnnlib.EasyDict(channels=4, use_noise=not stylegan3))
        G_ema = net.Generator(**kwargs).eval()
        for key, value in (plant or {}).items():
            setattr(G_ema, key, value)
        snapshot = dict(
            training_set_kwargs=dict(path="datasets/tiny.zip", use_labels=c_dim > 0, xflip=False),
            G=net.Generator(**kwargs),
            D=net.Discriminator(c_dim, resolution, 3),
            G_ema=G_ema,
            augment_pipe=net.AugmentPipe(),
        )
    path = root / name
    with open(path, "wb") as f:
        pickle.dump(snapshot, f, protocol=protocol)
    return Built(path, root, G_ema, module)


def forget_modules() -> None:
    """Drop the stand-in modules (and the ones made from pickled source) from sys.modules."""
    for name in list(sys.modules):
        if name.split(".")[0] in ("torch_utils", "dnnlib", "tinynet2", "tinynet3") or name.startswith("_imported_module_"):
            del sys.modules[name]
