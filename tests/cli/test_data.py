import numpy as np

from stylegan_core.attributes import read_attributes
from stylegan_eval.cli import main


def test_synth_then_info(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["data", "synth", "--out", str(out), "--num", "6", "--resolution", "16", "--seed", "2"]) == 0
    assert "wrote 6 images 16x16" in capsys.readouterr().out
    assert len(list((out / "images").glob("*.png"))) == 6
    assert read_attributes(out / "list_attr.txt").values.shape == (6, 10)

    assert main(["data", "info", str(out), "--attributes", str(out / "attributes.csv")]) == 0
    text = capsys.readouterr().out
    assert "6 images 16x16 RGB" in text and "Wearing_Hat" in text and "fingerprint: " in text


def test_synth_replaces_only_its_own_folders_and_only_with_overwrite(tmp_path, capsys):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "mine.txt").write_text("x")
    for extra in ([], ["--overwrite"]):
        assert main(["data", "synth", "--out", str(out), "--num", "2", "--resolution", "16", *extra]) == 2
        err = capsys.readouterr().err
        assert "error:" in err and "is not a synthetic dataset" in err and len(err.strip().splitlines()) == 1
    assert (out / "mine.txt").read_text() == "x"
    ours = tmp_path / "ours"
    assert main(["data", "synth", "--out", str(ours), "--num", "2", "--resolution", "16"]) == 0
    assert main(["data", "synth", "--out", str(ours), "--num", "3", "--resolution", "16"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["data", "synth", "--out", str(ours), "--num", "3", "--resolution", "16", "--overwrite"]) == 0
    assert len(list((ours / "images").iterdir())) == 3


def test_info_reports_bad_images_and_sizes(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(tmp_path / "wide.png")
    (tmp_path / "broken.png").write_bytes(b"broken")
    assert main(["data", "info", str(tmp_path)]) == 2
    assert "broken.png" in capsys.readouterr().err
    assert main(["data", "info", str(tmp_path), "--skip-bad-images"]) == 2
    assert "wide.png is 12x8" in capsys.readouterr().err
    args = ["data", "info", str(tmp_path), "--skip-bad-images", "--fit", "center-crop", "--resolution", "8"]
    assert main(args) == 0
    assert "1 unreadable skipped" in capsys.readouterr().out


def test_help_has_examples(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["data", "synth", "--help"])
    text = capsys.readouterr().out
    assert "--resolution" in text and "example" in text and "(default: 20000)" in text
