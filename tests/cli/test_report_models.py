"""`stylegan-eval report` with model files: a project checkpoint, an official StyleGAN pickle
(read as data) and an NVlabs pickle (only with --trust-pickle-code) each get their inspect facts
and sample figures, beside the table rows of the records measured from them."""

import re
import sys

import pytest
import torch

from stylegan_core import sampling as S
from stylegan_core.checkpoint import save_generator, snapshot_path
from stylegan_core.formats.identify import describe_model_file
from stylegan_core.formats.official_tf import file_sha256
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_eval.cli import main
from stylegan_eval.cli.inspect import render
from stylegan_eval.records import append_jsonl
from tests import official_pickles as op
from tests.cli.test_official_models import _nets, _Payload
from tests.core.nvlabs_pickles import MARKER_ENV, build_pickle, forget_modules
from tests.eval.test_report import full_set, write_results


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    ckpt = save_generator(snapshot_path(d / "run", 1000), Generator(get_preset("F-test16").generator), preset="F-test16")
    G, D, Gs = _nets()
    pkl = op.dump((op.generator_network(G, "G"), op.discriminator_network(D), op.generator_network(Gs)), d / "karras-16.pkl")
    return ckpt, pkl, Gs


def _section(md: str, name: str) -> str:
    """The Markdown of one model file's section (up to the next heading of that level or above)."""
    start = md.index(f"### {name}\n")
    nxt = re.search(r"^#{1,3} ", md[start + 4:], re.M)
    return md[start: start + 4 + nxt.start()] if nxt else md[start:]


def test_report_shows_facts_and_samples_of_each_model_file(models, tmp_path, capsys):
    ckpt, pkl, Gs = models
    results = write_results(tmp_path / "results.jsonl")
    for r in full_set("ffhq-official", None, 40.0, 20.0, 10.0, 5.0, 70.0, file_sha256(pkl)):
        append_jsonl(results, r)
    out = tmp_path / "rep"
    assert main(["report", str(results), str(ckpt), str(pkl), "--out", str(out), "--device", "cpu", "--no-published"]) == 0
    line = capsys.readouterr().out
    assert "21 records, 3 models, 2 model files" in line
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert "## Model files" in md and "<h2>Model files</h2>" in page

    official = _section(md, str(pkl).replace("_", "\\_"))
    # The official file's section: the row measured from it, then exactly what `inspect` prints.
    assert "measured as table row(s): ffhq-official\n" in official
    facts = render(describe_model_file(pkl))
    assert f"```text\n{facts}\n```" in official
    assert "nvlabs-stylegan1-tf" in facts and file_sha256(pkl) in facts and "resolution" in facts
    assert file_sha256(pkl) in page and "nvlabs-stylegan1-tf" in page
    # Its sample grid is the official Gs's own (seeds 0-31, no truncation), copied into figures/.
    grid = out / "figures" / "model_1_0_model1_samples.png"
    assert f"![karras-16.pkl: uncurated samples (seeds 0-31, no truncation)](figures/{grid.name})" in official
    ref = S.save_image_grid(S.generate_images(Gs.eval(), range(32), truncation_psi=1.0), tmp_path / "ref.png", cols=8)
    assert grid.read_bytes() == ref.read_bytes()
    assert "style mixing" in official  # a style-based generator gets the mixing figure
    assert page.count("data:image/png;base64,") >= 8

    project = _section(md, str(ckpt).replace("_", "\\_"))
    assert "no result record was measured from this file" in project
    assert "stylegan-eval-checkpoint" in project and file_sha256(ckpt) in project
    assert (out / "figures" / "model_0_0_model0_samples.png").is_file()


def test_report_of_a_model_file_alone(models, tmp_path, capsys):
    ckpt, _, _ = models
    out = tmp_path / "rep"
    assert main(["report", str(ckpt), "--out", str(out), "--device", "cpu"]) == 0
    assert "0 records, 0 models, 1 model files" in capsys.readouterr().out
    md = (out / "report.md").read_text()
    assert "## Model files" in md and "model\\_0\\_0\\_model0\\_samples.png" not in md
    assert "(figures/model_0_0_model0_samples.png)" in md


def test_planted_or_torn_official_pickle_is_one_line_and_nothing_runs(models, tmp_path, capsys):
    _, pkl, _ = models
    G, D, Gs = _nets()
    marker = tmp_path / "marker"
    gs = op.generator_network(Gs)
    gs.variables.append(("payload", _Payload(marker)))
    evil = op.dump((gs, op.discriminator_network(D), gs), tmp_path / "evil.pkl")
    torn = tmp_path / "torn.pkl"
    torn.write_bytes(pkl.read_bytes()[:2000])
    results = write_results(tmp_path / "results.jsonl")
    for bad, says in ((evil, "refused global"), (torn, "unreadable (truncated or corrupt)")):
        assert main(["report", str(results), str(bad), "--out", str(tmp_path / "rep"), "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and says in err and str(bad) in err, err
    assert not marker.exists() and not (tmp_path / "rep").exists()


@pytest.fixture
def make(tmp_path, monkeypatch, request):
    """An NVlabs-style pickle whose source, if it ever ran, would write $NVLABS_TEST_MARKER."""
    request.addfinalizer(forget_modules)
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))

    def _make(**kw):
        built = build_pickle(root, **kw)
        forget_modules()
        monkeypatch.setenv(MARKER_ENV, str(root / "marker"))
        return built

    return _make


def test_nvlabs_pickle_needs_the_flag_and_nothing_runs(make, tmp_path, capsys):
    built = make(name="ffhq-tiny.pkl")
    results = write_results(tmp_path / "results.jsonl")
    out = tmp_path / "rep"
    assert main(["report", str(results), str(built.path), "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--trust-pickle-code" in err, err
    assert err.startswith("stylegan-eval report: error: ")
    assert not (built.root / "marker").exists() and "torch_utils" not in sys.modules
    assert not out.exists()


def test_nvlabs_pickle_with_the_flag_gets_samples(make, tmp_path, capsys):
    built = make(name="ffhq-tiny.pkl")
    out = tmp_path / "rep"
    assert main(["report", str(built.path), "--out", str(out), "--device", "cpu", "--trust-pickle-code"]) == 0
    md = (out / "report.md").read_text()
    assert "ffhq-tiny.pkl: uncurated samples" in md and file_sha256(built.path) in md
    assert (built.root / "marker").exists()  # the flag did run the file's code, as documented


def test_help_documents_model_files(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "checkpoint_sha256 is the file's SHA-256" in text and "--trust-pickle-code" in text
    assert "karras2019stylegan-ffhq-1024x1024.pkl --out" in text
