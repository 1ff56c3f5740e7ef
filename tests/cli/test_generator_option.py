"""--generator MODULE:CALLABLE and NVlabs pickles as --ckpt (with --trust-pickle-code, --class)
on the commands that measure or sample a model."""

import json

import numpy as np
import pytest
from PIL import Image

from stylegan_core.checkpoint import save_generator
from stylegan_core.formats.nvlabs_torch import load_nvlabs_generator
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.sampling import generate_images, image_grid
from stylegan_eval.cli import main

from tests.core.nvlabs_pickles import MARKER_ENV, build_pickle, forget_modules

FACTORY = '''
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset


def make():
    return Generator(get_preset("F-test16").generator, seed=4)


def broken():
    return object()
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "cli_user_gens.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "cli_user_gens", raising=False)
    ckpt = save_generator(tmp_path / "same.pt", Generator(get_preset("F-test16").generator, seed=4), preset="F-test16")
    return "cli_user_gens:make", ckpt


@pytest.fixture
def nvlabs(tmp_path, monkeypatch, request):
    request.addfinalizer(forget_modules)
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv(MARKER_ENV, raising=False)
    built = build_pickle(root, name="ffhq-tiny.pkl")
    forget_modules()
    monkeypatch.setenv(MARKER_ENV, str(root / "marker"))
    return built


def test_generate_with_generator_matches_the_checkpoint(user_module, tmp_path):
    spec, ckpt = user_module
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["generate", "grid", "--generator", spec, "--seeds", "0-3", "--out", str(a)]) == 0
    assert main(["generate", "grid", "--ckpt", str(ckpt), "--seeds", "0-3", "--out", str(b)]) == 0
    assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


def test_ppl_with_generator_records_it(user_module, torch_home, capsys):
    spec, ckpt = user_module
    argv = ["ppl", "--num-samples", "4", "--no-crop", "--substitute-weights", "--json"]
    assert main(argv + ["--generator", spec]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["model"] == spec and rec["checkpoint"] is None and rec["checkpoint_sha256"] is None
    assert main(argv + ["--ckpt", str(ckpt)]) == 0
    assert json.loads(capsys.readouterr().out)["value"] == pytest.approx(rec["value"], rel=1e-5)


@pytest.mark.parametrize("extra, message", [
    (["--generator", "cli_user_gens"], "--generator must be MODULE:CALLABLE"),
    (["--generator", "cli_user_gens:broken"],
     "the generator from cli_user_gens:broken does not honour the generator interface: it has no attribute z_dim"),
    (["--generator", "cli_user_gens:make", "--class", "1"], "--class picks the label of a conditional NVlabs pickle"),
])
def test_generator_errors_are_one_line(user_module, torch_home, capsys, extra, message):
    assert main(["ppl", "--num-samples", "2", "--no-crop", "--substitute-weights"] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stylegan-eval ppl: error: ") and message in err and "\n" not in err


def test_ckpt_and_generator_exclude_each_other(user_module, capsys):
    spec, ckpt = user_module
    with pytest.raises(SystemExit) as e:
        main(["ppl", "--ckpt", str(ckpt), "--generator", spec])
    assert e.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_class_needs_an_nvlabs_pickle(user_module, capsys):
    _, ckpt = user_module
    assert main(["generate", "grid", "--ckpt", str(ckpt), "--class", "0", "--out", "x.png"]) == 2
    assert "--class picks the label of a conditional NVlabs pickle" in capsys.readouterr().err


def test_nvlabs_pickle_without_the_flag_is_one_line(nvlabs, tmp_path, capsys):
    out = tmp_path / "g.png"
    assert main(["generate", "grid", "--ckpt", str(nvlabs.path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is a StyleGAN2-ADA PyTorch network pickle" in err and "--trust-pickle-code" in err
    assert not out.exists() and not (nvlabs.root / "marker").exists()


def test_nvlabs_pickle_with_the_flag(nvlabs, tmp_path, torch_home, capsys):
    out = tmp_path / "g.png"
    assert main(["generate", "grid", "--ckpt", str(nvlabs.path), "--trust-pickle-code", "--seeds", "0-3",
                 "--noise-mode", "const", "--out", str(out)]) == 0
    G = load_nvlabs_generator(nvlabs.path, trust_code=True)
    expected = image_grid(generate_images(G, range(4), noise_mode="const"))
    assert np.abs(np.asarray(Image.open(out)).astype(int) - expected).max() <= 1
    capsys.readouterr()
    assert main(["ppl", "--ckpt", str(nvlabs.path), "--trust-pickle-code", "--num-samples", "4", "--no-crop",
                 "--substitute-weights", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["model"] == "ffhq-tiny" and rec["checkpoint"] == str(nvlabs.path) and len(rec["checkpoint_sha256"]) == 64
    assert np.isfinite(rec["value"])


def test_conditional_nvlabs_pickle_is_labelled_by_class(tmp_path, monkeypatch, request, capsys):
    from stylegan_eval.cli.common import load_checkpoint_generator

    request.addfinalizer(forget_modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    built = build_pickle(tmp_path, name="cond.pkl", c_dim=3)
    forget_modules()
    loaded = load_checkpoint_generator(str(built.path), None, "cpu", trust_pickle_code=True, class_idx=1)
    assert loaded.label == "cond-class1" and loaded.G.class_idx == 1 and loaded.preset is None
    assert main(["generate", "grid", "--ckpt", str(built.path), "--trust-pickle-code", "--out", str(tmp_path / "g.png")]) == 2
    assert "conditional (3 classes): pick one with --class 0..2" in capsys.readouterr().err
    assert main(["generate", "grid", "--ckpt", str(built.path), "--trust-pickle-code", "--class", "2",
                 "--seeds", "0-1", "--out", str(tmp_path / "g.png")]) == 0


@pytest.mark.parametrize("command", ["disentanglement", "measure"])
def test_disentanglement_and_measure_take_generator(user_module, tmp_path, capsys, command):
    from stylegan_eval.classifier import build_classifier, classifier_config, save_classifier

    spec, ckpt = user_module
    clf = save_classifier(tmp_path / "c.pt", build_classifier(classifier_config(["a", "b", "c"], 8, fmap_base=64, fmap_max=16), 1))
    argv = [command, "--classifier", str(clf), "--num-samples", "24", "--spaces", "w,s", "--json", "--device", "cpu"]
    argv += ["--metrics", "mig,sap"] if command == "disentanglement" else ["--metrics", "ls,mig,sap"]
    assert main(argv + ["--generator", spec]) == 0
    got = json.loads(capsys.readouterr().out)
    assert {r["model"] for r in got} == {spec} and {r["checkpoint"] for r in got} == {None}
    assert main(argv + ["--ckpt", str(ckpt)]) == 0
    by_ckpt = json.loads(capsys.readouterr().out)
    assert [r["metric"] for r in by_ckpt] == [r["metric"] for r in got] and "mig_s" in {r["metric"] for r in got}
    assert [r["value"] for r in by_ckpt] == pytest.approx([r["value"] for r in got], rel=1e-6)


@pytest.mark.parametrize("command", [["disentanglement", "--metrics", "mig"], ["measure", "--metrics", "mig"]])
def test_nvlabs_pickle_without_the_flag_is_one_line_in_disentanglement_and_measure(nvlabs, tmp_path, capsys, command):
    from stylegan_eval.classifier import build_classifier, classifier_config, save_classifier

    clf = save_classifier(tmp_path / "c.pt", build_classifier(classifier_config(["a", "b"], 8, fmap_base=64, fmap_max=16), 1))
    assert main([*command, "--ckpt", str(nvlabs.path), "--classifier", str(clf), "--num-samples", "8", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--trust-pickle-code" in err and not (nvlabs.root / "marker").exists()
