import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_core.checkpoint import save_generator
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.sampling import generate_images, image_grid
from stylegan_eval.cli import main
from stylegan_eval.cli.generate import paper_ranges, parse_seeds


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    G = Generator(get_preset("F-test16").generator, seed=2)
    return save_generator(tmp_path_factory.mktemp("ck") / "g.pt", G, preset="F-test16"), G.eval()


def _size(path):
    return Image.open(path).size


def test_grid_matches_the_library(ckpt, tmp_path, capsys):
    path, G = ckpt
    out = tmp_path / "grid.png"
    assert main(["generate", "grid", "--ckpt", str(path), "--seeds", "0-5", "--cols", "3", "--out", str(out),
                 "--device", "cpu", "--truncation-psi", "0.5", "--truncation-cutoff", "none"]) == 0
    assert "wrote" in capsys.readouterr().out
    expected = image_grid(generate_images(G, range(6), 0.5, None), cols=3)
    got = np.asarray(Image.open(out)).astype(int)
    assert got.shape == (32, 48, 3) and np.abs(got - expected).max() <= 1


def test_images_mixing_truncation_interp(ckpt, tmp_path):
    path = str(ckpt[0])
    assert main(["generate", "images", "--ckpt", path, "--seeds", "3,7", "--out", str(tmp_path / "imgs")]) == 0
    assert sorted(p.name for p in (tmp_path / "imgs").iterdir()) == ["seed0003.png", "seed0007.png"]
    assert main(["generate", "mixing", "--ckpt", path, "--out", str(tmp_path / "m.png"),
                 "--row-seeds", "1-3", "--col-seeds", "5,6", "--ranges", "coarse,middle,0-5"]) == 0
    assert _size(tmp_path / "m.png") == (3 * 16, 4 * 16)
    assert main(["generate", "mixing", "--ckpt", path, "--out", str(tmp_path / "m.png"), "--row-seeds", "1-4",
                 "--overwrite"]) == 0
    assert _size(tmp_path / "m.png") == (6 * 16, 5 * 16)
    assert main(["generate", "truncation", "--ckpt", path, "--out", str(tmp_path / "t.png"), "--seeds", "0,1",
                 "--psis", "1,0.5,0"]) == 0
    assert _size(tmp_path / "t.png") == (3 * 16, 2 * 16)
    assert main(["generate", "interp", "--ckpt", path, "--out", str(tmp_path / "i.png"), "--seeds", "0,1,2",
                 "--steps", "4", "--space", "both", "--noise-mode", "random"]) == 0
    assert _size(tmp_path / "i.png") == (4 * 16, 4 * 16)


def test_user_errors_are_one_line(ckpt, tmp_path, capsys):
    path = str(ckpt[0])
    assert main(["generate", "grid", "--ckpt", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["generate", "mixing", "--ckpt", path, "--out", str(tmp_path / "x.png"), "--ranges", "0-99"]) == 2
    assert "outside the generator's style inputs" in capsys.readouterr().err
    assert main(["generate", "interp", "--ckpt", path, "--out", str(tmp_path / "x.png"), "--seeds", "4"]) == 2
    assert "at least two seeds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["generate", "grid", "--ckpt", path, "--out", "x.png", "--seeds", "a-b"])
    assert "invalid seeds" in capsys.readouterr().err


def test_parse_seeds_and_help(capsys):
    assert parse_seeds("0-3,10") == [0, 1, 2, 3, 10] and parse_seeds("5") == [5]
    assert paper_ranges(6) == ["coarse"] * 3 + ["middle"] * 2 + ["fine"]
    assert paper_ranges(3) == ["coarse", "middle", "fine"] and paper_ranges(1) == ["coarse"]
    with pytest.raises(SystemExit):
        main(["generate", "mixing", "--help"])
    text = capsys.readouterr().out
    assert "--row-seeds" in text and "examples:" in text and "(default: 0.7)" in text


def test_traditional_generators_sample_but_do_not_mix(tmp_path, capsys):
    G = Generator(get_preset("B-test16").generator)
    path = str(save_generator(tmp_path / "b.pt", G, preset="B-test16"))
    assert main(["generate", "grid", "--ckpt", path, "--out", str(tmp_path / "g.png"), "--seeds", "0-3",
                 "--noise-mode", "random"]) == 0
    assert main(["generate", "mixing", "--ckpt", path, "--out", str(tmp_path / "m.png")]) == 2
    assert "style-based generator" in capsys.readouterr().err
    assert torch.is_tensor(generate_images(G.eval(), [0]))
