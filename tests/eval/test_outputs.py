import errno
import json
import os
import tempfile

import pytest

from stylegan_eval.outputs import OutputError, check_output_dir, check_output_file, describe_os_error


def test_a_writable_new_file_passes_and_leaves_nothing_behind(tmp_path):
    assert check_output_file(tmp_path / "new" / "deeper" / "grid.png", "--out") == tmp_path / "new" / "deeper" / "grid.png"
    assert list(tmp_path.iterdir()) == []  # neither the folders nor the probe file were left


@pytest.mark.parametrize("existing, ok", [("refuse", False), ("overwrite", True)])
def test_an_existing_file_needs_overwrite(tmp_path, existing, ok):
    path = tmp_path / "d.npy"
    path.write_bytes(b"x")
    if ok:
        check_output_file(path, "--save-dists", existing)
    else:
        with pytest.raises(OutputError, match=r"^--save-dists .*d\.npy: exists; pass --overwrite"):
            check_output_file(path, "--save-dists", existing)
    assert path.read_bytes() == b"x"


def test_results_are_appended_only_to_empty_or_results_files(tmp_path):
    empty, good, other = tmp_path / "empty.jsonl", tmp_path / "good.jsonl", tmp_path / "other.jsonl"
    empty.write_text("")
    good.write_text(json.dumps({"metric": "fid", "record_version": 1}) + "\n")
    other.write_text(json.dumps({"nimg": 0}) + "\n")
    check_output_file(empty, "--results", "append")
    check_output_file(good, "--results", "append")
    with pytest.raises(OutputError, match="is not a results file"):
        check_output_file(other, "--results", "append")


def test_folders_and_files_in_the_wrong_place(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match=r"--out .*: is a folder; give a file name inside it"):
        check_output_file(tmp_path, "--out")
    with pytest.raises(OutputError, match=r"--out .*f/x/y.png: .*/f is a file, not a folder"):
        check_output_file(tmp_path / "f" / "x" / "y.png", "--out")
    with pytest.raises(OutputError, match=r"--out .*/f: is a file, not a folder"):
        check_output_dir(tmp_path / "f", "--out")
    assert check_output_dir(tmp_path / "new" / "rep", "--out") == tmp_path / "new" / "rep"
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("err, text", [(errno.EROFS, "read-only file system"), (errno.ENOSPC, "no space left"),
                                       (errno.EACCES, "permission denied")])
def test_an_unwritable_folder_is_found_by_a_real_write(tmp_path, monkeypatch, err, text):
    def refuse(*args, **kw):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match=rf"--results .*r.jsonl: cannot write in {tmp_path}: {text}"):
        check_output_file(tmp_path / "r.jsonl", "--results", "append")
    with pytest.raises(OutputError, match=text):
        check_output_dir(tmp_path / "rep", "--out")


def test_os_errors_read_as_one_line_with_the_path_and_the_fix():
    assert describe_os_error(OSError(errno.ENOTDIR, "Not a directory", "/a/b")) == (
        "/a/b: a part of this path is a file, not a folder; fix the path")
    assert describe_os_error(OSError(errno.EISDIR, "Is a directory"), "x") == "x: is a folder, not a file; give a file name"
    assert describe_os_error(OSError(errno.EIO, "Input/output error", "/d")) == "/d: Input/output error"
