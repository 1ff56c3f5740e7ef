"""`stylegan-eval inspect` on NVlabs StyleGAN2-ADA / StyleGAN3 pickles: what the file is, read as
data; the source stored in the file never runs. (Official TF pickles and project checkpoints:
tests/cli/test_official_models.py.) The pickles are built from stand-ins, never NVlabs code."""

import json
import pickle
import re
import sys

import pytest

from stylegan_eval.cli import main
from stylegan_eval.cli.inspect import LINE_WIDTH

from tests.core.nvlabs_pickles import MARKER_ENV, build_pickle, forget_modules


@pytest.fixture
def make(tmp_path, monkeypatch, request):
    """make(**kw) -> Built, as a fresh process would see it: the stand-in modules are not imported
    and $NVLABS_TEST_MARKER names a file that appears only if the pickled source runs."""
    request.addfinalizer(forget_modules)
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv(MARKER_ENV, raising=False)

    def _make(**kw):
        built = build_pickle(root, **kw)
        forget_modules()
        monkeypatch.setenv(MARKER_ENV, str(root / "marker"))
        return built

    return _make


def _ran(built) -> bool:
    return (built.root / "marker").exists() or "torch_utils" in sys.modules or any(
        m.startswith("_imported_module_") for m in sys.modules)


def test_inspect_a_stylegan2_pickle_runs_nothing(make, capsys):
    built = make(name="ffhq-tiny.pkl")
    assert main(["inspect", str(built.path)]) == 0
    text = capsys.readouterr().out
    assert not _ran(built)
    assert re.search(r"^  format +stylegan2-ada$", text, re.M), text
    assert re.search(r"^  resolution +16$", text, re.M) and re.search(r"^  truncation +none stored", text, re.M)
    g_params = sum(p.numel() for p in built.G.parameters())
    g_buffers = sum(b.numel() for b in built.G.buffers())
    for name, kind, params, buffers in (("G", "Generator", g_params, g_buffers),
                                        ("D", "Discriminator", 3 * 16 * 16 + 1, 0),
                                        ("G_ema", "Generator", g_params, g_buffers),
                                        ("augment_pipe", "AugmentPipe", 0, 1)):
        line = rf"^    {name} +{kind} +{params:,} parameters +{buffers:,} buffers"
        assert re.search(line, text, re.M), (line, text)
    assert "module training/networks.py of NVlabs stylegan2-ada-pytorch" in text
    assert "z_dim 8" in text and "img_resolution 16" in text and "synthesis_kwargs.channels 4" in text
    assert "note: augment_pipe p = 0.2500" in text and "--trust-pickle-code" in text
    # the generators' many constructor arguments wrap instead of making one very long line
    assert max(len(line) for line in text.splitlines()[1:] if not line.startswith("  note:")) <= LINE_WIDTH


def test_inspect_json_of_a_conditional_stylegan3_pickle(make, capsys):
    built = make(stylegan3=True, c_dim=3)
    assert main(["inspect", str(built.path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert not _ran(built)
    assert d["format"] == "stylegan3" and d["facts"]["resolution"] == 16 and len(d["sha256"]) == 64
    g = {n["name"]: n for n in d["networks"]}["G_ema"]
    assert g["kind"] == "Generator" and g["parameters"] == sum(p.numel() for p in built.G.parameters())
    assert g["details"]["c_dim"] == 3 and "networks_stylegan3.py" in g["details"]["module"]
    assert any("conditional generator: 3 classes" in n for n in d["notes"])


class Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w')",))


def test_inspect_refuses_a_payload_in_one_line(make, tmp_path, capsys):
    marker = tmp_path / "payload-ran"
    built = make(plant={"evil": Payload(str(marker))})
    assert main(["inspect", str(built.path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "refused: the pickle needs builtins.exec" in err, err
    assert not marker.exists() and not _ran(built)


def test_other_pickles_are_not_a_format_it_reads(tmp_path, capsys):
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"G": 1}))
    assert main(["inspect", str(plain)]) == 2
    err = capsys.readouterr().err
    assert "not a format this program reads" in err and "StyleGAN2-ADA / StyleGAN3 pickle" in err
