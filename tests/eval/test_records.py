import json
import math

import pytest

from stylegan_core.errors import UserError
from stylegan_eval.records import FeatureNetwork, ResultRecord, append_jsonl, read_jsonl


def make(value=1.5):
    return ResultRecord(
        metric="ppl_wend", value=value, params={"space": "w"}, num_samples=10, seed=0, model="tiny",
        checkpoint=None, checkpoint_sha256=None,
        feature_network=FeatureNetwork("lpips-vgg16-v0.1", "substitute:random", True), wall_time_s=0.1,
    )


def test_round_trip_through_jsonl(tmp_path):
    path = tmp_path / "r.jsonl"
    append_jsonl(path, make(1.0))
    append_jsonl(path, make(2.0))
    got = read_jsonl(path)
    assert [r.value for r in got] == [1.0, 2.0]
    assert got[0].feature_network.substitute is True
    assert "torch" in got[0].versions


def test_non_finite_value_refused():
    with pytest.raises(ValueError, match="non-finite"):
        make(math.nan)


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "r.jsonl"
    append_jsonl(path, make())
    with open(path, "a") as f:
        f.write(json.dumps({"metric": "x"}) + "\n")
    with pytest.raises(UserError, match=r"r.jsonl:2: not a result record"):
        read_jsonl(path)
