"""Training snapshots as one file of plain tensors and JSON, loaded without running code.

A checkpoint is a `torch.save` zip archive holding a dict of state dicts (G, G_ema, D),
optimiser state dicts, RNG states (`torch.Generator.get_state()` byte tensors), and the run's
config and progress serialised as JSON text. It never contains pickled classes or code (unlike
the official StyleGAN `.pkl` snapshots, which pickle the network source): loading uses
`torch.load(weights_only=True)`, whose unpickler refuses anything but tensors and plain
containers, so a file carrying a payload is rejected before the payload can run.

Writing is atomic: the archive goes to a temporary file in the destination folder, is fsynced,
then `os.replace`d onto the final name, so a crash never leaves a truncated file there.

File layout (format version 1):
    format          "stylegan-eval-checkpoint"
    format_version  1
    config_json     {"preset": str|None, "generator": {...}, "discriminator": {...}?, ...}
    progress_json   {"nimg": int, "lod": float, ...} (whatever the trainer records; {} if none)
    G_ema           state dict (required: `load_generator` builds from it)
    G, D            state dicts (training snapshots)
    optimizers      {"G": optimiser state dict, "D": ...}
    rng             {name: uint8 tensor from torch.Generator.get_state()}
"""

import json
import os
from pathlib import Path
from typing import Any

import torch

from stylegan_core.atomic import atomic_open
from stylegan_core.errors import CheckpointError, ConfigError
from stylegan_core.formats.official_tf import is_official_pickle

FORMAT = "stylegan-eval-checkpoint"
FORMAT_VERSION = 1
# Keys a caller may put in the state passed to `save_checkpoint`; "config" and "G_ema" are required.
REQUIRED_KEYS = ("config", "G_ema")
OPTIONAL_KEYS = ("progress", "G", "D", "optimizers", "rng")
SNAPSHOT_PREFIX = "snapshot-"
SNAPSHOT_SUFFIX = ".pt"


def snapshot_path(run_dir: str | os.PathLike, nimg: int) -> Path:
    """The file name of the snapshot taken after `nimg` training images, in `run_dir`."""
    return Path(run_dir) / f"{SNAPSHOT_PREFIX}{nimg:010d}{SNAPSHOT_SUFFIX}"


def list_snapshots(run_dir: str | os.PathLike) -> list[Path]:
    """The snapshots in `run_dir`, oldest (fewest images) first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = []
    for p in run_dir.glob(f"{SNAPSHOT_PREFIX}*{SNAPSHOT_SUFFIX}"):
        digits = p.name[len(SNAPSHOT_PREFIX) : -len(SNAPSHOT_SUFFIX)]
        if digits.isdigit():
            found.append((int(digits), p))
    return [p for _, p in sorted(found)]


def latest_snapshot(run_dir: str | os.PathLike) -> Path | None:
    snaps = list_snapshots(run_dir)
    return snaps[-1] if snaps else None


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run folder meaning its latest snapshot."""
    path = Path(path)
    if path.is_dir():
        latest = latest_snapshot(path)
        if latest is None:
            raise CheckpointError(f"checkpoint {path}: folder holds no {SNAPSHOT_PREFIX}*{SNAPSHOT_SUFFIX} snapshot")
        return latest
    return path


def _json_text(what: str, value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {what} is not plain JSON data: {e}") from None


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write `state` to `path` atomically (temp file in the same folder, fsync, rename).

    `state` holds "config" (JSON-able dict with at least "generator"; "preset" recommended) and
    "G_ema" (state dict), optionally "progress" (JSON-able dict), "G", "D" (state dicts),
    "optimizers" (dict of optimiser state dicts) and "rng" (dict of uint8 tensors).
    Returns the path written.
    """
    path = Path(path)
    unknown = sorted(set(state) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if unknown or missing:
        raise CheckpointError(f"checkpoint {path}: cannot save state with missing keys {missing} / unknown keys {unknown}")
    if not isinstance(state["config"], dict) or "generator" not in state["config"]:
        raise CheckpointError(f"checkpoint {path}: config must be a dict with a 'generator' entry")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config_json": _json_text("config", state["config"]),
        "progress_json": _json_text("progress", state.get("progress", {})),
    }
    for key in ("G", "G_ema", "D", "optimizers", "rng"):
        if key in state:
            payload[key] = state[key]
    with atomic_open(path) as f:
        torch.save(payload, f)
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; some platforms cannot open folders, which is harmless."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_payload(path: Path, mmap: bool) -> dict:
    if not path.exists():
        raise CheckpointError(f"checkpoint {path}: no such file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: not a regular file")
    with open(path, "rb") as f:
        magic = f.read(4)
    # torch.save writes a zip archive; anything else (legacy pickles, images, text) is refused
    # before any unpickling happens.
    if magic != b"PK\x03\x04":
        raise CheckpointError(f"checkpoint {path}: not a checkpoint (not a PyTorch zip archive)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:  # torch raises many types for corrupt archives; each becomes one line
        text = str(e)
        if "Weights only load failed" in text:
            raise CheckpointError(
                f"checkpoint {path}: refused, it contains pickled Python objects other than tensors "
                "and plain data (possibly code); nothing from it was run"
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else ""
        raise CheckpointError(
            f"checkpoint {path}: unreadable (truncated or corrupt): {type(e).__name__}: {first[:160]}"
        ) from None
    return payload


def _decode(path: Path, payload: Any) -> dict:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: not a stylegan-eval checkpoint (no '{FORMAT}' marker)")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path}: format version {version!r}, this program reads version {FORMAT_VERSION}"
        )
    missing = [k for k in ("config_json", "progress_json", *REQUIRED_KEYS[1:]) if k not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path}: missing keys {missing}")
    state: dict = {}
    for key in ("config", "progress"):
        try:
            state[key] = json.loads(payload[f"{key}_json"])
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"checkpoint {path}: {key} is not valid JSON ({e})") from None
        if not isinstance(state[key], dict):
            raise CheckpointError(f"checkpoint {path}: {key} is not a JSON object")
    if not isinstance(state["config"].get("generator"), dict):
        raise CheckpointError(f"checkpoint {path}: config has no 'generator' section")
    preset = state["config"].get("preset")
    if preset is not None:
        from stylegan_core.presets import PRESETS

        # The name decides published comparisons and --resume's networks: an unknown one is refused, not guessed.
        if not isinstance(preset, str) or preset not in PRESETS:
            raise CheckpointError(f"checkpoint {path}: unknown preset {preset!r} in its config (known: "
                                  f"{', '.join(PRESETS)}); it was not written by this stylegan-eval, or was edited")
    for key in ("G", "G_ema", "D", "optimizers", "rng"):
        if key in payload:
            if not isinstance(payload[key], dict):
                raise CheckpointError(f"checkpoint {path}: '{key}' is not a dict")
            state[key] = payload[key]
    return state


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint (or a run folder's latest snapshot) without executing code.

    Returns {"config": dict, "progress": dict, "G_ema": state dict, and whichever of "G", "D",
    "optimizers", "rng" the file holds}; tensors are on the CPU.
    Raises CheckpointError (one line naming the file) for anything unusable.
    """
    path = resolve_checkpoint(path)
    return _decode(path, _read_payload(path, mmap=False))


def checkpoint_info(path: str | os.PathLike) -> dict:
    """Config and progress of a checkpoint without reading its weights into memory.

    Returns {"path", "preset", "config", "progress", "format_version", "contents"}. For an
    official StyleGAN TF pickle: the configs it maps to, "format" and its truncation defaults.
    """
    path = resolve_checkpoint(path)
    if is_official_pickle(path):
        from stylegan_core.formats.official_tf_networks import official_checkpoint_info

        return official_checkpoint_info(path)
    state = _decode(path, _read_payload(path, mmap=True))
    return {
        "path": str(path),
        "preset": state["config"].get("preset"),
        "config": state["config"],
        "progress": state["progress"],
        "format_version": FORMAT_VERSION,
        "contents": sorted(k for k in state if k not in ("config", "progress")),
    }


def is_project_checkpoint(path: str | os.PathLike) -> bool:
    """Whether `path` is a zip archive as `torch.save` writes it (checked by content)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _resolution(config: dict, key: str):
    section = config.get("discriminator") if key == "D" else config.get("generator", {}).get("synthesis")
    return section.get("resolution") if isinstance(section, dict) else None


def describe_checkpoint(path: str | os.PathLike):
    """A `FileDescription` of a project checkpoint: its networks, sizes and progress."""
    from stylegan_core.discriminator import Discriminator, DiscriminatorConfig
    from stylegan_core.formats.description import FileDescription, NetworkDescription
    from stylegan_core.formats.official_tf import file_sha256

    path = resolve_checkpoint(path)
    state = load_checkpoint(path)
    config, nets = state["config"], []
    for key in ("G_ema", "G", "D"):
        if key not in state:
            continue
        module = None
        try:
            if key == "D" and isinstance(config.get("discriminator"), dict):
                module = Discriminator(DiscriminatorConfig.from_dict(config["discriminator"]))
            elif key != "D":
                module = _generator_from_config(path, config)
        except (CheckpointError, TypeError, ValueError):
            module = None
        names = {n for n, _ in module.named_parameters()} if module is not None else set(state[key])
        tensors = {k: v for k, v in state[key].items() if isinstance(v, torch.Tensor)}
        nets.append(NetworkDescription(
            name=key, kind="Discriminator" if key == "D" else "Generator",
            parameters=sum(v.numel() for k, v in tensors.items() if k in names),
            buffers=sum(v.numel() for k, v in tensors.items() if k not in names),
            details={"resolution": _resolution(config, key)}))
    facts = {"preset": config.get("preset"), "images_shown": state["progress"].get("nimg")}
    if "truncation_defaults" in config:
        facts |= {f"truncation_{k}": v for k, v in config["truncation_defaults"].items()}
    if isinstance(config.get("source"), dict):
        facts["converted_from"] = config["source"].get("format")
    return FileDescription(path=str(path), format=FORMAT, sha256=file_sha256(path), size_bytes=path.stat().st_size,
                           networks=tuple(nets), facts=facts,
                           notes=("loads with torch.load(weights_only=True): tensors and JSON only",))


def _generator_from_config(path: Path, config: dict):
    from stylegan_core.generator import Generator, GeneratorConfig

    try:
        gen_config = GeneratorConfig.from_dict(config["generator"])
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint {path}: invalid generator config ({e})") from None
    return Generator(gen_config)


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu", *,
                   trust_pickle_code: bool = False, class_idx: int | None = None):
    """The EMA generator of a checkpoint (or a run folder's latest snapshot), in eval mode on
    `device`, with gradients disabled; at the level of detail (lod) it was saved with.

    An official StyleGAN TF pickle (recognised by content) gives its Gs, read as data only.
    An NVlabs StyleGAN2-ADA / StyleGAN3 pickle runs only with trust_pickle_code=True (it EXECUTES
    the code stored in the file) and returns its G_ema adapted to the generator interface
    (class_idx: the label of a conditional model); without it, one line says what the file is."""
    path = resolve_checkpoint(path)
    if is_official_pickle(path):
        from stylegan_core.formats.official_tf_networks import load_official_generator

        return load_official_generator(path).to(device)
    from stylegan_core.formats.nvlabs_torch import is_nvlabs_torch_pickle, load_nvlabs_generator

    if is_nvlabs_torch_pickle(path):
        return load_nvlabs_generator(path, trust_pickle_code, class_idx, device)
    state = load_checkpoint(path)
    G = _generator_from_config(path, state["config"])
    try:
        G.load_state_dict(state["G_ema"], strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])[:300]
        raise CheckpointError(f"checkpoint {path}: G_ema weights do not fit its generator config: {detail}") from None
    lod = float(G.synthesis.lod)
    if not 0.0 <= lod <= G.synthesis.max_lod:  # NaN fails too; a bad lod would blend garbage silently
        raise CheckpointError(f"checkpoint {path}: level of detail (lod buffer) is {lod}, outside [0, "
                              f"{G.synthesis.max_lod}]; the file is corrupt, use another snapshot")
    return G.to(device).eval().requires_grad_(False)


def load_discriminator(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """The discriminator D of a training checkpoint (or run folder), or of an official StyleGAN
    TF pickle, in eval mode on `device` with gradients disabled."""
    from stylegan_core.discriminator import Discriminator, DiscriminatorConfig

    path = resolve_checkpoint(path)
    if is_official_pickle(path):
        from stylegan_core.formats.official_tf_networks import load_official_discriminator

        return load_official_discriminator(path).to(device)
    state = load_checkpoint(path)
    if "D" not in state or not isinstance(state["config"].get("discriminator"), dict):
        raise CheckpointError(f"checkpoint {path}: holds no discriminator (a generator-only checkpoint)")
    try:
        D = Discriminator(DiscriminatorConfig.from_dict(state["config"]["discriminator"]))
        D.load_state_dict(state["D"], strict=True)
    except (TypeError, ValueError, KeyError, RuntimeError) as e:
        detail = " ".join(str(e).strip().splitlines()[:2])[:300]
        raise CheckpointError(f"checkpoint {path}: discriminator config or weights unusable: {detail}") from None
    return D.to(device).eval().requires_grad_(False)


def save_generator(path: str | os.PathLike, G, preset: str | None = None) -> Path:
    """Write a generator-only checkpoint (G_ema = `G`), e.g. to evaluate a model not trained here."""
    config = {"preset": preset, "generator": G.config.to_dict()}
    state_dict = {k: v.detach().cpu() for k, v in G.state_dict().items()}
    return save_checkpoint(path, {"config": config, "G_ema": state_dict, "progress": {}})


# ---------------------------------------------------------------------------------------------
# Run folders: run.json (the run's configuration), stats.jsonl, snapshots.

RUN_FILE = "run.json"
STATS_FILE = "stats.jsonl"


def saved_run_config(run_dir: str | os.PathLike) -> dict:
    """The configuration of the run in `run_dir`: its latest snapshot's, else run.json's."""
    run_dir = Path(run_dir)
    snap = latest_snapshot(run_dir)
    if snap is not None:
        return checkpoint_info(snap)["config"]
    if (run_dir / RUN_FILE).is_file():
        try:
            return json.loads((run_dir / RUN_FILE).read_text())
        except ValueError as e:
            raise ConfigError(f"{run_dir / RUN_FILE}: not valid JSON ({e})") from None
    raise ConfigError(f"nothing to resume in {run_dir}: no {RUN_FILE} or snapshot there")


def _config_diff(saved: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(saved) | set(new), key=lambda k: (k != "preset", k)):  # the preset first
        a, b = saved.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def check_run_folder(run_dir: str | os.PathLike, run_config: dict, resume: bool, may_change: tuple[str, ...] = ()) -> Path | None:
    """Refuse to overwrite a run, or to resume one whose configuration differs from `run_config`
    in anything but the dotted keys `may_change`; returns the snapshot to resume from (or None)."""
    run_dir = Path(run_dir)
    holds = [p.name for p in (run_dir / RUN_FILE, run_dir / STATS_FILE) if p.exists()]
    snaps = list_snapshots(run_dir)
    if not resume:
        if holds or snaps:
            raise ConfigError(
                f"run folder {run_dir} already holds a run ({', '.join(holds + [s.name for s in snaps[-1:]])}); "
                "pass --resume to continue it, or choose a new --out folder"
            )
        return None
    saved, new = json.loads(json.dumps(saved_run_config(run_dir))), json.loads(json.dumps(run_config))
    for dotted in may_change:
        *parents, leaf = dotted.split(".")
        for cfg in (saved, new):
            for part in parents:
                cfg = cfg.get(part, {}) if isinstance(cfg, dict) else {}
            if isinstance(cfg, dict):
                cfg.pop(leaf, None)
    diff = _config_diff(saved, new)
    if diff:
        shown = "; ".join(diff[:4]) + (f"; and {len(diff) - 4} more" if len(diff) > 4 else "")
        raise ConfigError(
            f"run folder {run_dir} holds a run with a different configuration ({shown}); "
            "resume with the same options, or choose a new --out folder"
        )
    return snaps[-1] if snaps else None


def write_run_file(run_dir: str | os.PathLike, run_config: dict) -> Path:
    """Write run.json atomically (creating the folder)."""
    path = Path(run_dir) / RUN_FILE
    with atomic_open(path) as f:
        f.write((json.dumps(run_config, indent=2, sort_keys=True) + "\n").encode())
    return path


def trim_stats(run_dir: str | os.PathLike, nimg: int) -> None:
    """On resume, drop statistics logged after the snapshot at `nimg` (they are produced again).

    Appends are not atomic: a kill mid-write leaves a torn line. Such lines (not a JSON object
    with an integer "nimg") are dropped with a warning, never a reason to refuse the resume.
    """
    path = Path(run_dir) / STATS_FILE
    if not path.exists():
        return
    kept, torn = [], 0
    for raw in path.read_bytes().splitlines():
        try:
            row = json.loads(raw.decode("utf-8")) if raw.strip() else None
        except ValueError:  # UnicodeDecodeError too
            row = None
        if row is None and not raw.strip():
            continue
        if not (isinstance(row, dict) and isinstance(row.get("nimg"), int)):
            torn += 1
            continue
        if row["nimg"] <= nimg:
            kept.append(raw.decode("utf-8"))
    if torn:
        import warnings

        warnings.warn(f"{path}: dropped {torn} unreadable line(s) (a write cut off by a kill); training resumes",
                      RuntimeWarning, stacklevel=2)
    with atomic_open(path) as f:
        f.write("".join(line + "\n" for line in kept).encode())
