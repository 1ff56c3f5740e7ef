"""Hostile and careless input, one test per class of fault: every failure is one line on stderr
with exit status 2 (never a traceback), outputs are checked before any work, nothing a user did
not ask for is replaced, and a value that was measured is printed before anything can fail."""

import errno
import json
import os
import re
import tempfile

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_core.checkpoint import load_generator, save_checkpoint, save_generator, snapshot_path
from stylegan_core.errors import CheckpointError
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.synthetic import synthesize_dataset
from stylegan_eval.classifier import build_classifier, classifier_config, save_classifier
from stylegan_eval.cli import main
from stylegan_eval.records import FeatureNetwork, ResultRecord, append_jsonl, read_jsonl

from tests.eval.test_report import write_results


PROGRESS_BAR = re.compile(r"\d+%\|.*\|")


def shown_lines(stream: str) -> list[str]:
    """Non-empty lines as a terminal shows them, without progress bars (a bar cleared with \r is
    gone; one stopped by the error stays on screen but says nothing about it)."""
    lines = (line.rsplit("\r", 1)[-1].strip() for line in stream.split("\n"))
    return [s for s in lines if s and not PROGRESS_BAR.search(s)]


def run_cli(capsys, argv) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of one in-process CLI call; argparse's SystemExit included."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(capsys, argv) -> str:
    code, _, err = run_cli(capsys, argv)
    lines = shown_lines(err)
    assert "Traceback" not in err, err
    assert code == 2, (code, err)
    assert len(lines) == 1 and "error:" in lines[0] and lines[0].startswith("stylegan-eval"), err
    return lines[0]


@pytest.fixture(scope="module")
def f(tmp_path_factory):
    """Files a careless user might pass: a real checkpoint, classifier, dataset and results file,
    and a missing path, a folder, a binary file and a path below a file (NotADirectory)."""
    d = tmp_path_factory.mktemp("hostile")
    ns = type("Files", (), {})()
    ns.d = d
    ns.ckpt = save_generator(snapshot_path(d / "run", 1000), Generator(get_preset("F-test16").generator), "F-test16")
    ns.clf = save_classifier(d / "clf.pt", build_classifier(classifier_config(["Smiling", "Hat"], 8, fmap_base=64, fmap_max=16), 0))
    ns.data = synthesize_dataset(d / "synth16", 8, 16, seed=0)
    ns.results = write_results(d / "results.jsonl")
    ns.missing = d / "missing.pt"
    ns.folder = d / "a-folder"
    ns.folder.mkdir()
    ns.garbage = d / "garbage.bin"
    ns.garbage.write_bytes(bytes(range(256)) * 64)
    ns.afile = d / "a-file"
    ns.afile.write_text("I am a file, not a folder\n")
    ns.under_file = ns.afile / "out"  # writing here raises NotADirectoryError
    ns.pkl = official_pickle(d / "karras-test-16.pkl")  # an official StyleGAN (TF) pickle, for convert
    ns.torn_pkl = d / "torn.pkl"  # the same, cut short (an interrupted download)
    ns.torn_pkl.write_bytes(ns.pkl.read_bytes()[: ns.pkl.stat().st_size // 2])
    return ns


def official_pickle(path):
    from tests import official_pickles as op
    from tests.cli.test_official_models import _nets

    G, D, Gs = _nets()
    return op.dump((op.generator_network(G, "G"), op.discriminator_network(D), op.generator_network(Gs)), path)


GEN = ["generate", "grid", "--device", "cpu"]
PPL = ["ppl", "--num-samples", "4", "--no-crop", "--device", "cpu"]
LS = ["ls", "--num-samples", "8", "--device", "cpu"]
FID = ["fid", "--num-gen", "4", "--num-real", "4", "--device", "cpu"]
TRAIN = ["train", "--preset", "F-test16", "--kimg", "0.01", "--no-progress", "--device", "cpu"]
CLF = ["classifier", "train", "--kimg", "0.01", "--device", "cpu"]
DIS = ["disentanglement", "--num-samples", "8", "--device", "cpu"]
MEAS = ["measure", "--num-samples", "8", "--device", "cpu"]

# (bad-input class, argv builder). Each must end in one line and exit 2, whatever the command.
SCAN = {
    # a missing file
    "generate/missing-ckpt": lambda f: [*GEN, "--ckpt", f.missing, "--out", f.d / "g.png"],
    "ppl/missing-ckpt": lambda f: [*PPL, "--ckpt", f.missing],
    "ls/missing-classifier": lambda f: [*LS, "--ckpt", f.ckpt, "--classifier", f.missing],
    "fid/missing-ckpt": lambda f: [*FID, "--ckpt", f.missing, "--data", f.data],
    "classifier-info/missing": lambda f: ["classifier", "info", f.missing],
    "classifier-train/missing-data": lambda f: [*CLF, "--data", f.missing, "--out", f.d / "c.pt"],
    "data-info/missing": lambda f: ["data", "info", f.missing],
    "train/missing-data": lambda f: [*TRAIN, "--data", f.missing, "--out", f.d / "run-missing"],
    "train/resume-missing-run": lambda f: ["train", "--resume", "--out", f.d / "no-run", "--device", "cpu"],
    "report/missing": lambda f: ["report", f.missing, "--out", f.d / "rep-missing"],
    "disentanglement/missing-ckpt": lambda f: [*DIS, "--ckpt", f.missing, "--classifier", f.clf],
    "disentanglement/missing-classifier": lambda f: [*DIS, "--ckpt", f.ckpt, "--classifier", f.missing],
    "disentanglement/missing-generator-module": lambda f: [*DIS, "--generator", "no_such_module_x:make", "--classifier", f.clf],
    "measure/missing-ckpt": lambda f: [*MEAS, "--ckpt", f.missing, "--metrics", "ls", "--classifier", f.clf],
    "measure/missing-classifier": lambda f: [*MEAS, "--ckpt", f.ckpt, "--metrics", "ls,dci", "--classifier", f.missing],
    "measure/missing-generator-module": lambda f: [*MEAS, "--generator", "no_such_module_x:make", "--metrics", "mig",
                                                   "--classifier", f.clf],
    "inspect/missing": lambda f: ["inspect", f.missing],
    "convert/missing": lambda f: ["convert", f.missing, f.d / "c.pt"],
    # a folder where a file is expected
    "generate/folder-ckpt": lambda f: [*GEN, "--ckpt", f.folder, "--out", f.d / "g.png"],
    "generate/folder-out": lambda f: [*GEN, "--ckpt", f.ckpt, "--out", f.folder],
    "ls/folder-classifier": lambda f: [*LS, "--ckpt", f.ckpt, "--classifier", f.folder],
    "classifier-info/folder": lambda f: ["classifier", "info", f.folder],
    "disentanglement/folder-classifier": lambda f: [*DIS, "--ckpt", f.ckpt, "--classifier", f.folder],
    "disentanglement/folder-results": lambda f: [*DIS, "--ckpt", f.ckpt, "--classifier", f.clf, "--results", f.folder],
    "measure/folder-results": lambda f: [*MEAS, "--ckpt", f.ckpt, "--metrics", "sap", "--classifier", f.clf,
                                         "--results", f.folder],
    "inspect/folder": lambda f: ["inspect", f.folder],
    "convert/folder-in": lambda f: ["convert", f.folder, f.d / "c.pt"],
    "convert/folder-out": lambda f: ["convert", f.pkl, f.folder],
    "classifier-train/folder-out": lambda f: [*CLF, "--data", f.data, "--out", f.folder],
    "ppl/folder-save-dists": lambda f: [*PPL, "--ckpt", f.ckpt, "--save-dists", f.folder],
    "ppl/folder-results": lambda f: [*PPL, "--ckpt", f.ckpt, "--results", f.folder],
    "data-info/folder-attributes": lambda f: ["data", "info", f.data, "--attributes", f.folder],
    "train/folder-attributes": lambda f: [*TRAIN, "--data", f.data, "--attributes", f.folder, "--out", f.d / "run-a"],
    # binary garbage
    "generate/garbage-ckpt": lambda f: [*GEN, "--ckpt", f.garbage, "--out", f.d / "g.png"],
    "ls/garbage-classifier": lambda f: [*LS, "--ckpt", f.ckpt, "--classifier", f.garbage],
    "disentanglement/garbage-ckpt": lambda f: [*DIS, "--ckpt", f.garbage, "--classifier", f.clf],
    "disentanglement/garbage-classifier": lambda f: [*DIS, "--ckpt", f.ckpt, "--classifier", f.garbage],
    "disentanglement/garbage-results": lambda f: [*DIS, "--ckpt", f.ckpt, "--classifier", f.clf, "--results", f.garbage],
    "measure/garbage-ckpt": lambda f: [*MEAS, "--ckpt", f.garbage, "--metrics", "ls", "--classifier", f.clf],
    "measure/garbage-classifier": lambda f: [*MEAS, "--ckpt", f.ckpt, "--metrics", "dci", "--classifier", f.garbage],
    "measure/garbage-results": lambda f: [*MEAS, "--ckpt", f.ckpt, "--metrics", "mig", "--classifier", f.clf,
                                          "--results", f.garbage],
    "measure/garbage-data": lambda f: [*MEAS, "--ckpt", f.ckpt, "--metrics", "fid50k", "--data", f.garbage,
                                       "--substitute-weights"],
    "inspect/garbage": lambda f: ["inspect", f.garbage],
    "convert/garbage": lambda f: ["convert", f.garbage, f.d / "c.pt"],
    "classifier-info/garbage": lambda f: ["classifier", "info", f.garbage],
    "report/garbage": lambda f: ["report", f.garbage, "--out", f.d / "rep-garbage"],
    "report/garbage-out": lambda f: ["report", f.results, "--out", f.garbage],
    "data-info/garbage": lambda f: ["data", "info", f.garbage],
    "data-info/garbage-attributes": lambda f: ["data", "info", f.data, "--attributes", f.garbage],
    "ppl/garbage-results": lambda f: [*PPL, "--ckpt", f.ckpt, "--results", f.garbage],
    "ls/garbage-results": lambda f: [*LS, "--ckpt", f.ckpt, "--classifier", f.clf, "--results", f.garbage],
    "fid/garbage-data": lambda f: [*FID, "--gen-folder", f.data, "--data", f.garbage, "--substitute-weights"],
    # an output below a file (what a read-only or mistyped location looks like to the writer)
    "generate/out-under-file": lambda f: [*GEN, "--ckpt", f.ckpt, "--out", f.under_file / "g.png"],
    "generate-images/out-under-file": lambda f: ["generate", "images", "--ckpt", f.ckpt, "--out", f.under_file],
    "ppl/save-dists-under-file": lambda f: [*PPL, "--ckpt", f.ckpt, "--save-dists", f.under_file / "d.npy"],
    "ppl/results-under-file": lambda f: [*PPL, "--ckpt", f.ckpt, "--results", f.under_file / "r.jsonl"],
    "ls/results-under-file": lambda f: [*LS, "--ckpt", f.ckpt, "--classifier", f.clf, "--results", f.under_file],
    "fid/results-under-file": lambda f: [*FID, "--ckpt", f.ckpt, "--data", f.data, "--results", f.under_file],
    "disentanglement/results-under-file": lambda f: [*DIS, "--ckpt", f.ckpt, "--classifier", f.clf, "--results",
                                                     f.under_file / "r.jsonl"],
    "measure/results-under-file": lambda f: [*MEAS, "--ckpt", f.ckpt, "--metrics", "ls", "--classifier", f.clf,
                                             "--results", f.under_file / "r.jsonl"],
    "convert/out-under-file": lambda f: ["convert", f.pkl, f.under_file / "c.pt"],
    "classifier-train/out-under-file": lambda f: [*CLF, "--data", f.data, "--out", f.under_file / "c.pt"],
    "data-synth/out-under-file": lambda f: ["data", "synth", "--out", f.under_file, "--num", "2", "--resolution", "16"],
    "data-synth/out-is-file": lambda f: ["data", "synth", "--out", f.afile, "--num", "2", "--resolution", "16"],
    "train/out-under-file": lambda f: [*TRAIN, "--data", f.data, "--out", f.under_file],
    "report/out-under-file": lambda f: ["report", f.results, "--out", f.under_file],
    "report/model-out-under-file": lambda f: ["report", f.results, f.pkl, "--out", f.under_file],
    "report/torn-model-pickle": lambda f: ["report", f.results, f.torn_pkl, "--out", f.d / "rep-torn"],
    "report/model-unknown-device": lambda f: ["report", f.pkl, "--out", f.d / "rep-dev", "--device", "tpu"],
    "demo/out-under-file": lambda f: ["demo", "--tiny", "--out", f.under_file],
    "demo/out-is-file": lambda f: ["demo", "--tiny", "--out", f.afile],
    # negative and huge numbers
    "generate/negative-seed": lambda f: [*GEN, "--ckpt", f.ckpt, "--out", f.d / "g.png", "--seeds", "-1"],
    "generate/huge-seed-range": lambda f: [*GEN, "--ckpt", f.ckpt, "--out", f.d / "g.png", "--seeds", "0-999999999"],
    "generate/seed-past-2**32": lambda f: [*GEN, "--ckpt", f.ckpt, "--out", f.d / "g.png", "--seeds", "4294967296"],
    "generate/reversed-range": lambda f: [*GEN, "--ckpt", f.ckpt, "--out", f.d / "g.png", "--seeds", "9-3"],
    "generate/zero-batch": lambda f: [*GEN, "--ckpt", f.ckpt, "--out", f.d / "g.png", "--batch-size", "0"],
    "generate/zero-cols": lambda f: [*GEN, "--ckpt", f.ckpt, "--out", f.d / "g.png", "--cols", "0"],
    "generate-interp/one-step": lambda f: ["generate", "interp", "--ckpt", f.ckpt, "--out", f.d / "i.png", "--steps", "1"],
    "ppl/negative-seed": lambda f: [*PPL, "--ckpt", f.ckpt, "--seed", "-1"],
    "ppl/huge-seed": lambda f: [*PPL, "--ckpt", f.ckpt, "--seed", "99999999999999999999"],
    "ppl/negative-samples": lambda f: [*PPL, "--ckpt", f.ckpt, "--num-samples", "-5"],
    "ppl/zero-batch": lambda f: [*PPL, "--ckpt", f.ckpt, "--batch", "0"],
    "ls/negative-seed": lambda f: [*LS, "--ckpt", f.ckpt, "--classifier", f.clf, "--seed", "-3"],
    "ls/zero-jobs": lambda f: [*LS, "--ckpt", f.ckpt, "--classifier", f.clf, "--jobs", "0"],
    "fid/negative-seed": lambda f: [*FID, "--ckpt", f.ckpt, "--data", f.data, "--seed", "-1"],
    "fid/one-sample": lambda f: [*FID, "--ckpt", f.ckpt, "--data", f.data, "--num-gen", "1"],
    "disentanglement/negative-seed": lambda f: [*DIS, "--ckpt", f.ckpt, "--classifier", f.clf, "--seed", "-1"],
    "disentanglement/huge-seed": lambda f: [*DIS, "--ckpt", f.ckpt, "--classifier", f.clf, "--seed", "4294967296"],
    "disentanglement/negative-samples": lambda f: [*DIS, "--ckpt", f.ckpt, "--classifier", f.clf, "--num-samples", "-5"],
    "disentanglement/too-few-samples": lambda f: [*DIS, "--ckpt", f.ckpt, "--classifier", f.clf, "--num-samples", "3"],
    "disentanglement/zero-batch": lambda f: [*DIS, "--ckpt", f.ckpt, "--classifier", f.clf, "--batch", "0"],
    "disentanglement/zero-jobs": lambda f: [*DIS, "--ckpt", f.ckpt, "--classifier", f.clf, "--jobs", "0"],
    "disentanglement/unknown-space": lambda f: [*DIS, "--ckpt", f.ckpt, "--classifier", f.clf, "--spaces", "z,q"],
    "measure/negative-seed": lambda f: [*MEAS, "--ckpt", f.ckpt, "--metrics", "ls", "--classifier", f.clf, "--seed", "-1"],
    "measure/one-sample": lambda f: [*MEAS[:-4], "--ckpt", f.ckpt, "--metrics", "ls", "--classifier", f.clf,
                                     "--num-samples", "1", "--device", "cpu"],
    "measure/too-few-for-dci": lambda f: [*MEAS[:-4], "--ckpt", f.ckpt, "--metrics", "dci", "--classifier", f.clf,
                                          "--num-samples", "3", "--device", "cpu"],
    "measure/zero-batch": lambda f: [*MEAS, "--ckpt", f.ckpt, "--metrics", "ls", "--classifier", f.clf, "--batch", "0"],
    "measure/zero-jobs": lambda f: [*MEAS, "--ckpt", f.ckpt, "--metrics", "sap", "--classifier", f.clf, "--jobs", "0"],
    "measure/unknown-metric": lambda f: [*MEAS, "--ckpt", f.ckpt, "--metrics", "dci,beta_vae", "--classifier", f.clf],
    "measure/unknown-space": lambda f: [*MEAS, "--ckpt", f.ckpt, "--metrics", "mig", "--classifier", f.clf,
                                        "--spaces", "z,q"],
    "measure/ls-without-z-or-w": lambda f: [*MEAS, "--ckpt", f.ckpt, "--metrics", "ls", "--classifier", f.clf,
                                            "--spaces", "s"],
    "measure/dci-and-dci_lasso": lambda f: [*MEAS, "--ckpt", f.ckpt, "--metrics", "dci,dci_lasso", "--classifier", f.clf],
    "measure/no-classifier": lambda f: [*MEAS, "--ckpt", f.ckpt, "--metrics", "mig"],
    "train/negative-seed": lambda f: [*TRAIN, "--data", f.data, "--out", f.d / "run-s", "--seed", "-1"],
    "train/zero-minibatch": lambda f: [*TRAIN, "--data", f.data, "--out", f.d / "run-m", "--minibatch", "0"],
    "data-synth/negative-num": lambda f: ["data", "synth", "--out", f.d / "s", "--num", "-3"],
    "data-synth/negative-seed": lambda f: ["data", "synth", "--out", f.d / "s", "--seed", "-1"],
    "classifier-train/negative-seed": lambda f: [*CLF, "--data", f.data, "--out", f.d / "c.pt", "--seed", "-1"],
    "classifier-train/negative-kimg": lambda f: [*CLF, "--data", f.data, "--out", f.d / "c.pt", "--kimg", "-1"],
    "demo/negative-minutes": lambda f: ["demo", "--out", f.d / "demo", "--minutes", "-1"],
    "demo/negative-seed": lambda f: ["demo", "--out", f.d / "demo", "--seed", "-1"],
    # nan and inf
    "generate-truncation/nan-psi": lambda f: ["generate", "truncation", "--ckpt", f.ckpt, "--out", f.d / "t.png",
                                              "--psis", "1,nan"],
    "generate/nan-truncation-psi": lambda f: [*GEN, "--ckpt", f.ckpt, "--out", f.d / "g.png", "--truncation-psi", "nan"],
    "ppl/nan-epsilon": lambda f: [*PPL, "--ckpt", f.ckpt, "--epsilon", "nan"],
    "fid/inf-truncation": lambda f: [*FID, "--ckpt", f.ckpt, "--data", f.data, "--truncation", "inf"],
    "train/nan-kimg": lambda f: [*TRAIN, "--data", f.data, "--out", f.d / "run-n", "--kimg", "nan"],
    "train/inf-lrate": lambda f: [*TRAIN, "--data", f.data, "--out", f.d / "run-l", "--lrate", "inf"],
    "classifier-train/nan-lr": lambda f: [*CLF, "--data", f.data, "--out", f.d / "c.pt", "--lr", "nan"],
    "demo/nan-minutes": lambda f: ["demo", "--out", f.d / "demo", "--minutes", "nan"],
    # devices this machine does not have
    "generate/unknown-device": lambda f: ["generate", "grid", "--ckpt", f.ckpt, "--out", f.d / "g.png", "--device", "tpu"],
    "ppl/garbled-device": lambda f: [*PPL[:-2], "--ckpt", f.ckpt, "--device", "cuda:x"],
    "train/unknown-device": lambda f: [*TRAIN[:-2], "--data", f.data, "--out", f.d / "run-d", "--device", "gpu"],
    "demo/unknown-device": lambda f: ["demo", "--out", f.d / "demo", "--device", "banana"],
    "disentanglement/unknown-device": lambda f: [*DIS[:-2], "--ckpt", f.ckpt, "--classifier", f.clf, "--device", "tpu"],
    "measure/garbled-device": lambda f: [*MEAS[:-2], "--ckpt", f.ckpt, "--metrics", "ls", "--classifier", f.clf,
                                         "--device", "cuda:x"],
    # an existing output without --overwrite
    "convert/existing-out": lambda f: ["convert", f.pkl, f.afile],
}


@pytest.mark.parametrize("case", sorted(SCAN))
def test_scan_every_command_with_bad_input_prints_one_line(f, case, capsys, torch_home):
    line = one_line_error(capsys, SCAN[case](f))
    assert len(line) < 400, line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
@pytest.mark.parametrize("command", [GEN[:2], ["ppl"], ["ls"], ["fid"], ["train"], ["demo"], ["classifier", "train"],
                                     ["disentanglement"], ["measure"]])
def test_cuda_without_a_gpu_is_refused_while_parsing(command, capsys):
    # The option's own type refuses it, before anything is loaded (even before missing options are named).
    line = one_line_error(capsys, [*command, "--device", "cuda"])
    assert "argument --device: cuda: no CUDA GPU is available to this PyTorch; use --device cpu (or auto)" in line


def test_huge_seed_range_says_why(f, capsys):
    line = one_line_error(capsys, SCAN["generate/huge-seed-range"](f))
    assert "1,000,000,000 seeds" in line and "at most 4,096" in line and "held in memory" in line


# ------------------------------------------------------------------------------------------------
# Outputs: checked before the work, existing files refused without --overwrite
# ------------------------------------------------------------------------------------------------
READ_ONLY_CASES = {
    "generate": lambda f, out: [*GEN, "--ckpt", f.ckpt, "--out", out / "g.png"],
    "ppl-save-dists": lambda f, out: [*PPL, "--ckpt", f.ckpt, "--save-dists", out / "d.npy"],
    "ppl-results": lambda f, out: [*PPL, "--ckpt", f.ckpt, "--results", out / "r.jsonl"],
    "ls-results": lambda f, out: [*LS, "--ckpt", f.ckpt, "--classifier", f.clf, "--results", out / "r.jsonl"],
    "fid-results": lambda f, out: [*FID, "--ckpt", f.ckpt, "--data", f.data, "--results", out / "r.jsonl"],
    "disentanglement-results": lambda f, out: [*DIS, "--ckpt", f.ckpt, "--classifier", f.clf, "--results", out / "r.jsonl"],
    "measure-results": lambda f, out: [*MEAS, "--ckpt", f.ckpt, "--metrics", "ls,mig", "--classifier", f.clf,
                                       "--results", out / "r.jsonl"],
    "convert": lambda f, out: ["convert", f.pkl, out / "c.pt"],
    "classifier": lambda f, out: [*CLF, "--data", f.data, "--out", out / "c.pt"],
    "data-synth": lambda f, out: ["data", "synth", "--out", out / "ds", "--num", "2", "--resolution", "16"],
    "train": lambda f, out: [*TRAIN, "--data", f.data, "--out", out / "run"],
    "report": lambda f, out: ["report", f.results, "--out", out / "rep"],
    "report-model": lambda f, out: ["report", f.results, f.pkl, f.ckpt, "--out", out / "rep"],
    "demo": lambda f, out: ["demo", "--tiny", "--out", out / "demo"],
}


@pytest.mark.parametrize("err", [errno.EROFS, errno.ENOSPC, errno.EACCES])
@pytest.mark.parametrize("case", sorted(READ_ONLY_CASES))
def test_unwritable_outputs_are_refused_before_any_work(f, case, err, tmp_path, capsys, monkeypatch):
    """Tests run as root, where chmod does not stop a write: the file system's answer is
    simulated instead, and every entry point into the work is a tripwire."""
    real_mkstemp = tempfile.mkstemp

    def refuse(*args, dir=None, **kw):
        if dir is not None and str(dir).startswith(str(tmp_path)):
            raise OSError(err, os.strerror(err), os.path.join(str(dir), "x"))
        return real_mkstemp(*args, dir=dir, **kw)

    def tripwire(*args, **kw):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    for target in ("stylegan_core.checkpoint.load_generator", "stylegan_core.checkpoint.checkpoint_info",
                   "stylegan_core.data.open_dataset", "stylegan_core.synthetic.synthesize_dataset",
                   "stylegan_eval.demo.run_demo", "stylegan_eval.report.load_inputs",
                   "stylegan_core.formats.identify.describe_model_file",
                   "stylegan_core.formats.official_tf_networks.convert_official"):
        monkeypatch.setattr(target, tripwire)
    line = one_line_error(capsys, READ_ONLY_CASES[case](f, tmp_path / "out"))
    assert str(tmp_path / "out") in line and os.strerror(err).split()[0].lower() in line.lower() or "quota" in line


@pytest.mark.parametrize("case", ["grid", "truncation", "images", "save-dists", "classifier"])
def test_existing_output_files_need_overwrite(f, case, tmp_path, capsys):
    existing = tmp_path / ("seed0003.png" if case == "images" else "old.bin")
    existing.write_bytes(b"precious")
    argv = {
        "grid": [*GEN, "--ckpt", f.ckpt, "--out", tmp_path / "old.png", "--seeds", "0-3"],
        "truncation": ["generate", "truncation", "--ckpt", f.ckpt, "--out", tmp_path / "old.png", "--seeds", "0"],
        "images": ["generate", "images", "--ckpt", f.ckpt, "--out", tmp_path, "--seeds", "2-3"],
        "save-dists": [*PPL, "--ckpt", f.ckpt, "--save-dists", existing],
        "classifier": [*CLF, "--data", f.data, "--out", existing],
    }[case]
    if case in ("grid", "truncation"):
        existing = existing.rename(tmp_path / "old.png")
    line = one_line_error(capsys, argv)
    assert "exists; pass --overwrite" in line and existing.read_bytes() == b"precious"
    if case in ("grid", "truncation", "images"):  # and with --overwrite it is replaced
        code, _, err = run_cli(capsys, [*argv, "--overwrite"])
        assert code == 0, err
        assert Image.open(existing).format == "PNG"


def test_results_are_appended_only_to_results_files(f, tmp_path, capsys):
    stats = tmp_path / "stats.jsonl"
    stats.write_text(json.dumps({"nimg": 0, "loss_G": 1.0}) + "\n")
    line = one_line_error(capsys, [*LS, "--ckpt", f.ckpt, "--classifier", f.clf, "--results", stats])
    assert "is not a results file" in line and stats.read_text().count("\n") == 1


def test_the_value_is_printed_before_a_full_disk_loses_the_results_line(f, tmp_path, capsys, monkeypatch):
    results = tmp_path / "r.jsonl"

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)  # the append's data reaches the disk at fsync
    code, out, err = run_cli(capsys, [*LS, "--ckpt", f.ckpt, "--classifier", f.clf, "--results", results])
    assert code == 2 and "ls_z " in out and "ls_w " in out  # the measured values are on the screen
    assert shown_lines(err)[-1] == (f"stylegan-eval ls: error: {results}: no space left on the device; free some space "
                                    "or write to another disk")


def test_unknown_image_extension_is_refused_and_jpg_is_jpeg(f, tmp_path, capsys):
    line = one_line_error(capsys, [*GEN, "--ckpt", f.ckpt, "--out", tmp_path / "grid.gif"])
    assert "unknown image type '.gif'" in line and not (tmp_path / "grid.gif").exists()
    code, _, err = run_cli(capsys, [*GEN, "--ckpt", f.ckpt, "--out", tmp_path / "grid.jpg", "--seeds", "0-3"])
    assert code == 0, err
    assert Image.open(tmp_path / "grid.jpg").format == "JPEG"


# ------------------------------------------------------------------------------------------------
# Complete-looking but wrong output
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["grid", "images", "truncation"])
def test_generate_refuses_a_generator_that_emits_nan(mode, tmp_path, capsys):
    G = Generator(get_preset("F-test16").generator)
    with torch.no_grad():
        next(p for n, p in G.named_parameters() if n.startswith("synthesis")).fill_(float("nan"))
    ckpt = save_generator(tmp_path / "nan.pt", G, "F-test16")
    out = tmp_path / ("imgs" if mode == "images" else "x.png")
    line = one_line_error(capsys, ["generate", mode, "--ckpt", ckpt, "--out", out, "--seeds", "0-1"])
    assert "NaN or Inf" in line and "nothing was written" in line
    assert not out.exists() or not any(out.iterdir())


def _edited_checkpoint(path, edit):
    G = Generator(get_preset("F-test16").generator)
    config = {"preset": "F-test16", "generator": G.config.to_dict()}
    state = {k: v.clone() for k, v in G.state_dict().items()}
    edit(config, state)
    return save_checkpoint(path, {"config": config, "G_ema": state, "progress": {}})


@pytest.mark.parametrize("fault, message", [
    ("nan-lod", r"lod buffer\) is nan"),
    ("big-lod", r"lod buffer\) is 7.0, outside \[0, 2\]"),
    ("unknown-preset", r"unknown preset 'F-made-up'"),
    ("preset-not-text", r"unknown preset \[1\]"),
])
def test_checkpoint_lod_and_preset_are_validated_at_load(fault, message, tmp_path, capsys):
    def edit(config, state):
        if fault.endswith("lod"):
            state["synthesis.lod"].fill_(float("nan") if fault == "nan-lod" else 7.0)
        else:
            config["preset"] = "F-made-up" if fault == "unknown-preset" else [1]

    path = _edited_checkpoint(tmp_path / "edited.pt", edit)
    with pytest.raises(CheckpointError, match=message):
        load_generator(path)
    one_line_error(capsys, [*GEN, "--ckpt", path, "--out", tmp_path / "g.png"])


def test_every_kept_label_one_class_is_flagged_in_record_console_and_report(f, tmp_path, capsys):
    clf = build_classifier(classifier_config(["Smiling", "Hat"], 8, fmap_base=64, fmap_max=16), 0)
    with torch.no_grad():  # a huge output bias: every image is labelled positive for every attribute
        last_bias = [p for n, p in clf.named_parameters() if n.endswith("bias")][-1]
        last_bias.fill_(1e4)
    path = save_classifier(tmp_path / "one-class.pt", clf)
    results = tmp_path / "r.jsonl"
    code, out, err = run_cli(capsys, [*LS, "--ckpt", f.ckpt, "--classifier", path, "--results", results])
    assert code == 0, err
    assert "WARNING: ls_z 1 is meaningless" in out and "WARNING: ls_w 1 is meaningless" in out
    z, w = read_jsonl(results)
    assert z.value == 1.0 and z.extras["all_single_class"] is True and w.extras["all_single_class"] is True
    code, out, err = run_cli(capsys, ["report", results, "--out", tmp_path / "rep"])
    assert code == 0, err
    assert "note: snapshot-0000001000 ls_z = 1 has no signal" in out
    md = (tmp_path / "rep" / "report.md").read_text()
    html = (tmp_path / "rep" / "report.html").read_text()
    # ‡: fewer samples than the paper's; ¶: no signal
    assert "| 1.00‡¶ | 1.00‡¶ |" in md and "SEPARABILITY WITHOUT SIGNAL" in md and "1.00‡¶" in html


# ------------------------------------------------------------------------------------------------
# Reports: binary inputs, future versions, duplicates, unknown metrics, labels that look like markup
# ------------------------------------------------------------------------------------------------
def _record(model="F-cpu32", metric="ppl_wend", value=10.0, **kw):
    """A PPL record as `measure_ppl` writes it (typed extras included)."""
    from stylegan_eval.metrics.ppl import PPLExtras

    fn = FeatureNetwork("lpips-vgg16-v0.1", "x", False)
    extras = PPLExtras(value, 0.1, {"1": 0.5, "50": value, "99": 2 * value}, 98, 16, 1, None).to_dict()
    return ResultRecord(metric, value, {"preset": "F-cpu32"}, 100, 0, model, None, None, fn, 0.1, extras=extras, **kw)


@pytest.mark.parametrize("content, message", [
    (bytes(range(255, -1, -1)) * 8, r"results\.jsonl:1: not a results file \(binary data, not JSON text\)"),
    (b'{"metric": "fid"}\n\x00\xff\xfe garbage\n', r"results\.jsonl:1: not a result record"),
    (b"[1, 2, 3]\n", r"results\.jsonl:1: not a result record \(expected a JSON object, got list\)"),
    (None, r"results\.jsonl:1: not a result record \(record version 99 was written by a newer stylegan-eval"),
])
def test_report_refuses_unreadable_and_future_records_in_one_line(content, message, tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    if content is None:
        path.write_text(json.dumps({**_record().to_dict(), "record_version": 99}) + "\n")
    else:
        path.write_bytes(content)
    line = one_line_error(capsys, ["report", path, "--out", tmp_path / "rep"])
    assert re.search(message, line), line
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("content", [b"\xff\xd8\xff\xe0 a JPEG header", b"just text", None])
def test_report_image_must_be_a_png_and_is_checked_before_any_work(content, f, tmp_path, capsys):
    image = tmp_path / "grid.png"
    if content is not None:
        image.write_bytes(content)
    line = one_line_error(capsys, ["report", f.results, "--out", tmp_path / "rep", "--image", "grid", image])
    assert str(image) in line
    assert ("not a PNG image" if content is not None else "not found") in line
    assert not (tmp_path / "rep" / "report.html").exists()


def test_binary_attribute_file_is_named_as_not_text(f, capsys):
    line = one_line_error(capsys, ["data", "info", f.data, "--attributes", f.garbage])
    assert f"{f.garbage}: not a text file (byte 0x80 at offset 128 is not UTF-8)" in line
    assert "codec" not in line


def test_report_says_what_it_merged_dropped_or_did_not_tabulate(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    old = _record(value=10.0, created="2026-01-01T00:00:00+00:00")
    new = _record(value=12.0, created="2026-01-02T00:00:00+00:00")
    for r in (old, new, new, _record(metric="fvd2048", value=0.5)):
        append_jsonl(path, r)
    code, out, err = run_cli(capsys, ["report", path, "--out", tmp_path / "rep"])
    assert code == 0, err
    assert "note: 1 identical record(s) were read more than once and counted once" in out
    assert "note: F-cpu32 PPL W end: 2 records, the table shows the newest" in out
    assert "note: records of metric(s) fvd2048 are not tabulated" in out
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Notes on the inputs" in md and "12.00" in md and "fvd2048" in md


def test_report_markdown_shows_labels_literally_like_the_html(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    label = "<img src=x onerror=alert(1)>|*b*_[l](http://e)"
    append_jsonl(path, _record(model=label))
    code, _, err = run_cli(capsys, ["report", path, "--out", tmp_path / "rep", "--title", "# <title>"])
    assert code == 0, err
    md = (tmp_path / "rep" / "report.md").read_text()
    html = (tmp_path / "rep" / "report.html").read_text()
    # No raw HTML and no link can come out of a label: every < and ] in the page is backslash-escaped.
    assert not re.search(r"(?<!\\)[<\]]", md.replace("](figures/", ""))
    assert r"\<img src=x onerror=alert(1)\>\|\*b\*\_\[l\](http://e)" in md
    assert md.startswith(r"# \# \<title\>")
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


# ------------------------------------------------------------------------------------------------
# Training statistics: a torn last line never blocks --resume
# ------------------------------------------------------------------------------------------------
def test_torn_stats_line_is_dropped_with_a_warning_on_resume(tmp_path, capsys):
    from tests.cli.test_train import TINY

    data = synthesize_dataset(tmp_path / "data", 24, 16, seed=0)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, ["train", "--data", data, "--out", run, "--kimg", "0.064", *TINY])
    assert code == 0, err
    stats = run / "stats.jsonl"
    good = stats.read_text().splitlines()
    with open(stats, "ab") as fh:  # what a kill in the middle of an append leaves
        fh.write(b'{"nimg": 96, "kimg": 0.0')
    with pytest.warns(RuntimeWarning, match=r"stats\.jsonl: dropped 1 unreadable line\(s\) \(a write cut off by a kill\)"):
        code, out, err = run_cli(capsys, ["train", "--out", run, "--resume", "--kimg", "0.096"])
    assert code == 0, err
    rows = [json.loads(line) for line in stats.read_text().splitlines()]  # every line parses again
    assert [r["nimg"] for r in rows[: len(good)]] == [json.loads(g)["nimg"] for g in good]
    assert rows[-1]["nimg"] == 96


# ------------------------------------------------------------------------------------------------
# Hints name options that exist on the command that printed them
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def odd_images(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(folder / "wide.png")
    return folder


@pytest.fixture
def broken_images(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "ok.png")
    (folder / "bad.png").write_bytes(b"\x89PNG not really")
    return folder


def test_hints_name_the_commands_own_options(f, odd_images, broken_images, tmp_path, capsys):
    bad = one_line_error(capsys, [*TRAIN, "--data", broken_images, "--out", tmp_path / "r1"])
    assert "pass --skip-bad-images" in bad and "on_bad_image" not in bad
    odd = one_line_error(capsys, [*TRAIN, "--data", odd_images, "--out", tmp_path / "r2"])
    assert "pass --fit resize or --fit center-crop" in odd and "--resolution" not in odd and "fit=" not in odd
    odd = one_line_error(capsys, [*FID, "--ckpt", f.ckpt, "--data", odd_images, "--substitute-weights",
                                  "--cache-dir", tmp_path / "cache"])
    assert "pass --fit resize or --fit center-crop" in odd and "--resolution" not in odd
    odd = one_line_error(capsys, ["data", "info", odd_images])
    assert "pass --fit resize or --fit center-crop with --resolution N" in odd
    bad = one_line_error(capsys, ["data", "info", broken_images])
    assert "pass --skip-bad-images" in bad
    odd = one_line_error(capsys, [*CLF, "--data", odd_images, "--attrs", f.data / "list_attr.txt", "--out", tmp_path / "c.pt"])
    assert "--fit" not in odd and "resize or crop the images" in odd
    line = one_line_error(capsys, ["data", "info", odd_images, "--fit", "resize"])
    assert "--fit resize needs --resolution N" in line


def test_fid_progress_bars_follow_the_progress_switch(f, tmp_path, capsys):
    from stylegan_eval.metrics.fid import compute_fid
    from tests.eval.metrics.test_fid import PixelFeatures

    G = Generator(get_preset("F-test16").generator).eval()
    compute_fid(G, f.data, num_gen=4, num_real=4, cache_dir=tmp_path / "c", extractor=PixelFeatures(), progress=False)
    assert "FID" not in capsys.readouterr().err
    compute_fid(G, f.data, num_gen=4, num_real=4, cache_dir=tmp_path / "d", extractor=PixelFeatures())
    assert "FID generated" in capsys.readouterr().err


def test_warnings_are_one_line_naming_the_command(f, capsys, monkeypatch):
    """While a command runs, a warning is formatted as one line (no file:line and code line)."""
    import sys
    import warnings

    before = warnings.formatwarning

    def run(args):
        print(warnings.formatwarning("careful: 3 lines dropped", RuntimeWarning, "x.py", 3, "code()"), end="", file=sys.stderr)
        return 0

    monkeypatch.setattr("stylegan_eval.cli.report.run", run)
    code, _, err = run_cli(capsys, ["report", f.results, "--out", f.d / "unused"])
    assert code == 0 and err == "stylegan-eval report: warning: careful: 3 lines dropped\n"
    assert warnings.formatwarning is before  # restored afterwards


def test_saved_distances_lost_to_a_full_disk_keep_the_value(tmp_path, torch_home, capsys, monkeypatch):
    from tests.eval.test_lpips_net import install_standin_vgg16

    install_standin_vgg16(torch_home, monkeypatch)
    ckpt = save_generator(tmp_path / "g.pt", Generator(get_preset("F-test16").generator), "F-test16")
    dists = tmp_path / "d.npy"

    def full(path, arr):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr("stylegan_eval.metrics.ppl._save_array", full)
    with pytest.warns(RuntimeWarning, match=r"could not save the distances to .*d\.npy \(No space left on device\)"):
        code, out, err = run_cli(capsys, [*PPL, "--ckpt", ckpt, "--save-dists", dists])
    assert code == 2 and out.startswith("ppl_wend ")  # the value reached the screen
    (error,) = shown_lines(err)
    assert error == f"stylegan-eval ppl: error: --save-dists {dists}: not written (see the warning above); the value printed above is complete"
