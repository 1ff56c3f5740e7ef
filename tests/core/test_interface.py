"""The generator interface: the project's generators honour it, check_generator names the first
mismatch in one line, and generator_from_callable imports a user's factory."""

import pytest
import torch

from stylegan_core import GeneratorInterface, GeneratorInterfaceError, check_generator, generator_from_callable
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset


@pytest.fixture(scope="module")
def G():
    return Generator(get_preset("F-test16").generator, seed=1).eval()


@pytest.mark.parametrize("preset", ["F-test16", "trad-m0-test16"])
def test_project_generators_honour_it(preset):
    G = Generator(get_preset(preset).generator, seed=0).eval()
    assert isinstance(G, GeneratorInterface)
    check_generator(G, probe=True)


class Fake(torch.nn.Module):
    """A minimal non-style generator honouring the interface, to break one piece at a time."""

    def __init__(self, res=8, noise=((4, 4),), map_shape=None, synth_error=None):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.img_resolution, self.img_channels = 4, 4, 2, res, 3
        self.register_buffer("w_avg", torch.zeros(4))
        map_shape, res_ = map_shape, res

        def mapping(z, truncation_psi=1.0, truncation_cutoff=None):
            return torch.zeros(*(map_shape or (z.shape[0], 2, 4)))

        def synthesis(ws, noise_mode="random", noise=None):
            if synth_error:
                raise synth_error
            return torch.zeros(ws.shape[0], 3, res_, res_)

        synthesis.noise_shapes = list(noise)
        self.mapping, self.synthesis = mapping, synthesis

    def forward(self, z, truncation_psi=1.0, truncation_cutoff=None, noise_mode="random", noise=None):
        return self.synthesis(self.mapping(z, truncation_psi, truncation_cutoff), noise_mode, noise)


def test_fake_passes():
    check_generator(Fake(), probe=True)


def _broken(attr, value):
    g = Fake()
    if value is _DELETE:
        delattr(g, attr) if attr != "w_avg" else g._buffers.pop("w_avg")
    else:
        setattr(g, attr, value)
    return g


_DELETE = object()


@pytest.mark.parametrize("attr, value, message", [
    ("z_dim", _DELETE, "it has no attribute z_dim"),
    ("num_ws", 0, r"num_ws must be an int >= 1, got 0"),
    ("img_channels", True, r"img_channels must be an int >= 1, got True"),
    ("img_resolution", 12, "img_resolution must be a power of two, got 12"),
    ("w_avg", _DELETE, r"w_avg must be a tensor of shape \[4\] \(w_dim\), got NoneType"),
    ("w_avg", torch.zeros(1, 4), r"w_avg must be a tensor of shape \[4\] \(w_dim\), got \[1, 4\]"),
    ("mapping", None, "G.mapping must be callable"),
])
def test_structure_mismatches_are_named(attr, value, message):
    g = _broken(attr, value)
    with pytest.raises(GeneratorInterfaceError, match=rf"^mine does not honour the generator interface: {message} "
                                                       r"\(see stylegan_core.GeneratorInterface\)$"):
        check_generator(g, name="mine", probe=False)


def test_noise_shapes_are_required():
    g = Fake()
    del g.synthesis.noise_shapes
    with pytest.raises(GeneratorInterfaceError, match=r"G.synthesis has no noise_shapes"):
        check_generator(g, probe=False)
    g.synthesis.noise_shapes = [(4,)]
    with pytest.raises(GeneratorInterfaceError, match=r"noise_shapes must hold \(h, w\) pairs of ints"):
        check_generator(g, probe=False)


def test_probe_checks_what_the_calls_return():
    check_generator(Fake(map_shape=(2, 3, 4)), probe=False)  # the structure alone cannot see it
    with pytest.raises(GeneratorInterfaceError, match=r"G.mapping\(z \[2, 4\]\) must return ws of shape \[2, 2, 4\], got \[2, 3, 4\]"):
        check_generator(Fake(map_shape=(2, 3, 4)))
    with pytest.raises(GeneratorInterfaceError, match=r"a test call raised RuntimeError: boom \(see"):
        check_generator(Fake(synth_error=RuntimeError("boom\nsecond line")))


def test_probe_checks_image_shape():
    g = Fake()
    g.img_resolution = 16  # claims 16, makes 8
    with pytest.raises(GeneratorInterfaceError, match=r"noise_mode='const'\) must return images of shape \[2, 3, 16, 16\], got \[2, 3, 8, 8\]"):
        check_generator(g)


FACTORY = '''
import torch
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset


def make():
    return Generator(get_preset("F-test16").generator, seed=3)


def not_a_generator():
    return torch.nn.Linear(2, 2)


def fails():
    raise RuntimeError("no weights here")

VALUE = 3
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "user_gens.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "user_gens", raising=False)
    return tmp_path / "user_gens.py"


def test_generator_from_callable(user_module):
    G = generator_from_callable("user_gens:make")
    ref = Generator(get_preset("F-test16").generator, seed=3).eval().requires_grad_(False)  # the same (inference) path
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0))
    assert torch.equal(G(z, noise_mode="const"), ref(z, noise_mode="const"))
    G2 = generator_from_callable(f"{user_module}:make")  # a file path works too
    assert torch.equal(G2(z, noise_mode="const"), ref(z, noise_mode="const"))


@pytest.mark.parametrize("spec, message", [
    ("user_gens", r"--generator must be MODULE:CALLABLE \(e.g. mypkg.models:make_generator\), got 'user_gens'"),
    ("user_gens:", "--generator must be MODULE:CALLABLE"),
    ("no_such_module_xyz:make", r"cannot import no_such_module_xyz \(ModuleNotFoundError: .*\); put its folder on PYTHONPATH"),
    ("missing/file.py:make", r"no such file missing/file.py"),
    ("user_gens:nothing", "user_gens has no callable named nothing"),
    ("user_gens:VALUE", "user_gens has no callable named VALUE"),
    ("user_gens:fails", r"calling fails\(\) raised RuntimeError: no weights here"),
    ("user_gens:not_a_generator", r"the generator from user_gens:not_a_generator does not honour the generator interface: it has no attribute z_dim"),
])
def test_generator_from_callable_errors(user_module, spec, message):
    with pytest.raises(GeneratorInterfaceError, match=message):
        generator_from_callable(spec)
