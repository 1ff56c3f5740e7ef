"""Official StyleGAN pickles through the CLI and the public API: --ckpt for every command,
`convert`, `inspect`, `ls --classifier` with the paper's classifier files, load_discriminator."""

import json
from pathlib import Path

import pytest
import torch

import stylegan_core
from stylegan_core import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig, SynthesisConfig
from stylegan_core.checkpoint import save_checkpoint, save_generator
from stylegan_core.errors import CheckpointError
from stylegan_eval.cli import main
from stylegan_eval.cli.common import load_checkpoint_generator
from stylegan_eval.records import read_jsonl
from tests import official_pickles as op

FIXTURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "official-stylegan1"


def _nets():
    G = Generator(GeneratorConfig(mapping=MappingConfig(z_dim=8, w_dim=8, num_layers=2, hidden_dim=8),
                                  synthesis=SynthesisConfig(resolution=16, w_dim=8, fmap_base=32, fmap_max=8)))
    op.randomize(G, 0)
    Gs = Generator(G.config)
    op.randomize(Gs, 1)
    D = Discriminator(DiscriminatorConfig(resolution=16, fmap_base=32, fmap_max=8))
    op.randomize(D, 2)
    return G, D, Gs


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    d = tmp_path_factory.mktemp("official")
    G, D, Gs = _nets()
    path = op.dump((op.generator_network(G, "G"), op.discriminator_network(D), op.generator_network(Gs)),
                   d / "karras-test-16.pkl")
    return path, G, D, Gs


def _error(capsys, args) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_load_generator_returns_gs_and_load_discriminator_d(snapshot):
    path, G, D, Gs = snapshot
    loaded = stylegan_core.load_generator(path)
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = Gs(z, noise_mode="const")
        torch.testing.assert_close(loaded(z, noise_mode="const"), ref, rtol=1e-5, atol=1e-5)
        assert (G(z, noise_mode="const") - ref).abs().max() > 0.1  # G is not what is returned
        assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
        torch.testing.assert_close(stylegan_core.load_discriminator(path)(ref), D(ref), rtol=0, atol=0)
    info = stylegan_core.checkpoint_info(path)
    assert info["preset"] is None and info["format"] == "nvlabs-stylegan1-tf"
    assert info["config"]["generator"] == Gs.config.to_dict()
    assert info["config"]["truncation_defaults"] == {"psi": 0.7, "cutoff": 8}
    gen = load_checkpoint_generator(str(path), None, "cpu")
    assert gen.label == "karras-test-16" and gen.preset is None and gen.checkpoint == str(path)


def test_load_discriminator_from_project_checkpoints(tmp_path):
    G, D, _ = _nets()
    path = save_checkpoint(tmp_path / "snap.pt", {"config": {"generator": G.config.to_dict(),
                                                              "discriminator": D.config.to_dict()},
                                                   "G_ema": G.state_dict(), "D": D.state_dict()})
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(stylegan_core.load_discriminator(path)(x), D(x))
    only_g = save_generator(tmp_path / "g.pt", G)
    with pytest.raises(CheckpointError, match="holds no discriminator"):
        stylegan_core.load_discriminator(only_g)


def test_convert_writes_a_weights_only_checkpoint_with_the_same_generator(snapshot, tmp_path, capsys):
    path, _, D, Gs = snapshot
    out = tmp_path / "converted.pt"
    assert main(["convert", str(path), str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    payload = torch.load(out, weights_only=True)
    assert json.loads(payload["config_json"])["source"]["format"] == "nvlabs-stylegan1-tf"
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a = stylegan_core.load_generator(out)(z, noise_mode="const")
        b = stylegan_core.load_generator(path)(z, noise_mode="const")
        assert torch.equal(a, b)
        assert torch.equal(stylegan_core.load_discriminator(out)(a), stylegan_core.load_discriminator(path)(a))
    assert "exists; pass --overwrite to replace it" in _error(capsys, ["convert", str(path), str(out)])
    for flag in ("--overwrite", "--force"):  # --force: the command's earlier name for it
        out.write_bytes(b"old")
        assert main(["convert", str(path), str(out), flag]) == 0
        assert torch.load(out, weights_only=True)["config_json"]
    assert "not an official StyleGAN" in _error(capsys, ["convert", str(out), str(tmp_path / "x.pt")])


def test_inspect_pickle_and_checkpoint(snapshot, tmp_path, capsys):
    path, G, D, Gs = snapshot
    assert main(["inspect", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["format"] == "nvlabs-stylegan1-tf" and len(d["sha256"]) == 64
    assert d["facts"] == {"resolution": 16, "truncation_psi": 0.7, "truncation_cutoff": 8}
    by_name = {n["name"]: n for n in d["networks"]}
    n_buffers = sum(b.numel() for b in Gs.buffers())  # noise maps, w_avg, lod; the pickle has G's lod too
    assert by_name["Gs"]["parameters"] == sum(p.numel() for p in Gs.parameters())
    assert by_name["Gs"]["buffers"] == n_buffers + 1
    assert by_name["D"]["parameters"] == sum(p.numel() for p in D.parameters())
    out = tmp_path / "c.pt"
    main(["convert", str(path), str(out)])
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "stylegan-eval-checkpoint" in text and f"{sum(p.numel() for p in Gs.parameters()):,} parameters" in text
    (tmp_path / "junk.bin").write_bytes(b"junk")
    assert "not a format this program reads" in _error(capsys, ["inspect", str(tmp_path / "junk.bin")])


@pytest.mark.skipif(not (FIXTURE / "network-snapshot.pkl").is_file(), reason="official-stylegan1 fixture absent")
def test_inspect_official_fixture(capsys):
    assert main(["inspect", str(FIXTURE / "network-snapshot.pkl")]) == 0
    text = capsys.readouterr().out
    for line in ("Gs  G_style            35,600 parameters      2,754 buffers",
                 "D   D_basic            35,381 parameters          1 buffers", "truncation_psi     0.7"):
        assert line in text, text


def test_generate_and_ls_take_official_pickles(snapshot, tmp_path, capsys):
    path, *_ = snapshot
    assert main(["generate", "grid", "--ckpt", str(path), "--seeds", "0-3", "--out", str(tmp_path / "g.png"),
                 "--device", "cpu"]) == 0
    assert (tmp_path / "g.png").is_file()
    folder = tmp_path / "classifiers"
    folder.mkdir()
    for i, name in enumerate(["male", "smiling"]):
        D = Discriminator(DiscriminatorConfig(resolution=8, fmap_base=32, fmap_max=8))
        op.randomize(D, 10 + i)
        op.dump(op.discriminator_network(D), folder / f"celebahq-classifier-{i:02d}-{name}.pkl")
    results = tmp_path / "r.jsonl"
    base = ["ls", "--ckpt", str(path), "--classifier", str(folder), "--num-samples", "24", "--device", "cpu"]
    assert main([*base, "--batch", "8", "--results", str(results)]) == 0
    text = capsys.readouterr().out
    assert "male" in text and "smiling" in text and "karras-test-16: 24 samples" in text
    z, w = read_jsonl(results)
    assert z.model == "karras-test-16" and len(z.feature_network.sha256) == 64
    # The value does not depend on the batch size (a multiple of the classifiers' group of 4).
    assert main([*base, "--batch", "12", "--json"]) == 0
    again = {r["metric"]: r["value"] for r in json.loads(capsys.readouterr().out)}
    assert again == {"ls_z": z.value, "ls_w": w.value}
    assert "use a multiple of 4" in _error(capsys, [*base, "--batch", "6"])
    assert "expected one D_basic network" in _error(capsys, ["ls", "--ckpt", str(path), "--classifier", str(path),
                                                              "--num-samples", "8", "--device", "cpu"])


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.path}",)


def test_unsafe_or_truncated_pickles_are_one_line_errors_in_every_command(snapshot, tmp_path, capsys):
    path, G, D, Gs = snapshot
    marker = tmp_path / "marker"
    gs = op.generator_network(Gs)
    gs.variables.append(("payload", _Payload(marker)))
    evil = op.dump((gs, op.discriminator_network(D), gs), tmp_path / "evil.pkl")
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(path.read_bytes()[:2000])
    for args in (["inspect", "{}"], ["convert", "{}", str(tmp_path / "o.pt")],
                 ["generate", "grid", "--ckpt", "{}", "--seeds", "0", "--out", str(tmp_path / "x.png"), "--device", "cpu"],
                 ["ppl", "--ckpt", "{}", "--num-samples", "2", "--device", "cpu"]):
        err = _error(capsys, [a.format(evil) for a in args])
        assert "refused global" in err and "system" in err and "nothing from the file was run" in err
        assert "unreadable (truncated or corrupt)" in _error(capsys, [a.format(cut) for a in args])
    assert not marker.exists()
