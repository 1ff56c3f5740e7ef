import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_core.errors import ConfigError
from stylegan_core.generator import Generator, style_mix
from stylegan_core.presets import get_preset
from stylegan_core.sampling import (
    crossover_layers,
    generate_images,
    generate_ws,
    image_grid,
    interpolation_strip,
    parse_crossover,
    save_image_grid,
    slerp,
    style_mixing_figure,
    truncation_sweep,
    z_from_seeds,
)

ATOL = 1e-4  # batched convolutions round differently from single-image ones (~1e-5)


@pytest.fixture(scope="module")
def G():
    g = Generator(get_preset("F-test16").generator, seed=1).eval()
    with torch.no_grad():  # a non-zero w_avg and noise strengths (both start at 0) so they show
        g.mapping.w_avg.copy_(torch.linspace(-0.5, 0.5, g.w_dim))
        for name, p in g.named_parameters():
            if name.endswith("noise.weight"):
                p.fill_(0.5)
    return g


def test_z_from_seeds_matches_the_official_per_seed_latents():
    z = z_from_seeds([5, 0, 5], 7)
    assert z.shape == (3, 7) and z.dtype == torch.float32
    assert np.allclose(z[0].numpy(), np.random.RandomState(5).randn(7).astype(np.float32))
    assert torch.equal(z[0], z[2]) and not torch.equal(z[0], z[1])
    with pytest.raises(ConfigError, match=r"seeds must be in \[0, 2\*\*32\)"):
        z_from_seeds([-1], 4)


@pytest.mark.parametrize("noise_mode", ["const", "random"])
def test_an_image_depends_on_its_seed_only(G, noise_mode):
    together = generate_images(G, [3, 1, 4, 1], noise_mode=noise_mode, batch_size=4)
    apart = generate_images(G, [4, 3], noise_mode=noise_mode, batch_size=1)
    assert together.shape == (4, 3, 16, 16) and together.dtype == torch.float32
    assert torch.allclose(together[2], apart[0], atol=ATOL) and torch.allclose(together[0], apart[1], atol=ATOL)
    assert torch.allclose(together[1], together[3], atol=ATOL)


def test_noise_modes_differ_and_random_noise_is_per_seed(G):
    const = generate_images(G, [0], noise_mode="const")
    rand = generate_images(G, [0], noise_mode="random")
    none = generate_images(G, [0], noise_mode="none")
    assert not torch.allclose(const, rand) and not torch.allclose(const, none)
    assert torch.equal(rand, generate_images(G, [0], noise_mode="random"))


def test_truncation_pulls_towards_the_average(G):
    ws_full = generate_ws(G, [0, 1], 1.0, None)
    ws_zero = generate_ws(G, [0, 1], 0.0, None)
    assert torch.allclose(ws_zero, G.w_avg.expand_as(ws_zero))
    ws_cut = generate_ws(G, [0, 1], 0.0, 2)
    assert torch.allclose(ws_cut[:, :2], ws_zero[:, :2]) and torch.equal(ws_cut[:, 2:], ws_full[:, 2:])
    imgs = generate_images(G, [0, 1, 2], truncation_psi=0.0, truncation_cutoff=None)
    assert torch.allclose(imgs[0], imgs[2], atol=ATOL)


def test_image_grid_layout_and_padding():
    imgs = torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1).expand(5, 3, 2, 4).contiguous() * 40
    grid = image_grid(imgs, cols=3)
    assert grid.shape == (4, 12, 3) and grid.dtype == np.uint8
    assert grid[0, 4, 0] == 40 and grid[2, 0, 0] == 120 and grid[3, 7, 2] == 160
    assert (grid[2:, 8:] == 255).all()  # the empty sixth cell
    padded = image_grid(imgs, cols=2, pad=1, pad_value=7)
    assert padded.shape == (3 * 2 + 2, 2 * 4 + 1, 3) and padded[2, 0, 0] == 7 and padded[3, 5, 0] == 120
    floats = image_grid(torch.tensor([-1.0, 0.0, 0.999, 2.0]).view(1, 1, 2, 2))
    assert floats[..., 0].tolist() == [[0, 128], [255, 255]]  # x * 127.5 + 128, clamped, truncated
    assert image_grid(imgs).shape == (4, 12, 3)  # default: ceil(sqrt(5)) = 3 columns
    with pytest.raises(ValueError, match="expects"):
        image_grid(torch.zeros(0, 3, 2, 2))


def test_save_image_grid_writes_a_png_atomically(tmp_path):
    imgs = torch.rand(6, 3, 4, 4) * 2 - 1
    path = save_image_grid(imgs, tmp_path / "sub" / "g.png", cols=3)
    assert np.array_equal(np.asarray(Image.open(path)), image_grid(imgs, 3))
    assert [p.name for p in path.parent.iterdir()] == ["g.png"]
    gray = save_image_grid(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), tmp_path / "gray.png")
    assert Image.open(gray).mode == "L"


def test_crossover_ranges_scale_the_papers_split():
    assert [crossover_layers(r, 18) for r in ("coarse", "middle", "fine")] == [(0, 4), (4, 8), (8, 18)]
    assert [crossover_layers(r, 8) for r in ("coarse", "middle", "fine")] == [(0, 2), (2, 4), (4, 8)]
    for n in range(3, 19):
        spans = [crossover_layers(r, n) for r in ("coarse", "middle", "fine")]
        assert spans[0][0] == 0 and spans[0][1] == spans[1][0] and spans[1][1] == spans[2][0] and spans[2][1] == n
        assert all(a < b for a, b in spans)
    assert parse_crossover("2-3", 8) == (2, 4)
    with pytest.raises(ConfigError, match="outside the generator's style inputs 0-7"):
        parse_crossover("5-9", 8)
    with pytest.raises(ConfigError, match="coarse, middle, fine or START-STOP"):
        parse_crossover("medium", 8)


def test_style_mixing_figure_cells_are_the_mixed_styles(G):
    fig = style_mixing_figure(G, [1, 2], [10, 11, 12], ["coarse", (2, 5)])
    assert fig.images.shape == (3, 4, 3, 16, 16) and fig.ranges == ((0, 1), (2, 5))
    assert (fig.images[0, 0] == 1).all()
    assert torch.allclose(fig.images[0, 1:], generate_images(G, [10, 11, 12]), atol=ATOL)
    assert torch.allclose(fig.images[1:, 0], generate_images(G, [1, 2]), atol=ATOL)
    ws_a, ws_b = generate_ws(G, [10, 11, 12]), generate_ws(G, [1, 2])
    with torch.no_grad():
        cell = G.synthesis(style_mix(ws_a[2:3], ws_b[1:2], 2, 5), noise_mode="const")
    assert torch.allclose(fig.images[2, 3], cell[0], atol=ATOL)
    assert not torch.allclose(fig.images[2, 3], fig.images[0, 3], atol=1e-3)
    assert fig.flat().shape == (12, 3, 16, 16)
    with pytest.raises(ConfigError, match="one crossover range per row"):
        style_mixing_figure(G, [1, 2], [3], ["fine"])


def test_style_mixing_needs_a_style_based_generator():
    trad = Generator(get_preset("B-test16").generator).eval()
    with pytest.raises(ConfigError, match="style-based generator"):
        style_mixing_figure(trad, [1], [2], "coarse")


def test_truncation_sweep_rows_are_seeds_and_columns_psis(G):
    sweep = truncation_sweep(G, [0, 1], [1.0, 0.0], truncation_cutoff=None)
    assert sweep.shape == (2, 2, 3, 16, 16)
    assert torch.allclose(sweep[:, 0], generate_images(G, [0, 1], 1.0, None), atol=ATOL)
    assert torch.allclose(sweep[0, 1], sweep[1, 1], atol=ATOL)  # psi = 0: both are the average face


@pytest.mark.parametrize("space", ["z", "w"])
def test_interpolation_strips_run_from_one_seed_to_the_other(G, space):
    strip = interpolation_strip(G, 3, 4, 5, space=space)
    ends = generate_images(G, [3, 4])
    assert strip.shape == (5, 3, 16, 16)
    assert torch.allclose(strip[0], ends[0], atol=ATOL) and torch.allclose(strip[-1], ends[1], atol=ATOL)
    assert not torch.allclose(strip[2], ends[0], atol=1e-3)
    with pytest.raises(ConfigError, match="at least 2 steps"):
        interpolation_strip(G, 3, 4, 1)


def test_slerp_stays_on_the_sphere():
    a = torch.nn.functional.normalize(torch.randn(4, 6, generator=torch.Generator().manual_seed(0)), dim=1)
    b = torch.nn.functional.normalize(torch.randn(4, 6, generator=torch.Generator().manual_seed(1)), dim=1)
    for t in (0.0, 0.3, 1.0):
        out = slerp(a, b, torch.full((4,), t))
        assert torch.allclose(out.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.allclose(slerp(a, b, torch.zeros(4)), a, atol=1e-6)
    assert torch.allclose(slerp(a, b, torch.ones(4)), b, atol=1e-5)
    half = slerp(a, b, torch.full((4,), 0.5))
    assert torch.allclose((half * a).sum(1), (half * b).sum(1), atol=1e-5)  # equal angles to both ends
