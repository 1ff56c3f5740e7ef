"""stylegan_eval.provenance: one hash per checkpoint, typed results become records."""

import hashlib

import pytest

from stylegan_eval import provenance
from stylegan_eval.metrics.image_metrics import KIDExtras
from stylegan_eval.provenance import MetricResult, Provenance, extras_from_dict
from stylegan_eval.records import FeatureNetwork, ResultRecord


def result(metric="kid50k", value=0.01):
    return MetricResult(metric, value, {"num_subsets": 100}, 500, 3, FeatureNetwork("n", "w", True), 1.5,
                        KIDExtras(0.002, 100, 500, 800))


def test_checkpoint_hashed_once_for_any_number_of_records(tmp_path, monkeypatch):
    ckpt = tmp_path / "snap.pt"
    ckpt.write_bytes(b"weights")
    calls = []
    real = provenance.file_sha256
    monkeypatch.setattr(provenance, "file_sha256", lambda p: calls.append(p) or real(p))
    prov = Provenance.of_checkpoint(ckpt, preset="F-cpu32")
    records = [prov.record(result(v)) for v in ("kid50k", "fid50k", "ppl_wend")]
    assert len(calls) == 1
    assert all(r.checkpoint_sha256 == hashlib.sha256(b"weights").hexdigest() for r in records)
    r = records[0]
    assert (r.model, r.checkpoint, r.params, r.num_samples, r.seed) == ("snap", str(ckpt), {"num_subsets": 100, "preset": "F-cpu32"}, 500, 3)
    assert r.extras == {"std": 0.002, "num_subsets": 100, "subset_size": 500, "num_real": 800}
    assert r.versions == prov.versions and "torch" in r.versions
    # The record round-trips through JSON and its extras back into the typed form.
    again = ResultRecord.from_dict(r.to_dict())
    assert KIDExtras.from_dict(again.extras) == KIDExtras(0.002, 100, 500, 800)


def test_in_memory_generator_has_no_checkpoint():
    r = Provenance.in_memory("mine").record(result())
    assert (r.model, r.checkpoint, r.checkpoint_sha256, r.params["preset"]) == ("mine", None, None, None)


def test_extras_from_dict_refuses_unknown_and_missing_keys():
    with pytest.raises(ValueError, match=r"KIDExtras: unknown extras \['stdev'\]"):
        extras_from_dict(KIDExtras, {"stdev": 0.1, "num_subsets": 1, "subset_size": 2, "num_real": 3})
    with pytest.raises(TypeError, match="std"):
        extras_from_dict(KIDExtras, {"num_subsets": 1, "subset_size": 2, "num_real": 3})
