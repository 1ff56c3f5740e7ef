"""Test-wide settings: never reach the network, one torch thread per process, and keep every
test's torch hub cache private."""

import os

# One thread per process (inherited by the torchrun/subprocess tests through the environment):
# the tests' tensors are tiny, and two-process tests on a 2-core machine would otherwise run four
# competing threads, which measured 3-30x slower than one thread each.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["STYLEGAN_EVAL_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty, private TORCH_HOME; tests write stand-in weight files into it."""
    home = tmp_path / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home
