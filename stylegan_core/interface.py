"""The generator interface every sampler and metric in this project uses.

It follows the PyTorch conventions of the StyleGAN family (NVlabs stylegan2-ada-pytorch
`training/networks.py`: `G.mapping`, `G.synthesis`, `w_avg`, `num_ws`, `noise_mode`), so the
project's own `Generator`, the adapters in `stylegan_core.formats` and a user's own network
(`stylegan-eval ... --generator module:callable`) are measured by the same code.

Contract (`GeneratorInterface`):

    G.z_dim, G.w_dim, G.num_ws, G.img_resolution, G.img_channels   ints >= 1
    G.w_avg                      tensor [w_dim]: the average w (the truncation centre)
    G.mapping(z, truncation_psi=1.0, truncation_cutoff=None)
        z [N, z_dim] -> ws [N, num_ws, w_dim]; truncation w' = w_avg + psi * (w - w_avg) on the
        style inputs [0, cutoff) (None = all of them); psi = 1 leaves ws unchanged.
    G.synthesis(ws, noise_mode="random", noise=None)
        ws [N, num_ws, w_dim] -> images [N, img_channels, img_resolution, img_resolution], float,
        nominally in [-1, 1] (not clamped: -1 = black, 1 = white; metrics quantise as
        x * 127.5 + 128, clamped to 0..255).
    G.synthesis.noise_shapes     list of (h, w), one per noise input in layer order; [] when the
        generator has no noise inputs (a traditional generator, StyleGAN3).
    G(z, truncation_psi=1.0, truncation_cutoff=None, noise_mode="random", noise=None)
        = G.synthesis(G.mapping(z, truncation_psi, truncation_cutoff), noise_mode, noise)

noise_mode vocabulary (the per-pixel noise inputs of StyleGAN, paper section 3.2):
    "random"  fresh N(0, 1) noise maps on every call (the official randomize_noise=True);
    "const"   the generator's stored noise maps, so two calls with the same ws give the same
              image (used for figures);
    "none"    no noise at all (the maps are zero);
    "given"   `noise` is a list with one tensor [N or 1, 1, h, w] per entry of
              `G.synthesis.noise_shapes`, scaled by the learned per-layer strength like random
              noise. The metrics use it: sample i draws its own noise from (seed, i), so a value
              never depends on the batch size or the number of processes. A generator without
              noise inputs takes an empty list.

A traditional (non-style) generator honours the same interface: its mapping may have no layers
(w is then the normalised z, repeated num_ws times) and its synthesis reads ws[:, 0] only.

`check_generator(G)` checks an object against this contract and explains the first mismatch in
one line; `generator_from_callable("pkg.mod:make")` imports a user's factory and checks what it
returns.
"""

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import torch

from stylegan_core.errors import UserError

INT_ATTRIBUTES = ("z_dim", "w_dim", "num_ws", "img_resolution", "img_channels")


class GeneratorInterfaceError(UserError):
    """An object that does not honour the generator interface, or a --generator that cannot be loaded."""


@runtime_checkable
class MappingInterface(Protocol):
    def __call__(
        self,
        z: torch.Tensor,  # [N, z_dim]
        truncation_psi: float = 1.0,  # 1 = no truncation
        truncation_cutoff: int | None = None,  # truncate style inputs [0, cutoff); None = all
    ) -> torch.Tensor:  # ws [N, num_ws, w_dim]
        ...


@runtime_checkable
class SynthesisInterface(Protocol):
    noise_shapes: Sequence[tuple[int, int]]  # (h, w) per noise input, layer order; [] = none

    def __call__(
        self,
        ws: torch.Tensor,  # [N, num_ws, w_dim]
        noise_mode: str = "random",  # "random" | "const" | "none" | "given"
        noise: list[torch.Tensor] | None = None,  # "given": [N or 1, 1, h, w] per noise input
    ) -> torch.Tensor:  # [N, img_channels, img_resolution, img_resolution], float, ~[-1, 1]
        ...


@runtime_checkable
class GeneratorInterface(Protocol):
    """What the samplers and metrics need from a generator; see the module docstring."""

    z_dim: int
    w_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int
    w_avg: torch.Tensor  # [w_dim]
    mapping: MappingInterface
    synthesis: SynthesisInterface

    def __call__(
        self,
        z: torch.Tensor,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        noise: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        ...


def _fail(name: str, problem: str) -> GeneratorInterfaceError:
    return GeneratorInterfaceError(
        f"{name} does not honour the generator interface: {problem} (see stylegan_core.GeneratorInterface)"
    )


def _check_structure(G, name: str) -> None:
    for attr in INT_ATTRIBUTES:
        if not hasattr(G, attr):
            raise _fail(name, f"it has no attribute {attr}")
        value = getattr(G, attr)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(name, f"{attr} must be an int >= 1, got {value!r}")
    res = G.img_resolution
    if res & (res - 1):
        raise _fail(name, f"img_resolution must be a power of two, got {res}")
    w_avg = getattr(G, "w_avg", None)
    if not isinstance(w_avg, torch.Tensor) or tuple(w_avg.shape) != (G.w_dim,):
        got = list(w_avg.shape) if isinstance(w_avg, torch.Tensor) else type(w_avg).__name__
        raise _fail(name, f"w_avg must be a tensor of shape [{G.w_dim}] (w_dim), got {got}")
    for part in ("mapping", "synthesis"):
        if not callable(getattr(G, part, None)):
            raise _fail(name, f"G.{part} must be callable")
    if not callable(G):
        raise _fail(name, "G itself must be callable as G(z, truncation_psi, truncation_cutoff, noise_mode)")
    shapes = getattr(G.synthesis, "noise_shapes", None)
    if shapes is None:
        raise _fail(name, "G.synthesis has no noise_shapes (a list of (h, w) per noise input; [] if none)")
    for s in shapes:
        if len(tuple(s)) != 2 or not all(isinstance(v, int) and v >= 1 for v in tuple(s)):
            raise _fail(name, f"G.synthesis.noise_shapes must hold (h, w) pairs of ints, got {list(shapes)!r}")


@torch.no_grad()
def _probe(G, name: str) -> None:
    """One latent through mapping and synthesis, on the device of w_avg: shapes and dtype."""
    device = G.w_avg.device
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0)).to(device)
    ws = G.mapping(z, truncation_psi=1.0, truncation_cutoff=None)
    want = (2, G.num_ws, G.w_dim)
    if not isinstance(ws, torch.Tensor) or tuple(ws.shape) != want:
        got = list(ws.shape) if isinstance(ws, torch.Tensor) else type(ws).__name__
        raise _fail(name, f"G.mapping(z [2, {G.z_dim}]) must return ws of shape {list(want)}, got {got}")
    noise = [torch.zeros(2, 1, h, w, device=device) for h, w in G.synthesis.noise_shapes]
    for mode, extra in (("const", None), ("given", noise)):
        img = G.synthesis(ws, noise_mode=mode, noise=extra)
        want = (2, G.img_channels, G.img_resolution, G.img_resolution)
        if not isinstance(img, torch.Tensor) or tuple(img.shape) != want:
            got = list(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
            raise _fail(name, f"G.synthesis(ws, noise_mode={mode!r}) must return images of shape {list(want)}, got {got}")
        if not img.dtype.is_floating_point:
            raise _fail(name, f"G.synthesis must return float images in [-1, 1], got dtype {img.dtype}")


def check_generator(G, name: str = "the generator", probe: bool = True) -> None:
    """Raise GeneratorInterfaceError (one line naming the first mismatch) unless G honours the
    interface. probe=True also runs two latents through G.mapping and G.synthesis (modes
    "const" and "given") on the device of G.w_avg and checks the shapes they return."""
    _check_structure(G, name)
    if probe:
        try:
            _probe(G, name)
        except GeneratorInterfaceError:
            raise
        except Exception as e:  # the user's network failing on a valid call: say where, in one line
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise _fail(name, f"a test call raised {type(e).__name__}: {first}") from None


def _import_module(module: str, spec: str):
    if module.endswith(".py"):
        path = Path(module)
        if not path.is_file():
            raise GeneratorInterfaceError(f"--generator {spec}: no such file {path}")
        mod_name = f"user_generator_{path.stem}"
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        mod = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = mod  # dataclasses and pickling look their module up here
        try:
            loader_spec.loader.exec_module(mod)
        except BaseException:
            del sys.modules[mod_name]
            raise
        return mod
    return importlib.import_module(module)


def generator_from_callable(spec: str, device: str | torch.device = "cpu", probe: bool = True):
    """IMPORTS AND RUNS user code: `spec` is "package.module:callable" (or "path/to/file.py:callable");
    the callable is called without arguments and must return a generator honouring the
    interface. An nn.Module is moved to `device` and put in eval mode with gradients off.
    Errors (bad spec, import failure, a mismatch with the interface) raise one line."""
    module, sep, attr = spec.rpartition(":")
    if not sep or not module or not attr or not attr.isidentifier():
        raise GeneratorInterfaceError(
            f"--generator must be MODULE:CALLABLE (e.g. mypkg.models:make_generator), got {spec!r}"
        )
    try:
        mod = _import_module(module, spec)
    except GeneratorInterfaceError:
        raise
    except ImportError as e:
        raise GeneratorInterfaceError(
            f"--generator {spec}: cannot import {module} ({type(e).__name__}: {e}); put its folder on PYTHONPATH"
        ) from None
    except Exception as e:  # the module's own code failed while importing
        raise GeneratorInterfaceError(f"--generator {spec}: importing {module} raised {type(e).__name__}: {e}") from None
    factory = getattr(mod, attr, None)
    if not callable(factory):
        raise GeneratorInterfaceError(f"--generator {spec}: {module} has no callable named {attr}")
    try:
        G = factory()
    except Exception as e:
        raise GeneratorInterfaceError(f"--generator {spec}: calling {attr}() raised {type(e).__name__}: {e}") from None
    if isinstance(G, torch.nn.Module):
        G = G.to(device).eval().requires_grad_(False)
    check_generator(G, name=f"the generator from {spec}", probe=probe)
    return G
