"""Linear separability: entropy against hand values and the official formula, pruning, scores of
separable and independent label sets, fit failures, and the sampler's determinism."""

import math

import numpy as np
import pytest
import sklearn.svm
import torch

from stylegan_core.errors import NonFiniteError
from stylegan_eval.metrics import separability as ls
from stylegan_eval.metrics.separability import (
    SeparabilityError,
    conditional_entropy,
    fit_spaces,
    joint_table,
    labels_from_probs,
    prune_confident,
    separability_score,
)


def _h(p):
    p = np.asarray(p, dtype=np.float64)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log2(p)).sum())


# ---------------------------------------------------------------------------------------------
# conditional_entropy


@pytest.mark.parametrize(
    "table, expected",
    [
        ([[1, 1], [1, 1]], 1.0),  # independent, uniform label: H(Y) = 1 bit
        ([[1, 4], [2, 8]], _h([0.2, 0.8])),  # independent, skewed label: H(Y|X) = H(Y)
        ([[7, 0], [0, 3]], 0.0),  # identical
        ([[0, 7], [3, 0]], 0.0),  # identical up to relabelling
        ([[3, 1], [0, 4]], 0.5 * _h([0.75, 0.25])),  # mixed: row 0 uncertain, row 1 certain
        ([[2, 2], [0, 4]], 0.5),  # mixed: half the mass has 1 bit left
        ([[5, 0], [0, 0]], 0.0),  # one cell: empty cells contribute 0
        ([[0.1, 0.3], [0.45, 0.15]], 0.4 * _h([0.25, 0.75]) + 0.6 * _h([0.75, 0.25])),  # frequencies
    ],
)
def test_conditional_entropy_hand_values(table, expected):
    assert conditional_entropy(table) == pytest.approx(expected, abs=1e-12)


def test_conditional_entropy_is_scale_free_and_matches_official_formula():
    # The official code computes H(Y) - I(X; Y); we compute -sum p(x,y) log2 p(y|x).
    rng = np.random.default_rng(0)
    for _ in range(20):
        t = rng.integers(0, 50, size=(2, 2)).astype(float)
        t[0, 0] += 1
        p = t / t.sum()
        px, py = p.sum(1), p.sum(0)
        mi = sum(p[x, y] * math.log2(p[x, y] / (px[x] * py[y])) for x in range(2) for y in range(2) if p[x, y] > 0)
        assert conditional_entropy(t) == pytest.approx(max(0.0, _h(py) - mi), abs=1e-9)
        assert conditional_entropy(t * 17) == pytest.approx(conditional_entropy(t), abs=1e-12)


@pytest.mark.parametrize(
    "table, match",
    [([[1, -1], [1, 1]], "non-negative"), ([1, 2], "2-D"), ([[0, 0], [0, 0]], "all zeros"), ([[np.nan, 1], [1, 1]], "finite")],
)
def test_conditional_entropy_rejects_bad_tables(table, match):
    with pytest.raises(ValueError, match=match):
        conditional_entropy(table)


def test_joint_table_rows_are_predictions():
    assert joint_table(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0])).tolist() == [[1, 1], [1, 2]]


# ---------------------------------------------------------------------------------------------
# pruning and labels


def test_prune_keeps_most_confident_with_ties_by_index():
    #            0     1      2     3      4     5      6
    p = np.array([0.5, 0.875, 0.125, 0.75, 0.25, 0.9375, 0.0625])
    # confidence: .5, .875, .875, .75, .75, .9375, .9375
    assert prune_confident(p, 7).tolist() == [5, 6, 1, 2, 3, 4, 0]
    assert prune_confident(p, 3).tolist() == [5, 6, 1]


def test_prune_kept_set_dominates_dropped_set():
    p = np.random.default_rng(1).random(1000)
    keep = prune_confident(p, 400)
    conf = np.maximum(p, 1 - p)
    dropped = np.setdiff1d(np.arange(1000), keep)
    assert len(set(keep.tolist())) == 400
    assert conf[keep].min() >= conf[dropped].max()


@pytest.mark.parametrize("num_keep", [0, 8])
def test_prune_rejects_bad_num_keep(num_keep):
    with pytest.raises(ValueError, match="num_keep must be in 1..7"):
        prune_confident(np.full(7, 0.3), num_keep)


def test_labels_are_argmax_of_softmax_pair():
    # softmax([l, -l])[0] = sigmoid(2 l); argmax picks index 0 ("present") on ties.
    logits = torch.tensor([-3.0, -0.1, 0.0, 0.2, 4.0])
    pair = torch.softmax(torch.stack([logits, -logits], 1), 1)
    assert torch.allclose(pair[:, 0], torch.sigmoid(2 * logits))
    assert labels_from_probs(torch.sigmoid(2 * logits).numpy()).tolist() == (pair.argmax(1) == 0).long().tolist()


# ---------------------------------------------------------------------------------------------
# separability_score


def _linear_set(n=600, d=8, a=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    logits = x @ rng.standard_normal((d, a)) + 0.1
    return x, 1 / (1 + np.exp(-2 * logits))


def test_linear_labels_score_one():
    x, p = _linear_set()
    r = separability_score(x, p, num_keep=300)
    assert r.score == 1.0
    assert r.entropies == [0.0, 0.0, 0.0]
    assert r.accuracies == [1.0, 1.0, 1.0]
    assert r.statuses == ["ok", "ok", "ok"]


def test_independent_labels_score_close_to_two_to_the_a():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4000, 4))
    p = rng.random((4000, 3))
    r = separability_score(x, p, num_keep=2000)
    assert 0.9 * 2**3 < r.score <= 2**3
    assert all(0.45 < acc < 0.6 for acc in r.accuracies)


def test_mixed_set_scores_about_two():
    x, p_lin = _linear_set(n=4000, d=4, a=1, seed=3)
    p = np.concatenate([p_lin, np.random.default_rng(4).random((4000, 1))], axis=1)
    r = separability_score(x, p, num_keep=2000)
    assert r.entropies[0] == 0.0 and r.entropies[1] > 0.95
    assert r.score == pytest.approx(2.0 ** r.entropies[1])


def test_only_kept_samples_are_fitted():
    # Labels are linear in x only for confident samples; the unconfident half is noise the SVM
    # would trip on if pruning let it in.
    x, p = _linear_set(n=800, d=4, a=1, seed=5)
    keep = prune_confident(p[:, 0], 400)
    drop = np.setdiff1d(np.arange(800), keep)
    p[drop, 0] = 0.5 + (np.random.default_rng(6).random(400) - 0.5) * 0.01  # scrambled, unconfident
    assert separability_score(x, p, num_keep=400).score == 1.0
    assert separability_score(x, p, num_keep=800).score > 1.2


def test_parallel_threads_equal_serial():
    # num_keep >= D: every fit is liblinear's primal solver, run in threads.
    rng = np.random.default_rng(7)
    z = rng.standard_normal((500, 6))
    w = rng.standard_normal((500, 5)).astype(np.float32)
    p = rng.random((500, 2))
    serial = fit_spaces({"z": z, "w": w}, p, 250, n_jobs=1)
    parallel = fit_spaces({"z": z, "w": w}, p, 250, n_jobs=3)
    assert serial == parallel
    assert serial["z"].score != serial["w"].score


@pytest.mark.slow
def test_parallel_processes_equal_serial():
    # num_keep < D: the dual solver shuffles with a process-wide RNG, so fits go to processes.
    rng = np.random.default_rng(8)
    z = rng.standard_normal((120, 80))
    p = rng.random((120, 2))
    serial = fit_spaces({"z": z, "w": z[:, ::-1]}, p, 60, n_jobs=1)
    assert fit_spaces({"z": z, "w": z[:, ::-1]}, p, 60, n_jobs=2) == serial


def test_single_class_is_flagged_not_assumed():
    x, p = _linear_set(a=2)
    p[:, 1] = 0.99
    r = separability_score(x, p, num_keep=300)
    assert r.statuses == ["ok", "single_class"]
    assert r.fits[1].entropy == 0.0 and r.fits[1].num_present == 300


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_non_convergence_is_flagged(monkeypatch):
    class OneIteration(sklearn.svm.LinearSVC):
        def fit(self, x, y):
            self.max_iter = 1
            return super().fit(x, y)

    monkeypatch.setattr(sklearn.svm, "LinearSVC", OneIteration)
    x, p = _linear_set(a=1)
    r = separability_score(x, p, num_keep=300)
    assert r.statuses == ["not_converged"] and 0.5 < r.accuracies[0] <= 1.0


def test_failed_fit_is_an_error_not_a_perfect_prediction(monkeypatch):
    class Fails(sklearn.svm.LinearSVC):
        def fit(self, x, y):
            raise ValueError("solver exploded")

    monkeypatch.setattr(sklearn.svm, "LinearSVC", Fails)
    x, p = _linear_set(a=1)
    with pytest.raises(SeparabilityError, match="LinearSVC failed on z for Smiling: ValueError: solver exploded"):
        fit_spaces({"z": x}, p, 300, attribute_names=["Smiling"])


@pytest.mark.parametrize(
    "latents, probs, num_keep, match",
    [
        (np.zeros((10, 3)), np.full((10, 2), 0.3), 11, r"num_keep must be in 1..10"),
        (np.zeros((10, 3)), np.full((9, 2), 0.3), 5, r"latents must be \[N=9, D\]"),
        (np.full((10, 3), np.nan), np.full((10, 2), 0.3), 5, "NaN or Inf"),
        (np.zeros((10, 3)), np.full((10, 2), 1.5), 5, r"probabilities in \[0, 1\]"),
        (np.zeros((10, 3)), np.full(10, 0.3), 5, r"probs must be \[N, A\]"),
    ],
)
def test_separability_score_rejects_bad_inputs(latents, probs, num_keep, match):
    with pytest.raises(SeparabilityError, match=match):
        separability_score(latents, probs, num_keep)


# ---------------------------------------------------------------------------------------------
# compute_separability: generator -> classifier -> SVMs


class _LinearG(torch.nn.Module):
    """A closed-form generator: w = 2 z; the image's channel c is the constant w[c], plus
    channel 2 carries the per-sample noise (so attribute 2 is independent of z and w)."""

    z_dim = w_dim = 4
    num_ws = 2
    img_resolution = 8
    img_channels = 3

    def __init__(self):
        super().__init__()
        self.synthesis = self._Synthesis()
        self.register_buffer("w_avg", torch.zeros(4))

    class _Synthesis(torch.nn.Module):
        noise_shapes = [(8, 8)]

        def forward(self, ws, noise_mode="random", noise=None):
            assert noise_mode == "given"
            img = ws[:, 0, :3, None, None].expand(-1, 3, 8, 8).clone()
            img[:, 2] = noise[0][:, 0]
            return img

    def mapping(self, z, truncation_psi=1.0, truncation_cutoff=None):
        return (2 * z)[:, None].repeat(1, self.num_ws, 1)


class _MeanClassifier(torch.nn.Module):
    """logit_c = 10 * mean of channel c at 4x4: attributes are sign(z0), sign(z1), noise."""

    attribute_names = ["z0", "z1", "noise"]
    resolution = 4
    img_channels = 3

    def forward(self, img):
        assert img.shape[-1] == 4
        return 10 * img.mean(dim=(2, 3))


def test_closed_form_generator_scores_one_per_linear_attribute():
    records = ls.compute_separability(_LinearG(), _MeanClassifier(), num_samples=400, batch_size=64, seed=3, progress=False)
    assert [r.metric for r in records] == ["ls_z", "ls_w"]
    for r in records:
        ent = r.extras["entropies"]
        assert ent[0] == 0.0 and ent[1] == 0.0  # labels are sign(z_c): linear in z and in w
        assert ent[2] > 0.8  # per-sample noise is independent of the latents
        assert r.value == pytest.approx(2.0 ** sum(ent))
        assert r.extras["attributes"] == ["z0", "z1", "noise"] and r.extras["num_keep"] == 200
        assert r.num_samples == 400 and r.seed == 3


def test_non_finite_classifier_output_is_an_error():
    class NaNClassifier(_MeanClassifier):
        def forward(self, img):
            return super().forward(img) * float("nan")

    with pytest.raises(NonFiniteError, match=r"non-finite generator or classifier output in samples 0\.\.3"):
        ls.compute_separability(_LinearG(), NaNClassifier(), num_samples=8, batch_size=4, progress=False)


@pytest.fixture(scope="module")
def tiny_models():
    from stylegan_core.generator import Generator
    from stylegan_core.presets import get_preset
    from stylegan_eval.classifier import build_classifier, classifier_config

    G = Generator(get_preset("F-test16").generator)
    C = build_classifier(classifier_config(["a", "b"], 8, fmap_base=64, fmap_max=16), seed=1)
    return G, C


def test_sampler_is_independent_of_batch_size(tiny_models):
    G, C = tiny_models
    z1, w1, p1 = ls.sample_latents_and_probs(G, C, 24, 5, seed=7, device=torch.device("cpu"), progress=False)
    z2, w2, p2 = ls.sample_latents_and_probs(G, C, 24, 24, seed=7, device=torch.device("cpu"), progress=False)
    assert torch.equal(z1, z2)
    torch.testing.assert_close(w1, w2)
    torch.testing.assert_close(p1, p2, rtol=1e-5, atol=1e-6)  # conv sums differ in the last bits across batch sizes
    z3, _, p3 = ls.sample_latents_and_probs(G, C, 24, 24, seed=8, device=torch.device("cpu"), progress=False)
    assert not torch.equal(z1, z3) and not torch.allclose(p1, p3)
    # sample i's noise is its own: the first 10 samples do not change when N grows
    z4, w4, p4 = ls.sample_latents_and_probs(G, C, 10, 4, seed=7, device=torch.device("cpu"), progress=False)
    assert torch.equal(z4, z1[:10])
    torch.testing.assert_close(p4, p1[:10], rtol=1e-5, atol=1e-6)


def test_records_of_real_generator(tiny_models):
    G, C = tiny_models
    a = ls.compute_separability(G, C, num_samples=60, batch_size=7, seed=1, progress=False, model="tiny")
    b = ls.compute_separability(G, C, num_samples=60, batch_size=60, seed=1, progress=False, spaces=("w",))
    assert [r.metric for r in a] == ["ls_z", "ls_w"] and b[0].metric == "ls_w"
    assert a[1].value == b[0].value and a[1].extras["entropies"] == b[0].extras["entropies"]
    z, w = a
    assert z.model == "tiny" and z.extras["num_keep"] == 30 and z.params["w_layer"] is None and w.params["w_layer"] == 0
    assert 1.0 <= z.value <= 4.0 and len(z.extras["accuracies"]) == 2
    assert z.feature_network.name == "attribute-classifier-8px"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_samples": 10, "num_keep": 11}, r"num_keep must be in 1..10"),
        ({"num_samples": 10, "spaces": ("z", "x")}, "spaces must be"),
        ({"num_samples": 10, "batch_size": 0}, "batch_size must be"),
    ],
)
def test_compute_separability_rejects_bad_arguments(tiny_models, kwargs, match):
    G, C = tiny_models
    with pytest.raises(SeparabilityError, match=match):
        ls.compute_separability(G, C, progress=False, **kwargs)


def test_classifier_resolution_must_divide_generator_resolution(tiny_models):
    from stylegan_eval.classifier import build_classifier, classifier_config

    G, _ = tiny_models
    C = build_classifier(classifier_config(["a"], 32, fmap_base=64, fmap_max=16), seed=0)
    with pytest.raises(SeparabilityError, match="generator images are 16px; the classifier needs 32px"):
        ls.compute_separability(G, C, num_samples=4, progress=False)


TORCHRUN_SCRIPT = """
import json, sys
from stylegan_core import distributed
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_eval.classifier import build_classifier, classifier_config
from stylegan_eval.metrics.separability import compute_separability

distributed.init("cpu")
G = Generator(get_preset("F-test16").generator)
C = build_classifier(classifier_config(["a", "b"], 8, fmap_base=64, fmap_max=16), seed=1)
records = compute_separability(G, C, num_samples=30, batch_size=4, seed=5, progress=False)
out = [{"value": r.value, "entropies": r.extras["entropies"], "processes": r.extras["processes"]} for r in records]
with open(sys.argv[1] + f".{distributed.rank()}", "w") as f:
    json.dump(out, f)
"""


@pytest.mark.slow
def test_one_and_two_torchrun_processes_agree(tmp_path, tiny_models):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "run_ls.py"
    script.write_text(TORCHRUN_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(tmp_path / "out")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (json.loads((tmp_path / f"out.{r}").read_text()) for r in (0, 1))
    assert rank0 == rank1 and rank0[0]["processes"] == 2  # every rank returns the same records
    G, C = tiny_models
    one = ls.compute_separability(G, C, num_samples=30, batch_size=30, seed=5, progress=False)
    for r, two in zip(one, rank0):
        assert r.value == two["value"] and r.extras["entropies"] == two["entropies"]
