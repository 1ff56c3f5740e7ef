"""Test-wide settings: never reach the network, keep torch to the machine's cores, and keep
every test's torch hub cache private."""

import os

import pytest
import torch

os.environ["STYLEGAN_EVAL_OFFLINE"] = "1"
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty, private TORCH_HOME; tests write stand-in weight files into it."""
    home = tmp_path / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home
