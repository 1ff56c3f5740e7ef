"""Writers of files in the official StyleGAN (v1) pickle structure, for tests: a Network stand-in
pickled under the class path dnnlib.tflib.network.Network with the same state dict (no foreign
source in it), built from this project's networks through the importer's own variable tables."""

import contextlib
import pickle
import sys
import types

import numpy as np
import torch

from stylegan_core.formats.official_tf_networks import (
    discriminator_variables,
    generator_variables,
    to_official_layout,
)


class Network:
    """Pickles exactly like the official Network: a dict of version, name, static_kwargs,
    components, build_module_src, build_func_name, variables."""

    def __init__(self, name, func, static_kwargs, variables, components=None, src="# no source\n"):
        self.name, self.func, self.static_kwargs = name, func, dict(static_kwargs)
        self.variables, self.components, self.src = list(variables), dict(components or {}), src

    def __getstate__(self):
        return dict(version=3, name=self.name, static_kwargs=self.static_kwargs, components=self.components,
                    build_module_src=self.src, build_func_name=self.func, variables=self.variables)


Network.__module__ = "dnnlib.tflib.network"


@contextlib.contextmanager
def _official_module_names():
    """Make `dnnlib.tflib.network.Network` importable while pickling (pickle checks the path)."""
    names = ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network")
    saved = {n: sys.modules.get(n) for n in names}
    mods = {n: types.ModuleType(n) for n in names}
    mods["dnnlib.tflib.network"].Network = Network
    sys.modules.update(mods)
    try:
        yield
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def dump(obj, path, protocol=4):
    with _official_module_names(), open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return path


def _vars(state: dict, table, prefix: str) -> list:
    return [(off[len(prefix):], to_official_layout(state[key], kind)) for off, key, kind in table if off.startswith(prefix)]


def generator_network(G, name="Gs", static_kwargs=None, src="# no source\n") -> Network:
    """A G_style Network (with G_mapping and G_synthesis components) holding G's weights."""
    cfg, state = G.config, G.state_dict()
    table = generator_variables(cfg)
    top = [(o, k, kind) for o, k, kind in table if not o.startswith(("G_mapping/", "G_synthesis/"))]
    kw = dict(static_kwargs if static_kwargs is not None else official_kwargs(G))
    mapping = Network("G_mapping", "G_mapping", {**kw, "dlatent_broadcast": G.num_ws},
                      _vars(state, [t for t in table if t[0].startswith("G_mapping/")], "G_mapping/"), src=src)
    syn_vars = _vars(state, [t for t in table if t[0].startswith("G_synthesis/")], "G_synthesis/")
    syn_vars.insert(0, ("lod", np.float32(0)))  # the synthesis network's own lod (overridden by G's)
    synthesis = Network("G_synthesis", "G_synthesis", kw, syn_vars, src=src)
    return Network(name, "G_style", kw, [(o, to_official_layout(state[k], kind)) for o, k, kind in top],
                   {"synthesis": synthesis, "mapping": mapping}, src=src)


def official_kwargs(G) -> dict:
    m, s = G.config.mapping, G.config.synthesis
    return dict(num_channels=s.img_channels, resolution=s.resolution, label_size=0, latent_size=m.z_dim,
                dlatent_size=m.w_dim, mapping_layers=m.num_layers, mapping_fmaps=m.hidden_dim,
                fmap_base=s.fmap_base, fmap_max=s.fmap_max)


def discriminator_network(D, name="D", static_kwargs=None, src="# no source\n") -> Network:
    c = D.config
    kw = static_kwargs if static_kwargs is not None else dict(
        num_channels=c.img_channels, resolution=c.resolution, label_size=0, fmap_base=c.fmap_base,
        fmap_max=c.fmap_max, mbstd_group_size=c.mbstd_group_size)
    state = D.state_dict()
    variables = [(o, to_official_layout(state[k], kind)) for o, k, kind in discriminator_variables(c)]
    return Network(name, "D_basic", kw, variables, src=src)


def randomize(module: torch.nn.Module, seed: int) -> None:
    """Give every parameter and buffer (but lod) non-trivial values, so no mapping hides behind
    zeros or ones."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if not name.endswith("lod"):
                t.copy_(torch.randn(t.shape, generator=gen) * (0.2 if "bias" in name or "noise." in name else 1.0))
