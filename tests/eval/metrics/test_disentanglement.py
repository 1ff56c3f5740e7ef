"""DCI, MIG and SAP: closed forms on synthetic latents, agreement with direct computations of the
papers' formulas, and determinism."""

import math

import numpy as np
import pytest

from stylegan_eval.metrics import disentanglement as dis
from stylegan_eval.metrics.disentanglement import PROTOCOLS, DisentanglementError


def _factors(n=600, k=3, seed=0):
    """Independent binary factors and the continuous codes u they are the signs of."""
    u = np.random.default_rng(seed).standard_normal((n, k))
    return u, (u > 0).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Pure formulas


def _direct_dci(r):
    """Eastwood and Williams (2018) eqs. for D and C, written out with loops; probabilities from
    R + 1e-11 and weights from R, as disentanglement_lib."""
    w = np.asarray(r, dtype=np.float64)
    r = w + 1e-11
    d_codes, k_factors = r.shape
    total = w.sum()
    dis_score = 0.0
    for i in range(d_codes):
        p = [r[i, k] / r[i].sum() for k in range(k_factors)]
        h = -sum(pk * math.log(pk, k_factors) for pk in p if pk > 0)
        dis_score += (w[i].sum() / total) * (1 - h)
    com_score = 0.0
    for k in range(k_factors):
        p = [r[i, k] / r[:, k].sum() for i in range(d_codes)]
        h = -sum(pi * math.log(pi, d_codes) for pi in p if pi > 0)
        com_score += (w[:, k].sum() / total) * (1 - h)
    return dis_score, com_score


@pytest.mark.parametrize(
    "importance, expected",
    [
        (np.eye(3), (1.0, 1.0)),  # one code per factor
        (np.ones((4, 2)), (0.0, 0.0)),  # every code equally important for every factor
        ([[1, 0], [1, 0], [0, 1], [0, 1]], (1.0, 0.5)),  # duplicated codes: H_4 of (1/2, 1/2) = 1/2
        ([[1, 1], [0, 0]], (0.0, 1.0)),  # one code serves both factors
    ],
)
def test_dci_closed_forms(importance, expected):
    d, c, _, _ = dis.dci_from_importance(importance)
    assert (d, c) == pytest.approx(expected, abs=1e-6)


def test_dci_matches_direct_formula():
    r = np.random.default_rng(3).random((7, 4)) ** 3
    d, c, per_code, per_factor = dis.dci_from_importance(r)
    assert (d, c) == pytest.approx(_direct_dci(r), abs=1e-12)
    assert per_code.shape == (7,) and per_factor.shape == (4,)
    assert dis.dci_from_importance(np.zeros((3, 2)))[:2] == pytest.approx((0.0, 0.0), abs=1e-9)  # all zero: uniform


def test_dci_rejects_bad_importance():
    with pytest.raises(DisentanglementError, match="non-negative"):
        dis.dci_from_importance([[1, -1], [0, 1]])
    with pytest.raises(DisentanglementError, match=r"\[D>=2, K>=2\]"):
        dis.dci_from_importance([[1, 2, 3]])


def test_histogram_discretize_is_numpy_histogram_digitize():
    x = np.random.default_rng(0).standard_normal((50, 3))
    x[:, 2] = 4.0  # a constant column is one bin (numpy's range c +- 0.5: the middle one)
    got = dis.histogram_discretize(x, 20)
    for d in range(3):
        assert np.array_equal(got[:, d], np.digitize(x[:, d], np.histogram(x[:, d], 20)[1][:-1]))
    assert got[:, :2].min() == 1 and got[:, :2].max() == 20 and set(got[:, 2]) == {11}
    assert np.array_equal(dis.histogram_discretize(np.arange(20.0)[:, None], 20)[:, 0], np.arange(1, 21))


def _direct_mi(a, b):
    """I(A; B) = sum_{a,b} p(a,b) log(p(a,b) / (p(a) p(b))) in nats, from counts."""
    n = len(a)
    mi = 0.0
    for va in set(a):
        for vb in set(b):
            pab = np.sum((a == va) & (b == vb)) / n
            if pab > 0:
                mi += pab * math.log(pab / ((np.sum(a == va) / n) * (np.sum(b == vb) / n)))
    return mi


def test_mutual_info_and_entropy_match_definitions_and_sklearn():
    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(1)
    codes = rng.integers(1, 6, (80, 4))
    labels = np.stack([rng.integers(0, 2, 80), codes[:, 1] % 2, rng.integers(0, 3, 80)], axis=1)
    mi = dis.discrete_mutual_info(codes, labels)
    for d in range(4):
        for k in range(3):
            assert mi[d, k] == pytest.approx(_direct_mi(codes[:, d], labels[:, k]), abs=1e-12)
            assert mi[d, k] == pytest.approx(mutual_info_score(labels[:, k], codes[:, d]), abs=1e-12)
    h = dis.discrete_entropy(labels)
    p = labels[:, 0].mean()
    assert h[0] == pytest.approx(-p * math.log(p) - (1 - p) * math.log(1 - p))
    assert h == pytest.approx([mutual_info_score(labels[:, k], labels[:, k]) for k in range(3)])


def test_top_two_gap():
    gap, top = dis.top_two_gap([[0.1, 0.9], [0.7, 0.9], [0.3, 0.2]])
    assert gap == pytest.approx([0.4, 0.0]) and top.tolist() == [[1, 2], [0, 1]]


def test_split_is_fixed_by_seed():
    tr, te = dis.split_indices(10, 3, seed=5)
    assert len(tr) == 7 and len(te) == 3 and sorted([*tr, *te]) == list(range(10))
    assert all(np.array_equal(a, b) for a, b in zip((tr, te), dis.split_indices(10, 3, seed=5)))
    assert not np.array_equal(te, dis.split_indices(10, 3, seed=6)[1])
    with pytest.raises(DisentanglementError, match="num_test must be in 1..9"):
        dis.split_indices(10, 10, seed=0)


# ---------------------------------------------------------------------------------------------
# Scores against direct computations


def test_dci_gbt_is_one_gradient_boosted_classifier_per_factor():
    from sklearn.ensemble import GradientBoostingClassifier

    u, f = _factors(120, 2)
    x = np.concatenate([u, np.random.default_rng(9).standard_normal((120, 1))], axis=1)
    res = dis.dci(x, f, num_test=40, seed=2)
    tr, te = dis.split_indices(120, 40, seed=2)
    cols, accs = [], []
    for k in range(2):
        m = GradientBoostingClassifier(random_state=0).fit(x[tr], f[tr, k])
        cols.append(m.feature_importances_)
        accs.append(np.mean(m.predict(x[te]) == f[te, k]))
    assert np.array_equal(res.importance, np.stack(cols, axis=1))
    assert res.informativeness_test == pytest.approx(np.mean(accs))
    assert (res.disentanglement, res.completeness) == pytest.approx(_direct_dci(res.importance), abs=1e-12)


def test_mig_matches_direct_computation():
    u, f = _factors(300, 2, seed=4)
    x = u + 0.5 * np.random.default_rng(5).standard_normal(u.shape)
    res = dis.mig(x, f, num_bins=20)
    expected = []
    for k in range(2):
        mis = sorted((_direct_mi(np.digitize(x[:, d], np.histogram(x[:, d], 20)[1][:-1]), f[:, k]) for d in range(2)),
                     reverse=True)
        expected.append((mis[0] - mis[1]) / _direct_mi(f[:, k], f[:, k]))
    assert res.score == pytest.approx(np.mean(expected), abs=1e-12)
    assert res.per_factor == pytest.approx(expected, abs=1e-12) and res.top_codes[:, 0].tolist() == [0, 1]


def test_sap_matches_direct_svm_loop_for_any_n_jobs():
    from sklearn.svm import LinearSVC

    u, f = _factors(200, 2, seed=6)
    x = np.concatenate([u, u[:, :1] + np.random.default_rng(7).standard_normal((200, 1))], axis=1)
    tr, te = dis.split_indices(200, 60, seed=1)
    matrix = np.zeros((3, 2))
    for d in range(3):
        for k in range(2):
            svm = LinearSVC(C=0.01, class_weight="balanced", random_state=0).fit(x[tr, d : d + 1], f[tr, k])
            matrix[d, k] = np.mean(svm.predict(x[te, d : d + 1]) == f[te, k])
    top = np.sort(matrix, axis=0)
    res = dis.sap(x, f, num_test=60, seed=1)
    assert np.array_equal(res.matrix, matrix)
    assert res.score == pytest.approx(np.mean(top[-1] - top[-2]))
    two = dis.sap(x, f, num_test=60, seed=1, n_jobs=2)  # blocks of codes in two processes
    assert np.array_equal(two.matrix, res.matrix) and two.score == res.score


# ---------------------------------------------------------------------------------------------
# Properties on synthetic latents (the proofs)


def test_latents_equal_to_factors():
    _, f = _factors(600, 3)
    x = f.astype(np.float64)  # one dimension per factor, exactly
    d = dis.dci(x, f, num_test=200)
    assert d.disentanglement == pytest.approx(1.0, abs=1e-6) and d.completeness == pytest.approx(1.0, abs=1e-6)
    assert d.informativeness_test == 1.0
    m = dis.mig(x, f)
    # I(code_k; factor_k) = H(factor_k); the runner-up is another, independent factor: I ~ 0
    assert m.score > 0.99 and m.top_codes[:, 0].tolist() == [0, 1, 2]
    assert dis.sap(x, f, num_test=200).score > 0.4  # accuracy 1 vs ~0.5 from an unrelated code


def test_rotation_lowers_disentanglement_and_noise_scores_near_zero():
    u, f = _factors(600, 3)
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))
    aligned, rotated = dis.dci(u, f, num_test=200), dis.dci(u @ q, f, num_test=200)
    assert aligned.disentanglement > 0.95 and rotated.disentanglement < 0.6
    assert dis.mig(u @ q, f).score < dis.mig(u, f).score - 0.3
    noise = np.random.default_rng(2).standard_normal((600, 3))
    n = dis.dci(noise, f, num_test=200)
    assert n.disentanglement < 0.1 and n.completeness < 0.1 and n.informativeness_test < 0.6
    assert dis.mig(noise, f).score < 0.05 and dis.sap(noise, f, num_test=200).score < 0.1


@pytest.mark.parametrize("protocol", ["dci", "dci_lasso"])
def test_duplicated_codes_lower_completeness_not_disentanglement(protocol):
    u, f = _factors(600, 3)
    single = dis.dci(u, f, num_test=200, protocol=PROTOCOLS[protocol])
    dup = dis.dci(np.concatenate([u, u], axis=1), f, num_test=200, protocol=PROTOCOLS[protocol])
    assert dup.completeness < single.completeness - 0.15  # each factor's importance shared by two codes
    assert dup.disentanglement > 0.99 and single.disentanglement > 0.99


def test_lasso_dci_and_parallel_fits_are_deterministic():
    u, f = _factors(300, 3)
    x = u @ np.random.default_rng(0).standard_normal((3, 8))
    a = dis.dci(x, f, num_test=100, seed=4, protocol=PROTOCOLS["dci_lasso"])
    b = dis.dci(x, f, num_test=100, seed=4, protocol=PROTOCOLS["dci_lasso"], n_jobs=2)
    assert np.array_equal(a.importance, b.importance) and a.disentanglement == b.disentanglement
    c = dis.dci(x, f, num_test=100, seed=5, protocol=PROTOCOLS["dci_lasso"])
    assert not np.array_equal(a.importance, c.importance)  # another split


# ---------------------------------------------------------------------------------------------
# Errors and protocol constants


def test_inputs_are_checked():
    u, f = _factors(40, 2)
    with pytest.raises(DisentanglementError, match="same N"):
        dis.mig(u[:30], f)
    with pytest.raises(DisentanglementError, match="NaN or Inf"):
        dis.mig(np.where(u > 1, np.nan, u), f)
    with pytest.raises(DisentanglementError, match="integer class labels"):
        dis.mig(u, f + 0.5)
    with pytest.raises(DisentanglementError, match="at least 2 latent dimensions"):
        dis.sap(u[:, :1], f, num_test=10)
    with pytest.raises(DisentanglementError, match="factor 1 has a single class in the training split"):
        dis.dci(u, np.stack([f[:, 0], np.zeros(40, int)], axis=1), num_test=10)
    with pytest.raises(DisentanglementError, match="at least two factors"):
        dis.dci(u, f[:, :1], num_test=10)
    with pytest.raises(DisentanglementError, match="n_jobs must be >= 1"):
        dis.sap(u, f, num_test=10, n_jobs=0)


def test_protocol_constants():
    assert (PROTOCOLS["dci"].num_train, PROTOCOLS["dci"].num_test, PROTOCOLS["dci"].regressor) == (10_000, 5_000, "gbt")
    assert PROTOCOLS["mig"].num_samples == 10_000 and PROTOCOLS["mig"].num_bins == 20
    assert PROTOCOLS["sap"].svm_c == 0.01
    small = PROTOCOLS["dci"].with_samples(300)
    assert (small.num_train, small.num_test, small.regressor) == (200, 100, "gbt")
    assert PROTOCOLS["mig"].with_samples(50).num_test == 0
    with pytest.raises(DisentanglementError, match="unknown DCI regressor 'tree'"):
        dis.DisentanglementProtocol("dci", 10, 5, regressor="tree")
    with pytest.raises(DisentanglementError, match="unknown disentanglement score 'beta'"):
        dis.DisentanglementProtocol("beta", 10, 5)
