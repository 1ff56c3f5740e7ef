import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from stylegan_core.errors import ConfigError, NonFiniteError
from stylegan_eval.metrics import ppl
from stylegan_eval.metrics.ppl import PPLConfig, PPLSampler, compute_ppl

REPO = Path(__file__).resolve().parents[3]


class SquaredL2(nn.Module):
    """A distance with the LPIPS call signature: d(img0, img1) -> [N]."""

    def forward(self, a, b):
        return (a - b).square().flatten(1).sum(1)


class TanhGenerator(nn.Module):
    """A generator whose image is a known smooth function of w: img = tanh(A w) + noise / 10.

    The mapping is the identity (broadcast to num_ws layers), so w-space interpolates z and
    the derivative along any path is available in closed form. Noise is added so that a pair
    whose two images did not share their noise would give huge distances.
    """

    def __init__(self, res=16, z_dim=6, channels=1, num_ws=3):
        super().__init__()
        self.z_dim = self.w_dim = z_dim
        self.num_ws, self.img_resolution, self.img_channels = num_ws, res, channels
        gen = torch.Generator().manual_seed(123)
        self.register_buffer("A", torch.randn(channels * res * res, z_dim, generator=gen) / math.sqrt(z_dim))
        self.register_buffer("w_avg", torch.zeros(z_dim))
        outer = self

        class Synthesis(nn.Module):
            noise_shapes = [(res // 2, res // 2), (res, res)]

            def forward(self, ws, noise_mode="random", noise=None):
                assert noise_mode == "given" and [tuple(n.shape[2:]) for n in noise] == self.noise_shapes
                img = torch.tanh(ws[:, 0] @ outer.A.T).reshape(-1, channels, res, res)
                up = nn.functional.interpolate(noise[0], scale_factor=2)
                return img + (up + noise[1]) / 10

        self.synthesis = Synthesis()

    def mapping(self, z, truncation_psi=1.0, truncation_cutoff=None):
        assert truncation_psi == 1.0
        return z[:, None, :].repeat(1, self.num_ws, 1)


def crop_rows_cols(res):
    c = res // 8
    return slice(3 * c, 7 * c), slice(2 * c, 6 * c)


def expected_dists(G, inputs, space, crop=True):
    """By hand: d/eps^2 -> || crop(J(p_t) p'_t) ||^2 for img = tanh(A p), p the path point."""
    z0, z1, t = inputs.z0.double(), inputs.z1.double(), inputs.t.double()[:, None]
    if space == "w":
        p, dp = z0 + t * (z1 - z0), z1 - z0
    else:
        a = z0 / z0.norm(dim=1, keepdim=True)
        b = z1 / z1.norm(dim=1, keepdim=True)
        theta = torch.acos((a * b).sum(1, keepdim=True))
        c = b - (a * b).sum(1, keepdim=True) * a
        c = c / c.norm(dim=1, keepdim=True)
        p = a * torch.cos(t * theta) + c * torch.sin(t * theta)
        dp = theta * (-a * torch.sin(t * theta) + c * torch.cos(t * theta))
    A = G.A.double()
    jvp = (1 - torch.tanh(p @ A.T) ** 2) * (dp @ A.T)  # [N, C*R*R]
    res = G.img_resolution
    jvp = jvp.reshape(-1, G.img_channels, res, res)
    if crop:
        rows, cols = crop_rows_cols(res)
        jvp = jvp[:, :, rows, cols]
    grey_to_rgb = 3 if G.img_channels == 1 else 1  # the distance sees grey replicated to RGB
    return grey_to_rgb * jvp.square().flatten(1).sum(1).numpy()


# ---- pure helpers -----------------------------------------------------------------------------


def test_slerp_endpoints_norms_and_angle():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 7, generator=gen), torch.randn(5, 7, generator=gen)
    an, bn = ppl.normalize(a), ppl.normalize(b)
    assert torch.allclose(ppl.slerp(a, b, torch.zeros(5, 1)), an, atol=1e-6)
    assert torch.allclose(ppl.slerp(a, b, torch.ones(5, 1)), bn, atol=1e-5)
    t = torch.rand(5, 1, generator=gen)
    mid = ppl.slerp(a, b, t)
    assert torch.allclose(mid.norm(dim=1), torch.ones(5), atol=1e-6)
    # Constant angular speed: the angle from a is t times the angle between a and b.
    full = torch.acos((an * bn).sum(1))
    part = torch.acos((an * mid).sum(1).clamp(-1, 1))
    assert torch.allclose(part, t[:, 0] * full, atol=1e-4)


def test_lerp_endpoints_and_midpoint():
    a, b = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    t = torch.tensor([0.0, 1.0])[:, None, None]
    out = ppl.lerp(a, b, t)
    assert torch.equal(out[0], a[0]) and torch.allclose(out[1], b[1])
    assert torch.allclose(ppl.lerp(a, b, torch.full((2, 1, 1), 0.5)), (a + b) / 2)


def test_crop_face_indices_match_reference():
    # REFERENCE.md: c = H // 8, rows 3c..7c, columns 2c..6c.
    img = torch.arange(64 * 64, dtype=torch.float32).reshape(1, 1, 64, 64)
    out = ppl.crop_face(img)
    assert out.shape == (1, 1, 32, 32)
    assert out[0, 0, 0, 0] == img[0, 0, 24, 16] and out[0, 0, -1, -1] == img[0, 0, 55, 47]
    assert ppl.crop_face(torch.zeros(1, 3, 1024, 1024)).shape[2:] == (512, 512)


@pytest.mark.parametrize(
    "res, crop, size",
    [(1024, True, 256), (1024, False, 256), (2048, True, 256), (512, True, 256), (512, False, 256), (256, True, 128), (32, True, 16), (16, False, 16)],
)
def test_measured_size_follows_tf_downsampling(res, crop, size):
    # TF: crop first, then factor = crop_size // 256 when the crop is larger than 256.
    assert ppl.measured_size(res, crop) == size


def test_prepare_images_area_downsamples_the_crop_to_256():
    img = torch.randn(1, 3, 1024, 1024)
    out = ppl.prepare_images(img, crop=True)
    assert out.shape == (1, 3, 256, 256)
    crop = img[:, :, 384:896, 256:768]
    assert torch.allclose(out[0, 1, 5, 7], crop[0, 1, 10:12, 14:16].mean(), atol=1e-6)
    grey = ppl.prepare_images(torch.randn(2, 1, 32, 32), crop=False)
    assert grey.shape == (2, 3, 32, 32) and torch.equal(grey[:, 0], grey[:, 2])


def test_filtered_mean_uses_lower_and_higher_percentiles():
    rng = np.random.default_rng(0)
    d = rng.permutation(np.arange(1.0, 201.0))
    # 200 values: 1st percentile at position 1.99 rounds down to 2, 99th at 197.01 up to 199.
    assert ppl.filtered_mean(d) == pytest.approx(np.arange(2.0, 200.0).mean())
    x = rng.lognormal(size=1001)
    lo, hi = np.percentile(x, 1, method="lower"), np.percentile(x, 99, method="higher")
    assert ppl.filtered_mean(x) == pytest.approx(x[(x >= lo) & (x <= hi)].mean(), rel=1e-12)
    assert ppl.filtered_mean(x) != pytest.approx(x.mean(), rel=1e-3)


def test_summarize_statistics():
    d = np.arange(1.0, 201.0)
    s = ppl.summarize(d)
    kept = np.arange(2.0, 200.0)
    assert (s.num_kept, s.num_total, s.p1, s.p99) == (198, 200, 2.0, 199.0)
    assert s.value == pytest.approx(kept.mean()) and s.unfiltered_mean == pytest.approx(100.5)
    assert s.p50 == pytest.approx(100.5)
    assert s.stderr == pytest.approx(kept.std(ddof=1) / math.sqrt(198))


def test_config_validation():
    with pytest.raises(ConfigError, match="space must be 'z' or 'w'"):
        PPLConfig(space="x")
    with pytest.raises(ConfigError, match="sampling must be 'full' or 'end'"):
        PPLConfig(sampling="mid")
    with pytest.raises(ConfigError, match="epsilon must be a positive"):
        PPLConfig(epsilon=0.0)
    with pytest.raises(ConfigError, match="at least 1 sample"):
        PPLConfig(num_samples=0)
    assert PPLConfig(space="z", sampling="full").metric == "ppl_zfull"


# ---- sampler and loop on a closed-form generator ---------------------------------------------


@pytest.mark.parametrize("space", ["w", "z"])
@pytest.mark.parametrize("sampling", ["full", "end"])
def test_sampled_distances_match_closed_form(space, sampling):
    G = TanhGenerator()
    cfg = PPLConfig(space=space, sampling=sampling, num_samples=40)
    sampler = PPLSampler(G, SquaredL2(), cfg, seed=3, device=torch.device("cpu"))
    inputs = sampler.inputs(range(40))
    if sampling == "end":
        assert torch.equal(inputs.t, torch.zeros(40))
    else:
        assert 0 <= inputs.t.min() and inputs.t.max() < 1 and inputs.t.std() > 0.1
    dists, finite = sampler(range(40))
    assert finite.all()
    np.testing.assert_allclose(dists.numpy(), expected_dists(G, inputs, space), rtol=2e-2)
    rec = compute_ppl(G, space=space, sampling=sampling, num_samples=40, batch_size=7, seed=3,
                      distance=SquaredL2(), progress=False)
    assert rec.metric == f"ppl_{space}{sampling}"
    assert rec.value == pytest.approx(ppl.filtered_mean(expected_dists(G, inputs, space)), rel=1e-2)
    assert rec.feature_network.substitute and rec.feature_network.name == "custom:SquaredL2"


def test_full_and_end_sample_different_paths():
    G = TanhGenerator()
    end = compute_ppl(G, space="w", sampling="end", num_samples=30, seed=1, distance=SquaredL2(), progress=False)
    full = compute_ppl(G, space="w", sampling="full", num_samples=30, seed=1, distance=SquaredL2(), progress=False)
    assert end.value != pytest.approx(full.value, rel=1e-3)


def test_inputs_depend_only_on_seed_and_index():
    G = TanhGenerator()
    sampler = PPLSampler(G, SquaredL2(), PPLConfig(sampling="full"), seed=5, device=torch.device("cpu"))
    a, b = sampler.inputs(range(0, 6)), sampler.inputs([4, 5])
    assert torch.equal(a.z0[4:], b.z0) and torch.equal(a.z1[4:], b.z1) and torch.equal(a.t[4:], b.t)
    assert all(torch.equal(x[4:], y) for x, y in zip(a.noise, b.noise))
    other = PPLSampler(G, SquaredL2(), PPLConfig(sampling="full"), seed=6, device=torch.device("cpu"))
    assert not torch.equal(other.inputs([4]).z0, b.z0[:1])


def test_batch_size_does_not_change_result(tmp_path):
    G = TanhGenerator(res=32, channels=3)
    r4 = compute_ppl(G, space="z", sampling="full", num_samples=33, batch_size=4, seed=2, distance=SquaredL2(),
                     progress=False, save_dists=tmp_path / "d4.npy")
    r16 = compute_ppl(G, space="z", sampling="full", num_samples=33, batch_size=16, seed=2, distance=SquaredL2(),
                      progress=False, save_dists=tmp_path / "d16.npy")
    np.testing.assert_allclose(np.load(tmp_path / "d4.npy"), np.load(tmp_path / "d16.npy"), rtol=1e-5)
    assert r4.value == pytest.approx(r16.value, rel=1e-6)


def test_record_extras_and_saved_distances(tmp_path):
    out = tmp_path / "sub" / "dists.npy"
    rec = compute_ppl(TanhGenerator(), num_samples=50, seed=0, distance=SquaredL2(), progress=False,
                      save_dists=out, label="tanh", preset="none")
    d = np.load(out)
    assert d.shape == (50,) and d.dtype == np.float32
    s = ppl.summarize(d)
    assert rec.value == pytest.approx(s.value)
    assert rec.extras["unfiltered_mean"] == pytest.approx(d.mean(dtype=np.float64))
    assert rec.extras["percentiles"] == {"1": s.p1, "50": s.p50, "99": s.p99}
    # 50 values: the 1st percentile rounds down to the minimum, the 99th up to the maximum.
    assert rec.extras["num_kept"] == 50 and rec.extras["stderr"] > 0 and rec.num_samples == 50
    assert rec.params["crop"] and rec.params["epsilon"] == 1e-4 and rec.params["preset"] == "none"
    assert rec.model == "tanh" and rec.checkpoint is None
    assert [p.name for p in out.parent.iterdir()] == ["dists.npy"]  # no temp file left behind


def test_distance_sees_float_images_in_minus_one_one():
    seen = []

    class Recorder(SquaredL2):
        def forward(self, a, b):
            seen.append(torch.cat([a, b]))
            return super().forward(a, b)

    G = TanhGenerator(res=16)
    compute_ppl(G, num_samples=4, distance=Recorder(), progress=False)
    x = seen[0]
    assert x.dtype == torch.float32 and x.shape == (8, 3, 8, 8)  # cropped, grey -> 3 channels
    assert x.min() > -1.6 and x.max() < 1.6 and x.min() < -0.3  # not [0, 255], not [0, 1]
    assert not torch.equal(x, x.round())  # not quantised


def test_non_finite_generator_fails_clearly():
    G = TanhGenerator()
    G.A[3, 0] = float("nan")
    with pytest.raises(NonFiniteError, match=r"generator produced NaN/Inf images .* sample index 0"):
        compute_ppl(G, num_samples=8, distance=SquaredL2(), progress=False)


def test_too_small_for_lpips_is_a_config_error():
    class Tiny(SquaredL2):
        min_image_size = 16

    with pytest.raises(ConfigError, match=r"gives 8x8 images after the face crop .*--no-crop"):
        compute_ppl(TanhGenerator(res=16), num_samples=2, distance=Tiny(), progress=False)


# ---- real generators ----------------------------------------------------------------------------


def tiny_generator():
    from stylegan_core.generator import Generator
    from stylegan_core.presets import get_preset

    return Generator(get_preset("F-test16").generator, seed=0)


def test_real_generator_with_default_lpips_is_batch_size_independent(torch_home, tmp_path):
    # No VGG16 file in the private TORCH_HOME: the explicitly requested substitute is used and labelled.
    G = tiny_generator()
    kw = dict(space="w", sampling="full", num_samples=24, crop=False, seed=4, substitute_weights=True, progress=False)
    r4 = compute_ppl(G, batch_size=4, save_dists=tmp_path / "a.npy", **kw)
    r16 = compute_ppl(G, batch_size=16, save_dists=tmp_path / "b.npy", **kw)
    # Up to float32 rounding of batch-size-dependent kernels, amplified by 1 / eps^2.
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"), rtol=1e-3)
    assert r4.value == pytest.approx(r16.value, rel=1e-4) and r4.value > 0
    assert r4.feature_network.substitute and r4.feature_network.weights == "substitute:random-vgg16-seed0"
    assert r4.extras["image_size"] == 16


def test_real_generator_nan_fails_clearly():
    G = tiny_generator()
    with torch.no_grad():
        for p in G.synthesis.parameters():
            p.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match=r"^PPL: the generator produced NaN/Inf images for 3 pair\(s\)"):
        compute_ppl(G, num_samples=3, crop=False, distance=SquaredL2(), progress=False)


def test_missing_lpips_weights_propagate_without_substitute(torch_home):
    from stylegan_eval.weights import MissingWeightsError

    with pytest.raises(MissingWeightsError, match=r"vgg16-397923af\.pth"):
        compute_ppl(tiny_generator(), num_samples=2, crop=False, progress=False)


TORCHRUN_KWARGS = dict(space="z", sampling="full", num_samples=21, batch_size=4, crop=False, seed=7,
                       substitute_weights=True, progress=False)

TORCHRUN_SCRIPT = f"""
import json, sys
from stylegan_core import distributed
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_eval.metrics.ppl import compute_ppl

distributed.init("cpu")
G = Generator(get_preset("F-test16").generator, seed=0)
rec = compute_ppl(G, save_dists=sys.argv[1] + ".npy", **{TORCHRUN_KWARGS!r})
if distributed.is_main():
    with open(sys.argv[1], "w") as f:
        json.dump({{"value": rec.value, "processes": rec.extras["processes"]}}, f)
"""


@pytest.mark.slow
def test_one_and_two_torchrun_processes_agree(torch_home, tmp_path):
    import json

    script = tmp_path / "run_ppl.py"
    script.write_text(TORCHRUN_SCRIPT)
    out = tmp_path / "out.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    # --standalone picks a free port (--master_port 0 would hang the rendezvous).
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = json.loads(out.read_text())
    assert two["processes"] == 2
    # One process: torchrun with a world size of 1 runs exactly this (no process group), in-process.
    one = compute_ppl(tiny_generator(), save_dists=tmp_path / "one.npy", **TORCHRUN_KWARGS)
    assert one.extras["processes"] == 1
    # Same samples; only float32 rounding may differ (kernels depend on the batch composition,
    # and dividing by eps^2 turns last-bit image differences into ~1e-4 relative, up to ~1e-3
    # for a sample that is alone in its batch on one side).
    np.testing.assert_allclose(np.load(tmp_path / "one.npy"), np.load(str(out) + ".npy"), rtol=2e-3)
    assert one.value == pytest.approx(two["value"], rel=1e-4)
