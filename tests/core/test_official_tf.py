"""The official StyleGAN (v1) TF pickle importer: parity with outputs of the official code
(shared fixture, read in place), round trips through self-built pickles of the same structure,
the fused 128-px layers against the official ops, and refusal of anything executable."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan_core import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig, SynthesisConfig
from stylegan_core.errors import CheckpointError
from stylegan_core.formats.official_tf import is_official_pickle, read_official_pickle
from stylegan_core.formats.official_tf_networks import (
    generator_config,
    official_discriminator,
    official_generator,
)
from stylegan_core.layers import EqualizedConv2d, downscale2d, upscale2d
from tests import official_pickles as op

FIXTURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "official-stylegan1"
PICKLES = ("network-snapshot.pkl", "network-snapshot-np1.pkl")
needs_fixture = pytest.mark.skipif(
    not (FIXTURE / "reference.npz").is_file(),
    reason="official-stylegan1 fixture absent (../shared/fixtures/official-stylegan1 next to the repository)",
)


def relative_errors(G, D, ref) -> dict[str, float]:
    """Largest |ours - official| / largest |official| per reference array."""
    t = lambda k: torch.from_numpy(ref[k])  # noqa: E731
    with torch.no_grad():
        ours = {
            "dlatents_psi1": G.mapping(t("z")),
            "dlatents_psi07": G.mapping(t("z"), truncation_psi=0.7, truncation_cutoff=8),
            "dlatent_avg": G.w_avg,
            "images_psi1": G(t("z"), noise_mode="const"),
            "images_psi07": G(t("z"), truncation_psi=0.7, truncation_cutoff=8, noise_mode="const"),
            "images_synth": G.synthesis(t("ws_synth"), noise_mode="const"),
            "d_scores": D(t("d_images")),
            "d_scores_fake": D(t("images_psi1")),
        }
    return {k: float(np.abs(v.numpy() - ref[k]).max() / np.abs(ref[k]).max()) for k, v in ours.items()}


@needs_fixture
@pytest.mark.parametrize("name", PICKLES)
def test_fixture_matches_official_outputs(name):
    ref = np.load(FIXTURE / "reference.npz")
    G_net, D_net, Gs_net = read_official_pickle(FIXTURE / name)
    G, D = official_generator(Gs_net), official_discriminator(D_net)
    errors = relative_errors(G, D, ref)
    assert set(errors) == {k for k in ref.files if k not in ("z", "ws_synth", "d_images")}
    assert max(errors.values()) <= 1e-4, errors
    # The file's G (the training copy) is a different network: Gs is the one evaluated.
    G_train = official_generator(G_net)
    with torch.no_grad():
        img = G_train(torch.from_numpy(ref["z"]), noise_mode="const").numpy()
    assert np.abs(img - ref["images_psi1"]).max() > 1.0


@needs_fixture
def test_fixture_configuration_and_truncation_defaults():
    _, _, gs = read_official_pickle(FIXTURE / PICKLES[0])
    config, trunc = generator_config(gs)
    assert (trunc.psi, trunc.cutoff) == (0.7, 8)
    s, m = config.synthesis, config.mapping
    assert (s.resolution, s.fmap_base, s.fmap_max, s.num_ws, s.fused_scale) == (32, 64, 32, 8, "auto")
    assert (m.z_dim, m.w_dim, m.num_layers, m.hidden_dim, m.lr_multiplier) == (32, 32, 8, 32, 0.01)
    assert "def G_style" in gs.build_module_src  # kept as text, never run


def _small_generator(resolution=16, seed=0, **synthesis):
    cfg = GeneratorConfig(
        mapping=MappingConfig(z_dim=8, w_dim=8, num_layers=2, hidden_dim=8),
        synthesis=SynthesisConfig(resolution=resolution, w_dim=8, fmap_base=32, fmap_max=8, **synthesis),
        style_mixing_prob=0.9 if synthesis.get("use_styles", True) else 0.0,
    )
    G = Generator(cfg)
    op.randomize(G, seed)
    return G


def _small_discriminator(resolution=16, seed=1, **kw):
    D = Discriminator(DiscriminatorConfig(resolution=resolution, fmap_base=32, fmap_max=8, **kw))
    op.randomize(D, seed)
    return D


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_round_trip_through_self_built_pickle(tmp_path, protocol):
    G, D = _small_generator(), _small_discriminator()
    path = op.dump((op.generator_network(G, "G"), op.discriminator_network(D), op.generator_network(G)),
                   tmp_path / "snap.pkl", protocol=protocol)
    assert is_official_pickle(path)
    _, d_net, gs_net = read_official_pickle(path)
    G2, D2 = official_generator(gs_net), official_discriminator(d_net)
    for a, b in ((G, G2), (D, D2)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:  # exact but for the StyleMod scale biases (+1 then -1 in float32)
            torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0 if "style" not in k else 1.2e-7)
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        img = G(z, noise_mode="const")
        torch.testing.assert_close(G2(z, noise_mode="const"), img, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(D2(img), D(img), rtol=0, atol=0)


@pytest.mark.parametrize("options", [dict(use_styles=False, const_input=False, use_noise=False,
                                          use_pixel_norm=True, use_instance_norm=False), dict(blur=False)])
def test_round_trip_of_other_official_options(tmp_path, options):
    G = _small_generator(**options)
    kw = op.official_kwargs(G) | dict(
        use_styles=G.config.synthesis.use_styles, const_input_layer=G.config.synthesis.const_input,
        use_noise=G.config.synthesis.use_noise, use_pixel_norm=G.config.synthesis.use_pixel_norm,
        use_instance_norm=G.config.synthesis.use_instance_norm,
        blur_filter=[1, 2, 1] if G.config.synthesis.blur else None,
        style_mixing_prob=0.9 if G.config.synthesis.use_styles else None)
    gs = op.generator_network(G, static_kwargs=kw)
    path = op.dump(gs, tmp_path / "g.pkl")
    (net,) = read_official_pickle(path)
    G2 = official_generator(net)
    assert G2.config.synthesis == G.config.synthesis
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        torch.testing.assert_close(G2(z, noise_mode="none"), G(z, noise_mode="none"), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("key,value,phrase", [
    ("label_size", 10, "label_size=10 is not supported"),
    ("nonlinearity", "relu", "nonlinearity='relu' is not supported"),
    ("fmap_decay", 0.5, "fmap_decay=0.5 is not supported"),
    ("blur_filter", [1, 3, 3, 1], r"blur_filter=\[1, 3, 3, 1\] is not supported"),
    ("use_wscale", False, "use_wscale=False is not supported"),
    ("my_option", 1, r"unknown option\(s\) \['my_option'\]"),
])
def test_unsupported_options_are_refused_in_one_line(tmp_path, key, value, phrase):
    G = _small_generator()
    gs = op.generator_network(G, static_kwargs=op.official_kwargs(G) | {key: value})
    (net,) = read_official_pickle(op.dump(gs, tmp_path / "g.pkl"))
    with pytest.raises(CheckpointError, match=phrase) as e:
        official_generator(net)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------
# Fused resampling (>= 128 px): the official ops computed directly, on random weights.


def _summed_kernel(w):  # [out, in, 3, 3] -> the padded, 4-tap summed [out, in, 4, 4] kernel
    w = F.pad(w, (1, 1, 1, 1))
    return w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]


def _transposed_conv_direct(x, k):
    """TF conv2d_transpose(x, k, stride 2, 'SAME') written out as its scatter: input pixel (i, j)
    adds x[i, j] * k[:, :, a, b] to output pixel (2i + a - 1, 2j + b - 1). k: [out, in, 4, 4]."""
    n, _, h, w = x.shape
    out = torch.zeros(n, k.shape[0], 2 * h + 2, 2 * w + 2, dtype=x.dtype)
    for a in range(4):
        for b in range(4):
            out[:, :, a : a + 2 * h : 2, b : b + 2 * w : 2] += torch.einsum("nchw,oc->nohw", x, k[:, :, a, b])
    return out[:, :, 1 : 2 * h + 1, 1 : 2 * w + 1]


def test_fused_up_layer_is_the_official_transposed_conv():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 64, 64, generator=gen, dtype=torch.float64)
    up = EqualizedConv2d(3, 5, 3, resample="up", fused=True, bias=False).double()
    with torch.no_grad():
        up.weight.copy_(torch.randn(up.weight.shape, generator=gen))
    w = up.effective_weight()  # [out, in, 3, 3]
    official = _transposed_conv_direct(x, _summed_kernel(w))  # [2, 5, 128, 128]
    torch.testing.assert_close(up(x), official, rtol=0, atol=1e-10)
    # The same map as nearest upscale + 3x3 correlation with the spatially flipped kernel: the
    # transposed conv scatters, so the official fused layer's weights are flipped relative to
    # its separate path (weights trained fused stay fused: 'auto' decides by resolution).
    torch.testing.assert_close(F.conv2d(upscale2d(x), w.flip(2, 3), padding=1), official, rtol=0, atol=1e-10)


def test_fused_down_layer_is_the_official_strided_conv_and_equals_conv_then_downscale():
    gen = torch.Generator().manual_seed(1)
    y = torch.randn(2, 3, 128, 128, generator=gen, dtype=torch.float64)
    down = EqualizedConv2d(3, 5, 3, resample="down", fused=True, bias=False).double()
    with torch.no_grad():
        down.weight.copy_(torch.randn(down.weight.shape, generator=gen))
    w = down.effective_weight()
    k = _summed_kernel(w) * 0.25
    yp = F.pad(y, (1, 1, 1, 1))  # 'SAME' for a 4x4 kernel at stride 2 on an even size: 1 before, 1 after
    official = sum(torch.einsum("nchw,oc->nohw", yp[:, :, a : a + 128 : 2, b : b + 128 : 2], k[:, :, a, b])
                   for a in range(4) for b in range(4))  # [2, 5, 64, 64]
    torch.testing.assert_close(down(y), official, rtol=0, atol=1e-10)
    torch.testing.assert_close(downscale2d(F.conv2d(y, w, padding=1)), official, rtol=0, atol=1e-10)


def test_128px_pickle_uses_fused_layers_with_the_same_weights(tmp_path):
    G = _small_generator(resolution=128, seed=3)
    D = _small_discriminator(resolution=128, seed=4)
    path = op.dump((op.generator_network(G, "G"), op.discriminator_network(D), op.generator_network(G)),
                   tmp_path / "s128.pkl")
    _, d_net, gs_net = read_official_pickle(path)
    G2, D2 = official_generator(gs_net), official_discriminator(d_net)
    assert G2.synthesis.blocks[-1].conv0.fused and D2.blocks[-1].conv1.fused
    # Down: the same weights through the separate ops give the same scores; up: the separate
    # path needs the 3x3 kernels flipped (see the layer test above).
    G_sep = Generator(GeneratorConfig(mapping=G.config.mapping, synthesis=SynthesisConfig(
        **{**G.config.synthesis.to_dict(), "fused_scale": "never"})))
    flipped = {k: v.flip(2, 3) if k.endswith("blocks.4.conv0.weight") else v for k, v in G2.state_dict().items()}
    G_sep.load_state_dict(flipped)
    D_sep = Discriminator(DiscriminatorConfig(**{**D.config.to_dict(), "fused_scale": "never"}))
    D_sep.load_state_dict(D2.state_dict())
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        img = G2(z, noise_mode="const")
        torch.testing.assert_close(img, G_sep(z, noise_mode="const"), rtol=1e-4, atol=1e-4 * img.abs().max().item())
        s = D2(img)
        torch.testing.assert_close(s, D_sep(img), rtol=1e-4, atol=1e-4 * s.abs().max().item())


# ---------------------------------------------------------------------------------------------
# Safety: nothing from the file runs.


class _Payload:
    """Unpickling calls os.system(cmd) through __reduce__ (the classic pickle attack)."""

    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        import os

        return os.system, (self.cmd,)


class _Call:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _snapshot_with(tmp_path, payload, where="variables"):
    G = _small_generator()
    gs = op.generator_network(G)
    if where == "variables":
        gs.variables.append(("evil", payload))
    else:
        gs.static_kwargs["evil"] = payload
    return op.dump((gs, op.discriminator_network(_small_discriminator()), gs), tmp_path / "evil.pkl")


def test_reduce_payload_never_runs(tmp_path):
    marker = tmp_path / "marker"
    path = _snapshot_with(tmp_path, _Payload(f"touch {marker}"))
    assert is_official_pickle(path)  # looks like the real thing
    with pytest.raises(CheckpointError, match=r"refused global (posix|os|nt)\.system .*nothing from the file was run") as e:
        read_official_pickle(path)
    assert "\n" not in str(e.value) and not marker.exists()
    # Control: the ordinary unpickler (what the official loader uses) runs the payload.
    with op._official_module_names(), open(path, "rb") as f:
        pickle.load(f)
    assert marker.exists()


@pytest.mark.parametrize("func,args,name", [
    (eval, ("1 + 1",), "builtins.eval"),
    (__import__("subprocess").Popen, (["true"],), "subprocess.Popen"),
    (__import__("os").system, ("true",), "system"),
    (getattr, (object, "__subclasses__"), "builtins.getattr"),
])
def test_foreign_globals_are_refused_by_name(tmp_path, func, args, name):
    path = _snapshot_with(tmp_path, _Call(func, *args), where="static_kwargs")
    with pytest.raises(CheckpointError, match=f"refused global [a-z.]*{name}") as e:
        read_official_pickle(path)
    assert "\n" not in str(e.value)


def test_code_in_build_module_src_is_kept_as_text_and_never_run(tmp_path):
    marker = tmp_path / "marker"
    src = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\ndef G_style(*a, **k):\n    pass\n"
    G = _small_generator()
    gs = op.generator_network(G, src=src)
    path = op.dump((gs, op.discriminator_network(_small_discriminator(), src=src), gs), tmp_path / "src.pkl")
    _, d_net, gs_net = read_official_pickle(path)
    official_generator(gs_net), official_discriminator(d_net)
    assert gs_net.build_module_src == src and not marker.exists()


def test_truncated_file_is_one_line(tmp_path):
    G = _small_generator()
    path = op.dump((op.generator_network(G, "G"), op.discriminator_network(_small_discriminator()),
                    op.generator_network(G)), tmp_path / "full.pkl")
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"cut.pkl: unreadable \(truncated or corrupt\)") as e:
        read_official_pickle(cut)
    assert "\n" not in str(e.value)


def test_object_arrays_and_non_networks_are_refused(tmp_path):
    path = _snapshot_with(tmp_path, np.array([1, "text"], dtype=object))
    with pytest.raises(CheckpointError, match="variable G/evil is not a numeric array"):
        read_official_pickle(path)
    other = tmp_path / "list.pkl"
    other.write_bytes(pickle.dumps([1, 2, 3]))
    assert not is_official_pickle(other)
    with pytest.raises(CheckpointError, match="expected a Network or a \\(G, D, Gs\\) tuple, got list"):
        read_official_pickle(other)
