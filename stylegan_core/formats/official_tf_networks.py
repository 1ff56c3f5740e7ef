"""Official StyleGAN (v1) TF networks onto this project's own network code.

Reads a `TFNetwork` (see `official_tf`) of NVlabs/stylegan training/networks_stylegan.py and
builds the matching `Generator` (from G_style with its G_mapping and G_synthesis components) or
`Discriminator` (D_basic, also the CelebA-HQ attribute classifiers), then copies the weights:

- configuration from static_kwargs on top of the build functions' documented defaults; options
  this project's networks do not implement (labels, relu, fmap_decay != 1, use_wscale=False,
  another blur filter, non-float32) are refused with one line naming the option;
- dense weights [in, out] -> [out, in]; conv weights [k, k, in, out] -> [out, in, k, k]; both
  stored unscaled in both codebases (runtime He scale gain/sqrt(fan_in) times lrmul, the same
  fan-in), so values copy as they are, biases too (the mapping's bias lrmul matches);
- StyleMod: a dense layer with 2C outputs, scale first then bias; the official layer computes
  x * (scale + 1) + bias while ours has the +1 in its bias (init 1), so 1 is added to the first
  C biases;
- noise maps `noise{i}` [1, 1, r, r] become the buffers used by noise_mode="const";
  `dlatent_avg` becomes w_avg; `lod` the level-of-detail buffer (G's lod drives its synthesis);
- fused Conv0_up (transposed conv) and Conv1_down (strided conv) at >= 128 px under
  fused_scale 'auto' are the project's fused layers with the same [k, k, in, out] weight.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stylegan_core.discriminator import Discriminator, DiscriminatorConfig
from stylegan_core.errors import CheckpointError
from stylegan_core.formats.description import FileDescription, NetworkDescription
from stylegan_core.formats.official_tf import FORMAT, TFNetwork, file_sha256, read_official_pickle
from stylegan_core.generator import Generator, GeneratorConfig
from stylegan_core.mapping import MappingConfig
from stylegan_core.synthesis import SynthesisConfig

# Defaults of the official build functions' keyword arguments (only non-defaults are pickled).
G_STYLE_DEFAULTS = dict(truncation_psi=0.7, truncation_cutoff=8, truncation_psi_val=None,
                        truncation_cutoff_val=None, dlatent_avg_beta=0.995, style_mixing_prob=0.9)
MAPPING_DEFAULTS = dict(latent_size=512, label_size=0, dlatent_size=512, dlatent_broadcast=None,
                        mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01,
                        mapping_nonlinearity="lrelu", use_wscale=True, normalize_latents=True,
                        dtype="float32")
SYNTHESIS_DEFAULTS = dict(dlatent_size=512, num_channels=3, resolution=1024, fmap_base=8192,
                          fmap_decay=1.0, fmap_max=512, use_styles=True, const_input_layer=True,
                          use_noise=True, randomize_noise=True, nonlinearity="lrelu", use_wscale=True,
                          use_pixel_norm=False, use_instance_norm=True, dtype="float32",
                          fused_scale="auto", blur_filter=[1, 2, 1], structure="auto",
                          is_template_graph=False, force_clean_graph=False)
D_BASIC_DEFAULTS = dict(num_channels=1, resolution=32, label_size=0, fmap_base=8192, fmap_decay=1.0,
                        fmap_max=512, nonlinearity="lrelu", use_wscale=True, mbstd_group_size=4,
                        mbstd_num_features=1, dtype="float32", fused_scale="auto",
                        blur_filter=[1, 2, 1], structure="auto", is_template_graph=False)
# G_style hands its keyword arguments to both components, so each holds the union.
_G_KEYS = set(G_STYLE_DEFAULTS) | set(MAPPING_DEFAULTS) | set(SYNTHESIS_DEFAULTS)
# Values our networks must have to compute what the official ones compute.
_REQUIRED = {"label_size": 0, "mapping_nonlinearity": "lrelu", "nonlinearity": "lrelu",
             "use_wscale": True, "dtype": "float32", "fmap_decay": 1.0}
_FUSED = {True: "always", False: "never", "auto": "auto"}


@dataclass(frozen=True)
class TruncationDefaults:
    """What `Gs.run(z, None)` would apply by default (G_style's truncation_psi / cutoff); this
    project's metrics run without truncation, as the official metrics do (is_validation)."""

    psi: float | None  # None = disabled
    cutoff: int | None


def _options(net: TFNetwork, defaults: dict, allowed: set, what: str) -> dict:
    unknown = sorted(set(net.static_kwargs) - allowed)
    if unknown:
        raise CheckpointError(f"official {what} network {net.name!r}: unknown option(s) {unknown}; not supported")
    opts = {k: v for k, v in {**defaults, **net.static_kwargs}.items() if k in defaults}
    for key, need in _REQUIRED.items():
        if key in opts and opts[key] != need:
            raise CheckpointError(
                f"official {what} network {net.name!r}: {key}={opts[key]!r} is not supported (only {need!r})"
            )
    if "blur_filter" in opts and opts["blur_filter"] not in (None, [], [1, 2, 1], (1, 2, 1)):
        raise CheckpointError(f"official {what} network {net.name!r}: blur_filter={opts['blur_filter']!r} "
                              "is not supported (only [1, 2, 1] or None)")
    if "fused_scale" in opts and opts["fused_scale"] not in _FUSED:
        raise CheckpointError(f"official {what} network {net.name!r}: fused_scale={opts['fused_scale']!r} not supported")
    return opts


def _expect(net: TFNetwork, func: str, what: str) -> None:
    if net.build_func_name != func:
        raise CheckpointError(f"official {what} network {net.name!r} is built by {net.build_func_name}, "
                              f"this reader maps {func}")


def generator_config(gs: TFNetwork) -> tuple[GeneratorConfig, TruncationDefaults]:
    """GeneratorConfig of a G_style Network (Gs), and its truncation defaults."""
    _expect(gs, "G_style", "generator")
    for comp in ("mapping", "synthesis"):
        if comp not in gs.components:
            raise CheckpointError(f"official generator network {gs.name!r} has no {comp} component")
    top = _options(gs, G_STYLE_DEFAULTS, _G_KEYS, "generator")
    m = _options(gs.components["mapping"], MAPPING_DEFAULTS, _G_KEYS, "mapping")
    s = _options(gs.components["synthesis"], SYNTHESIS_DEFAULTS, _G_KEYS, "synthesis")
    _expect(gs.components["mapping"], "G_mapping", "mapping")
    _expect(gs.components["synthesis"], "G_synthesis", "synthesis")
    try:
        synthesis = SynthesisConfig(
            resolution=int(s["resolution"]), img_channels=int(s["num_channels"]), w_dim=int(s["dlatent_size"]),
            fmap_base=int(s["fmap_base"]), fmap_max=int(s["fmap_max"]), const_input=bool(s["const_input_layer"]),
            use_styles=bool(s["use_styles"]), use_noise=bool(s["use_noise"]), use_pixel_norm=bool(s["use_pixel_norm"]),
            use_instance_norm=bool(s["use_instance_norm"]), blur=bool(s["blur_filter"]),
            fused_scale=_FUSED[s["fused_scale"]],
        )
        mapping = MappingConfig(
            z_dim=int(m["latent_size"]), w_dim=int(m["dlatent_size"]), num_layers=int(m["mapping_layers"]),
            hidden_dim=int(m["mapping_fmaps"]), lr_multiplier=float(m["mapping_lrmul"]),
            normalize_z=bool(m["normalize_latents"]),
            w_avg_beta=float(top["dlatent_avg_beta"]) if top["dlatent_avg_beta"] is not None else 0.0,
        )
        mix = top["style_mixing_prob"]
        config = GeneratorConfig(mapping=mapping, synthesis=synthesis,
                                 style_mixing_prob=float(mix) if mix is not None and synthesis.use_styles else 0.0)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"official generator network {gs.name!r}: unsupported configuration ({e})") from None
    if m["dlatent_broadcast"] not in (None, synthesis.num_ws):
        raise CheckpointError(f"official mapping network: dlatent_broadcast={m['dlatent_broadcast']} but the "
                              f"synthesis network takes {synthesis.num_ws} styles")
    psi, cutoff = top["truncation_psi"], top["truncation_cutoff"]
    trunc = TruncationDefaults(None if psi is None else float(psi), None if cutoff is None else int(cutoff))
    return config, trunc


def discriminator_config(d: TFNetwork) -> DiscriminatorConfig:
    """DiscriminatorConfig of a D_basic Network (the GAN's D or an attribute classifier)."""
    _expect(d, "D_basic", "discriminator")
    o = _options(d, D_BASIC_DEFAULTS, set(D_BASIC_DEFAULTS), "discriminator")
    try:
        return DiscriminatorConfig(
            resolution=int(o["resolution"]), img_channels=int(o["num_channels"]), fmap_base=int(o["fmap_base"]),
            fmap_max=int(o["fmap_max"]), mbstd_group_size=int(o["mbstd_group_size"]),
            mbstd_num_features=int(o["mbstd_num_features"]), blur=bool(o["blur_filter"]),
            fused_scale=_FUSED[o["fused_scale"]], out_features=1,
        )
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"official discriminator network {d.name!r}: unsupported configuration ({e})") from None


# ---------------------------------------------------------------------------------------------
# Variable tables: (official name incl. component prefix, project state-dict key, layout kind).
# Kinds: "dense" [in, out] <-> [out, in]; "conv" [k, k, in, out] <-> [out, in, k, k];
# "stylemod_bias" official bias, +1 on the scale half; "same" copied as is.


def _epilogue(cfg: SynthesisConfig, scope: str, key: str) -> list[tuple[str, str, str]]:
    rows = []
    if cfg.use_noise:
        rows.append((f"{scope}/Noise/weight", f"{key}.noise.weight", "same"))
    rows.append((f"{scope}/bias", f"{key}.bias.bias", "same"))
    if cfg.use_styles:
        rows += [(f"{scope}/StyleMod/weight", f"{key}.style.affine.weight", "dense"),
                 (f"{scope}/StyleMod/bias", f"{key}.style.affine.bias", "stylemod_bias")]
    return rows


def generator_variables(config: GeneratorConfig) -> list[tuple[str, str, str]]:
    """Every variable of an official G_style (names as 'G_mapping/...', 'G_synthesis/...', or
    top-level) with the project Generator state-dict key it maps to."""
    s, rl2 = config.synthesis, config.synthesis.resolution_log2
    rows = [("lod", "synthesis.lod", "same"), ("dlatent_avg", "mapping.w_avg", "same")]
    rows += [(f"G_mapping/Dense{i}/{p}", f"mapping.layers.{i}.{p}", "dense" if p == "weight" else "same")
             for i in range(config.mapping.num_layers) for p in ("weight", "bias")]
    syn = [(f"noise{i}", f"noise_{i}", "same") for i in range(s.num_layers if s.use_noise else 0)]
    if s.const_input:
        syn.append(("4x4/Const/const", "const", "same"))
        syn += _epilogue(s, "4x4/Const", "input_epi")
    else:
        syn.append(("4x4/Dense/weight", "input_dense.weight", "dense"))
        syn += _epilogue(s, "4x4/Dense", "input_epi")
    syn.append(("4x4/Conv/weight", "conv4.weight", "conv"))
    syn += _epilogue(s, "4x4/Conv", "conv4_epi")
    for res in range(3, rl2 + 1):
        scope, key = f"{2**res}x{2**res}", f"blocks.{res - 3}"
        syn.append((f"{scope}/Conv0_up/weight", f"{key}.conv0.weight", "conv"))
        syn += _epilogue(s, f"{scope}/Conv0_up", f"{key}.epi0")
        syn.append((f"{scope}/Conv1/weight", f"{key}.conv1.weight", "conv"))
        syn += _epilogue(s, f"{scope}/Conv1", f"{key}.epi1")
    for res in range(2, rl2 + 1):
        syn += [(f"ToRGB_lod{rl2 - res}/weight", f"torgb.{res - 2}.weight", "conv"),
                (f"ToRGB_lod{rl2 - res}/bias", f"torgb.{res - 2}.bias", "same")]
    return rows + [(f"G_synthesis/{o}", f"synthesis.{k}", kind) for o, k, kind in syn]


def discriminator_variables(config: DiscriminatorConfig) -> list[tuple[str, str, str]]:
    """Every variable of an official D_basic with the project Discriminator state-dict key."""
    rl2 = config.resolution_log2
    rows = [("lod", "lod", "same")]
    for res in range(rl2, 1, -1):
        rows += [(f"FromRGB_lod{rl2 - res}/{p}", f"fromrgb.{res - 2}.{p}", "conv" if p == "weight" else "same")
                 for p in ("weight", "bias")]
    for res in range(rl2, 2, -1):
        scope, key = f"{2**res}x{2**res}", f"blocks.{res - 3}"
        for off, ours in (("Conv0", "conv0"), ("Conv1_down", "conv1")):
            rows += [(f"{scope}/{off}/weight", f"{key}.{ours}.weight", "conv"), (f"{scope}/{off}/bias", f"{key}.{ours}.bias", "same")]
    for off, ours, kind in (("Conv", "conv4", "conv"), ("Dense0", "dense0", "dense"), ("Dense1", "dense1", "dense")):
        rows += [(f"4x4/{off}/weight", f"{ours}.weight", kind), (f"4x4/{off}/bias", f"{ours}.bias", "same")]
    return rows


def to_project_layout(value: np.ndarray, kind: str) -> torch.Tensor:
    t = torch.from_numpy(np.array(value, dtype=np.float32))
    if kind == "dense":
        return t.t().contiguous()
    if kind == "conv":
        return t.permute(3, 2, 0, 1).contiguous()
    if kind == "stylemod_bias":
        c = t.shape[0] // 2
        return torch.cat([t[:c] + 1.0, t[c:]])
    return t


def to_official_layout(value: torch.Tensor, kind: str) -> np.ndarray:
    """Inverse of `to_project_layout` (writes official-format test files)."""
    t = value.detach().cpu().float()
    if kind == "dense":
        t = t.t()
    elif kind == "conv":
        t = t.permute(2, 3, 1, 0)
    elif kind == "stylemod_bias":
        c = t.shape[0] // 2
        t = torch.cat([t[:c] - 1.0, t[c:]])
    return np.array(t.numpy(), dtype=np.float32, order="C")  # keeps 0-d arrays 0-d


def flat_variables(net: TFNetwork) -> dict[str, np.ndarray]:
    """A Network's variables with components prefixed by their network name ('G_synthesis/...')."""
    out = dict(net.variables)
    for comp in net.components.values():
        out.update({f"{comp.name}/{k}": v for k, v in flat_variables(comp).items()})
    return out


# G_style overwrites its synthesis network's lod with its own before every run.
_OVERRIDDEN = {"G_synthesis/lod"}


def _state_dict(net: TFNetwork, table, module: torch.nn.Module, what: str) -> dict[str, torch.Tensor]:
    flat = flat_variables(net)
    expected = module.state_dict()
    state, used = {}, set()
    for off, key, kind in table:
        if off not in flat:
            raise CheckpointError(f"official {what} network {net.name!r}: variable {off} missing")
        t = to_project_layout(flat[off], kind)
        if t.shape != expected[key].shape:
            raise CheckpointError(f"official {what} network {net.name!r}: {off} has shape {list(flat[off].shape)}, "
                                  f"expected one giving {list(expected[key].shape)}")
        state[key] = t
        used.add(off)
    extra = sorted(set(flat) - used - _OVERRIDDEN)
    if extra:
        raise CheckpointError(f"official {what} network {net.name!r}: unexpected variable(s) {extra[:4]}; not supported")
    return state


def official_generator(gs: TFNetwork) -> Generator:
    """The project Generator computing what the official Gs computes (eval mode, CPU)."""
    config, trunc = generator_config(gs)
    G = Generator(config)
    state = _state_dict(gs, generator_variables(config), G, "generator")
    lod = float(state["synthesis.lod"])  # G_style assigns its own lod to the synthesis network
    if not 0 <= lod <= G.synthesis.max_lod:
        raise CheckpointError(f"official generator network {gs.name!r}: lod {lod} out of range")
    G.load_state_dict(state, strict=True)
    G.truncation_defaults = trunc
    return G.eval().requires_grad_(False)


def official_discriminator(d: TFNetwork) -> Discriminator:
    """The project Discriminator computing what the official D_basic computes (eval mode, CPU)."""
    config = discriminator_config(d)
    D = Discriminator(config)
    state = _state_dict(d, discriminator_variables(config), D, "discriminator")
    if not 0 <= float(state["lod"]) <= D.max_lod:
        raise CheckpointError(f"official discriminator network {d.name!r}: lod out of range")
    D.load_state_dict(state, strict=True)
    return D.eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------
# Files: what load_generator, load_discriminator, checkpoint_info and inspect need.


def _pick(path, kind: str) -> TFNetwork:
    """Gs (never the training copy G) or D of a (G, D, Gs) file; a single Network of that kind."""
    nets = read_official_pickle(path)
    if len(nets) == 3:
        return nets[2] if kind == "G_style" else nets[1]
    (net,) = nets
    if net.build_func_name != kind:
        what = "generator" if kind == "G_style" else "discriminator"
        raise CheckpointError(f"official pickle {path}: holds one {net.build_func_name} network "
                              f"({net.name!r}), not a {what}")
    return net


def load_official_generator(path) -> Generator:
    """Gs of an official pickle as a project Generator (eval mode, CPU, no gradients)."""
    return official_generator(_pick(path, "G_style"))


def load_official_discriminator(path) -> Discriminator:
    """D of an official pickle (or a single D_basic file) as a project Discriminator."""
    return official_discriminator(_pick(path, "D_basic"))


def official_checkpoint_info(path) -> dict:
    """`checkpoint_info` of an official pickle: the configs it maps to and where it came from."""
    nets = read_official_pickle(path)
    names = [n.name for n in nets]
    config: dict = {"preset": None}
    gs = nets[2] if len(nets) == 3 else (nets[0] if nets[0].build_func_name == "G_style" else None)
    if gs is not None:
        gen, trunc = generator_config(gs)
        config["generator"] = gen.to_dict()
        config["truncation_defaults"] = {"psi": trunc.psi, "cutoff": trunc.cutoff}
    d = nets[1] if len(nets) == 3 else (nets[0] if nets[0].build_func_name == "D_basic" else None)
    if d is not None:
        config["discriminator"] = discriminator_config(d).to_dict()
    config["source"] = {"format": FORMAT, "networks": names}
    return {"path": str(path), "preset": None, "config": config, "progress": {}, "format": FORMAT,
            "format_version": None, "contents": sorted(names)}


def describe_official(path) -> FileDescription:
    """Networks, sizes and truncation defaults of an official pickle, read as data only."""
    nets = read_official_pickle(path)
    described, facts = [], {}
    for net in nets:
        kw = net.static_kwargs
        details = {"resolution": kw.get("resolution"), "components": sorted(net.components)}
        if net.build_func_name == "G_style":
            try:
                cfg, trunc = generator_config(net)
            except CheckpointError as e:
                details["unsupported"] = str(e)
            else:
                details |= {"z_dim": cfg.mapping.z_dim, "w_dim": cfg.mapping.w_dim, "num_ws": cfg.synthesis.num_ws,
                            "mapping_layers": cfg.mapping.num_layers}
                facts |= {"resolution": cfg.synthesis.resolution, "truncation_psi": trunc.psi,
                          "truncation_cutoff": trunc.cutoff}
        elif net.build_func_name == "D_basic":
            details["mbstd_group_size"] = kw.get("mbstd_group_size", D_BASIC_DEFAULTS["mbstd_group_size"])
        described.append(NetworkDescription(
            name=net.name, kind=net.build_func_name, parameters=net.num_values(trainable=True),
            buffers=net.num_values(trainable=False), details=details))
    notes = ["read as data: build_module_src (the network's source) is never executed"]
    if len(nets) == 3:
        notes.insert(0, "metrics, generate and convert use Gs (the averaged generator), not G")
    path = Path(path)
    return FileDescription(path=str(path), format=FORMAT, sha256=file_sha256(path), size_bytes=path.stat().st_size,
                           networks=tuple(described), facts=facts, notes=tuple(notes))


def convert_official(src, dst) -> str:
    """Write the networks of official pickle `src` as a project checkpoint `dst` (G_ema = Gs; G
    and D when the file has them); returns a one-line summary."""
    from stylegan_core.checkpoint import save_checkpoint

    nets = read_official_pickle(src)
    info = official_checkpoint_info(src)
    if "generator" not in info["config"]:
        raise CheckpointError(f"official pickle {src}: holds no generator to convert")
    cpu = lambda m: {k: v.detach().cpu() for k, v in m.state_dict().items()}  # noqa: E731
    state = {"config": {**info["config"], "source": {**info["config"]["source"], "sha256": file_sha256(src)}},
             "progress": {}}
    if len(nets) == 3:
        state |= {"G": cpu(official_generator(nets[0])), "D": cpu(official_discriminator(nets[1])),
                  "G_ema": cpu(official_generator(nets[2]))}
    else:
        state["G_ema"] = cpu(official_generator(nets[0]))
    save_checkpoint(dst, state)
    return f"{', '.join(k for k in ('G_ema', 'G', 'D') if k in state)} ({'G_ema = Gs, ' if len(nets) == 3 else ''}" \
           f"{info['config']['generator']['synthesis']['resolution']}px)"
