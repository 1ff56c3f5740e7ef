import os
import pickle
import subprocess
import sys
import zipfile

import pytest
import torch

from stylegan_core import checkpoint as ck
from stylegan_core.errors import CheckpointError


def _state(config=None):
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(4, 3, generator=gen)
    param = torch.nn.Parameter(w.clone())
    opt = torch.optim.Adam([param], lr=0.001, betas=(0.0, 0.99), eps=1e-8)
    param.sum().backward()
    opt.step()
    return {
        "config": config or {"preset": "F-test16", "generator": {"z_dim": 8}, "training": {"seed": 1}},
        "progress": {"nimg": 640, "lod": 0.5},
        "G": {"w": w},
        "G_ema": {"w": w * 2},
        "D": {"v": torch.arange(5)},
        "optimizers": {"G": opt.state_dict()},
        "rng": {"latents": gen.get_state()},
    }


def test_round_trip_preserves_everything(tmp_path):
    state = _state()
    path = ck.save_checkpoint(tmp_path / "a.pt", state)
    back = ck.load_checkpoint(path)
    assert back["config"] == state["config"] and back["progress"] == state["progress"]
    assert torch.equal(back["G_ema"]["w"], state["G_ema"]["w"])
    assert torch.equal(back["D"]["v"], state["D"]["v"])
    # RNG state restores the exact stream.
    g1 = torch.Generator().set_state(back["rng"]["latents"])
    g2 = torch.Generator().set_state(state["rng"]["latents"])
    assert torch.equal(torch.randn(5, generator=g1), torch.randn(5, generator=g2))
    opt_state = back["optimizers"]["G"]
    assert opt_state["param_groups"][0]["betas"] == (0.0, 0.99)
    assert torch.equal(opt_state["state"][0]["exp_avg_sq"], state["optimizers"]["G"]["state"][0]["exp_avg_sq"])
    info = ck.checkpoint_info(path)
    assert info["preset"] == "F-test16" and info["progress"]["nimg"] == 640
    assert info["contents"] == ["D", "G", "G_ema", "optimizers", "rng"]


def test_run_folder_resolves_to_latest_snapshot(tmp_path):
    for nimg in (64, 1280, 640):
        state = _state()
        state["progress"] = {"nimg": nimg}
        ck.save_checkpoint(ck.snapshot_path(tmp_path, nimg), state)
    assert ck.latest_snapshot(tmp_path).name == "snapshot-0000001280.pt"
    assert ck.checkpoint_info(tmp_path)["progress"]["nimg"] == 1280
    assert [p.name for p in ck.list_snapshots(tmp_path)][0] == "snapshot-0000000064.pt"


def test_empty_run_folder_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match=r"folder holds no snapshot-\*\.pt snapshot"):
        ck.load_checkpoint(tmp_path)


class _Payload:
    """Pickling this object records a call that would create `marker` when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    # A real torch archive whose pickle carries a payload next to an otherwise valid checkpoint.
    evil = tmp_path / "evil.pt"
    torch.save({"format": ck.FORMAT, "format_version": 1, "config_json": "{}", "x": _Payload(marker)}, evil)
    assert b"system" in zipfile.ZipFile(evil).read("evil/data.pkl")
    for fn in (ck.load_checkpoint, ck.checkpoint_info, ck.load_generator):
        with pytest.raises(CheckpointError, match=r"evil\.pt: refused, it contains pickled Python objects"):
            fn(evil)
    assert not marker.exists()
    # A plain (non-zip) pickle with the payload is refused before unpickling.
    legacy = tmp_path / "evil.pkl"
    legacy.write_bytes(pickle.dumps({"x": _Payload(marker)}))
    with pytest.raises(CheckpointError, match=r"evil\.pkl: not a checkpoint \(not a PyTorch zip archive\)"):
        ck.load_checkpoint(legacy)
    assert not marker.exists()


def test_payload_really_runs_under_unsafe_load(tmp_path):
    """Guards the test above: the same file does create the marker when loaded unsafely."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"x": _Payload(marker)}, evil)
    torch.load(evil, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: None, r"missing\.pt: no such file"),
        (lambda p: p.write_text("hello"), r"bad\.pt: not a checkpoint \(not a PyTorch zip archive\)"),
        (lambda p: p.write_bytes(b""), r"bad\.pt: not a checkpoint"),
        (lambda p: torch.save({"w": torch.ones(3)}, p), r"bad\.pt: not a stylegan-eval checkpoint"),
        (lambda p: torch.save(torch.ones(3), p), r"bad\.pt: not a stylegan-eval checkpoint"),
        (
            lambda p: torch.save({"format": ck.FORMAT, "format_version": 99}, p),
            r"bad\.pt: format version 99, this program reads version 1",
        ),
        (
            lambda p: torch.save({"format": ck.FORMAT, "format_version": 1, "config_json": "{}", "progress_json": "{}"}, p),
            r"bad\.pt: missing keys \['G_ema'\]",
        ),
        (
            lambda p: torch.save(
                {"format": ck.FORMAT, "format_version": 1, "config_json": "{x", "progress_json": "{}", "G_ema": {}}, p
            ),
            r"bad\.pt: config is not valid JSON",
        ),
        (
            lambda p: torch.save(
                {"format": ck.FORMAT, "format_version": 1, "config_json": "{}", "progress_json": "{}", "G_ema": {}}, p
            ),
            r"bad\.pt: config has no 'generator' section",
        ),
    ],
)
def test_bad_files_get_one_line_errors(tmp_path, make, match):
    name = "missing.pt" if match.startswith("missing") else "bad.pt"
    path = tmp_path / name
    make(path)
    with pytest.raises(CheckpointError, match=match) as info:
        ck.load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_truncated_file_is_refused(tmp_path):
    path = ck.save_checkpoint(tmp_path / "t.pt", _state())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"t\.pt: unreadable \(truncated or corrupt\)") as info:
        ck.load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_save_refuses_bad_state(tmp_path):
    with pytest.raises(CheckpointError, match=r"missing keys \['G_ema'\] / unknown keys \['weights'\]"):
        ck.save_checkpoint(tmp_path / "x.pt", {"config": {"generator": {}}, "weights": {}})
    state = _state()
    state["progress"] = {"loss": float("nan")}
    with pytest.raises(CheckpointError, match="progress is not plain JSON data"):
        ck.save_checkpoint(tmp_path / "x.pt", state)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = ck.save_checkpoint(tmp_path / "c.pt", _state())
    before = path.read_bytes()

    def crash(obj, f, *a, **k):
        f.write(b"PK\x03\x04partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ck.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(path, _state())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_process_killed_mid_write_leaves_nothing_under_final_name(tmp_path):
    # A real crash: the process dies (os._exit, no cleanup) halfway through writing the archive.
    script = (
        "import os, sys, torch\n"
        "from stylegan_core import checkpoint as ck\n"
        "real_save = torch.save\n"
        "def dying_save(obj, f, *a, **k):\n"
        "    f.write(b'PK\\x03\\x04' + b'x' * 1000); f.flush(); os._exit(9)\n"
        "ck.torch.save = dying_save\n"
        "ck.save_checkpoint(sys.argv[1], {'config': {'generator': {}}, 'G_ema': {'w': torch.ones(100)}})\n"
    )
    final = tmp_path / "final.pt"
    proc = subprocess.run([sys.executable, "-c", script, str(final)], capture_output=True, timeout=120)
    assert proc.returncode == 9
    assert not final.exists()
    leftovers = list(tmp_path.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".final.pt.") and leftovers[0].name.endswith(".tmp")


def _tiny_generator(lod=0.0):
    from stylegan_core.generator import Generator
    from stylegan_core.presets import get_preset

    G = Generator(get_preset("F-test16").generator, seed=5)
    with torch.no_grad():
        for p in G.parameters():  # move away from the initial values so the test means something
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
        G.mapping.w_avg.normal_(generator=torch.Generator().manual_seed(1))
    G.synthesis.set_lod(lod)
    return G


def test_load_generator_reproduces_images_bit_for_bit(tmp_path):
    G = _tiny_generator(lod=0.5)
    path = ck.save_generator(tmp_path / "g.pt", G, preset="F-test16")
    G2 = ck.load_generator(path)
    assert not G2.training and not any(p.requires_grad for p in G2.parameters())
    assert float(G2.synthesis.lod) == 0.5
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = G.eval()(z, truncation_psi=0.7, noise_mode="const")
        b = G2(z, truncation_psi=0.7, noise_mode="const")
    assert torch.equal(a, b)
    assert ck.checkpoint_info(path)["preset"] == "F-test16"


def test_load_generator_refuses_mismatched_weights(tmp_path):
    from stylegan_core.presets import get_preset

    G = _tiny_generator()
    state = {"config": {"preset": "F-cpu32", "generator": get_preset("F-cpu32").generator.to_dict()},
             "G_ema": G.state_dict()}
    ck.save_checkpoint(tmp_path / "m.pt", state)
    with pytest.raises(CheckpointError, match=r"m\.pt: G_ema weights do not fit its generator config") as info:
        ck.load_generator(tmp_path / "m.pt")
    assert "\n" not in str(info.value)
    bad_cfg = {"config": {"generator": {"mapping": {"z_dim": 8, "colour": 1}}}, "G_ema": {}}
    ck.save_checkpoint(tmp_path / "c.pt", bad_cfg)
    with pytest.raises(CheckpointError, match=r"c\.pt: invalid generator config .*unknown key"):
        ck.load_generator(tmp_path / "c.pt")
