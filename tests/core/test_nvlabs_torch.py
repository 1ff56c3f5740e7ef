"""NVlabs StyleGAN2-ADA / StyleGAN3 pickles: read as data without running their code, refused
payloads, the one-line refusal without trust, and the trusted adapter's interface contract.
The pickles are built here from stand-ins (tests/core/nvlabs_pickles.py), never NVlabs code."""

import hashlib
import json
import os
import pickle
import sys

import numpy as np
import pytest
import torch

from stylegan_core import check_generator, load_generator
from stylegan_core.errors import CheckpointError, ConfigError
from stylegan_core.formats.description import FileDescription
from stylegan_core.formats.nvlabs_torch import (
    PersistentObject,
    UnsafePickleError,
    UntrustedPickleError,
    describe,
    is_nvlabs_torch_pickle,
    load_nvlabs_generator,
    read_persistence_pickle,
    source_origin,
)
from stylegan_core.sampling import generate_images

from tests.core.nvlabs_pickles import MARKER_ENV, build_pickle, forget_modules


@pytest.fixture
def make(tmp_path, monkeypatch, request):
    """make(**kw) -> Built: a pickle in tmp_path; afterwards $NVLABS_TEST_MARKER names a file that
    appears only if the pickled source runs, and the stand-in modules are out of sys.modules."""
    request.addfinalizer(forget_modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(MARKER_ENV, raising=False)

    def _make(**kw):
        built = build_pickle(tmp_path, **kw)
        forget_modules()  # as in a fresh process: nothing of the stand-ins is imported
        monkeypatch.setenv(MARKER_ENV, str(tmp_path / "marker"))
        return built

    return _make


def ran(built) -> bool:
    return (built.root / "marker").exists()


def _state(obj, *path):
    for name in path:
        obj = obj.state["_modules"][name]
    return obj.state


@pytest.mark.parametrize("protocol", [3, pickle.HIGHEST_PROTOCOL])  # 3: what Python 3.7 wrote for stylegan2-ada
def test_describe_reads_the_file_as_data_and_runs_nothing(make, protocol):
    built = make(protocol=protocol)
    assert is_nvlabs_torch_pickle(built.path)
    info = describe(built.path)
    assert not ran(built) and "torch_utils" not in sys.modules
    assert not any(m.startswith("_imported_module_") for m in sys.modules)
    assert isinstance(info, FileDescription)
    assert info.format == "stylegan2-ada" and info.facts["resolution"] == 16
    assert info.facts["truncation"] == "none stored (metrics use psi = 1)"  # no truncation defaults stored
    assert not any(k.startswith("truncation_") for k in info.facts)
    assert info.sha256 == hashlib.sha256(built.path.read_bytes()).hexdigest()
    assert info.size_bytes == built.path.stat().st_size
    nets = {n.name: n for n in info.networks}
    assert list(nets) == ["G", "D", "G_ema", "augment_pipe"]
    g = nets["G_ema"]
    assert g.kind == "Generator" and "networks.py of NVlabs stylegan2-ada-pytorch" in g.details["module"]
    assert g.parameters == sum(p.numel() for p in built.G.parameters())
    assert g.buffers == sum(b.numel() for b in built.G.buffers())
    assert {k: g.details[k] for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "num_ws")} == \
        {"z_dim": 8, "c_dim": 0, "w_dim": 6, "img_resolution": 16, "img_channels": 3, "num_ws": built.G.num_ws}
    assert g.details["synthesis_kwargs.channels"] == 4  # a dnnlib.EasyDict of kwargs
    assert nets["D"].kind == "Discriminator"
    assert nets["D"].parameters == 3 * 16 * 16 + 1  # its torch.nn.Linear, read as a stand-in record
    assert any("augment_pipe p = 0.2500" in n for n in info.notes)
    assert json.loads(json.dumps(info.to_dict()))["networks"][2]["details"] == g.details  # JSON-able, for --json


def test_read_returns_the_stored_values(make):
    built = make()
    data = read_persistence_pickle(built.path)
    G = data["G_ema"]
    assert isinstance(G, PersistentObject) and G.class_name == "Generator" and "class MappingNetwork" in G.module_src
    assert torch.equal(_state(G, "mapping")["_buffers"]["w_avg"], built.G.mapping.w_avg)
    assert torch.equal(_state(G, "synthesis", "L3")["_buffers"]["noise_const"], built.G.synthesis.L3.noise_const)
    assert isinstance(_state(G, "mapping")["weight_gain"], np.float64)
    assert np.array_equal(_state(G, "synthesis", "L1")["size"], [8, 8])


def test_stylegan3_and_conditional(make):
    info = describe(make(stylegan3=True, c_dim=3).path)
    assert info.format == "stylegan3" and "networks_stylegan3.py" in info.networks[0].details["module"]
    assert any("conditional generator: 3 classes" in n for n in info.notes)


class Payload:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


@pytest.mark.parametrize("func, name", [(os.system, "system"), (eval, "builtins.eval"), (exec, "builtins.exec")])
@pytest.mark.parametrize("where", ["network state", "top level"])
def test_payloads_are_refused_and_do_not_run(make, tmp_path, func, name, where):
    marker = tmp_path / "payload-ran"
    payload = Payload(func, (f"touch {marker}",) if func is os.system else (f"open({str(marker)!r}, 'w')",))
    built = make(plant={"evil": payload}) if where == "network state" else make()
    bad = built.path
    if where == "top level":
        bad = tmp_path / "bad.pkl"
        bad.write_bytes(pickle.dumps(payload))
    with pytest.raises(UnsafePickleError, match=rf"refused: the pickle needs \S*{name}, .*nothing from it was run"):
        describe(bad)
    assert not marker.exists() and not ran(built)


def test_truncated_and_foreign_files_give_one_line(make, tmp_path):
    built = make()
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(built.path.read_bytes()[: built.path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"cut.pkl: unreadable \(truncated or corrupt pickle\)"):
        describe(cut)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"G": 1}))
    with pytest.raises(CheckpointError, match="not an NVlabs network snapshot"):
        describe(plain)
    assert not is_nvlabs_torch_pickle(plain) and not is_nvlabs_torch_pickle(tmp_path)


def test_without_trust_one_line_says_what_it_is_and_how_to_run_it(make):
    built = make()
    for load in (lambda: load_nvlabs_generator(built.path), lambda: load_generator(built.path)):
        with pytest.raises(UntrustedPickleError) as e:
            load()
        msg = str(e.value)
        assert "\n" not in msg and "is a StyleGAN2-ADA PyTorch network pickle (G_ema: Generator 16x16" in msg
        assert "EXECUTES the Python code stored in the file" in msg and "--trust-pickle-code" in msg
        assert "stylegan2-ada-pytorch repository" in msg
    assert not ran(built)


def test_trusted_loading_needs_the_repository(make, monkeypatch):
    built = make()
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(built.root)])
    with pytest.raises(CheckpointError, match="needs the NVlabs stylegan2-ada-pytorch or stylegan3 repository importable"):
        load_nvlabs_generator(built.path, trust_code=True)
    assert not ran(built)


def test_trusted_adapter_honours_the_interface(make):
    built = make()
    G = load_generator(built.path, trust_pickle_code=True)
    assert ran(built)  # control: trusted loading does run the stored source
    check_generator(G, probe=True)
    ref = built.G
    assert (G.z_dim, G.w_dim, G.num_ws, G.img_resolution, G.img_channels) == (8, 6, ref.num_ws, 16, 3)
    assert torch.equal(G.w_avg, ref.mapping.w_avg) and not G.training
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    c = torch.zeros(3, 0)
    ws = G.mapping(z)
    assert ws.shape == (3, ref.num_ws, 6) and torch.allclose(ws, ref.mapping(z, c))
    trunc = G.mapping(z, truncation_psi=0.0, truncation_cutoff=2)
    assert torch.allclose(trunc[:, :2], G.w_avg.expand(3, 2, -1)) and torch.equal(trunc[:, 2:], ws[:, 2:])
    const = G.synthesis(ws, noise_mode="const")
    assert const.shape == (3, 3, 16, 16) and torch.equal(const, G.synthesis(ws, noise_mode="const"))
    assert torch.allclose(const, ref.synthesis(ws, noise_mode="const"))
    assert torch.allclose(G.synthesis(ws, noise_mode="none"), ref.synthesis(ws, noise_mode="none"))
    assert not torch.allclose(const, G.synthesis(ws, noise_mode="none"))
    # "given": the stored maps reproduce "const"; each sample reads only its own maps.
    layers = [getattr(ref.synthesis, f"L{i}") for i in range(len(ref.synthesis.resolutions))]
    assert G.synthesis.noise_shapes == [(layer.resolution,) * 2 for layer in layers]
    stored = [layer.noise_const[None, None] for layer in layers]
    assert torch.allclose(G.synthesis(ws, noise_mode="given", noise=stored), const)
    gen = torch.Generator().manual_seed(5)
    noise = [torch.randn(3, 1, h, w, generator=gen) for h, w in G.synthesis.noise_shapes]
    batch = G.synthesis(ws, noise_mode="given", noise=noise)
    alone = G.synthesis(ws[2:], noise_mode="given", noise=[n[2:] for n in noise])
    assert torch.allclose(batch[2:], alone, atol=1e-6) and not torch.allclose(batch, const)
    assert all(torch.equal(layer.noise_const, s[0, 0]) for layer, s in zip(layers, stored))  # put back
    r1 = G.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(7))
    r2 = G.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(7))
    assert torch.equal(r1, r2) and not torch.allclose(r1, const)
    assert torch.equal(G(z, noise_mode="const"), const)
    with pytest.raises(ValueError, match=r"noise_mode='given' needs a list of 5 tensors"):
        G.synthesis(ws, noise_mode="given", noise=noise[:2])
    # The project's samplers take it as any generator: per-seed images, independent of the batch.
    imgs = generate_images(G, [4, 9], noise_mode="random", batch_size=2)
    assert torch.allclose(imgs[1:], generate_images(G, [9], noise_mode="random"), atol=1e-6)


def test_stylegan3_has_no_noise_inputs(make):
    built = make(stylegan3=True)
    G = load_nvlabs_generator(built.path, trust_code=True)
    ws = G.mapping(torch.randn(2, 8, generator=torch.Generator().manual_seed(0)))
    assert G.synthesis.noise_shapes == []
    none = G.synthesis(ws, noise_mode="none")
    for mode, noise in (("const", None), ("random", None), ("given", [])):
        assert torch.equal(G.synthesis(ws, noise_mode=mode, noise=noise), none)


def test_class_conditioning(make):
    built = make(c_dim=3)
    with pytest.raises(ConfigError, match=r"conditional \(3 classes\): pick one with --class 0..2"):
        load_nvlabs_generator(built.path, trust_code=True)
    with pytest.raises(ConfigError, match="--class 3 does not fit the generator: it has classes 0..2"):
        load_nvlabs_generator(built.path, trust_code=True, class_idx=3)
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(0))
    ws = {k: load_nvlabs_generator(built.path, trust_code=True, class_idx=k).mapping(z) for k in (0, 2)}
    onehot = torch.tensor([[0.0, 0.0, 1.0]]).expand(2, -1)
    assert torch.allclose(ws[2], built.G.mapping(z, onehot)) and not torch.allclose(ws[0], ws[2])


def test_class_for_an_unconditional_model_is_an_error(make):
    built = make()
    with pytest.raises(ConfigError, match="--class 1 does not fit the generator: it is unconditional"):
        load_nvlabs_generator(built.path, trust_code=True, class_idx=1)


@pytest.mark.parametrize("src, fmt, module", [
    ("class SynthesisInput\nfiltered_lrelu\nupdate_emas", "stylegan3", "training/networks_stylegan3.py of NVlabs stylegan3"),
    ("class SynthesisBlock\ndef modulated_conv2d\nupdate_emas", "stylegan2-ada", "training/networks_stylegan2.py of NVlabs stylegan3"),
    ("class SynthesisBlock\ndef modulated_conv2d\nskip_w_avg_update", "stylegan2-ada",
     "training/networks.py of NVlabs stylegan2-ada-pytorch"),
    ("class AugmentPipe", "unknown", "training/augment.py of NVlabs"),
    ("class Mine:\n    pass", "unknown", "unrecognised module, 2 source lines"),
])
def test_source_origin(src, fmt, module):
    assert source_origin(src) == (fmt, module)
