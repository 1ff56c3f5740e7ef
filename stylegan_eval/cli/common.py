"""Argument groups and value types shared by several sub-commands, so each option means one
thing everywhere and a bad value is refused while parsing, in one line, before any work."""

import argparse
import json
import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Seeds are NumPy RandomState seeds in `generate` (the official scripts' latents), whose range is
# 0 .. 2**32 - 1; every command takes the same range so a seed means the same everywhere.
MAX_SEED = 2**32 - 1


def seed_value(text: str) -> int:
    """A seed: an integer in 0 .. 2**32 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}; use an integer 0..{MAX_SEED}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed {value} is out of range; use an integer 0..{MAX_SEED}")
    return value


def int_at_least(minimum: int):
    """An argparse type: an integer >= minimum."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def finite_float(text: str) -> float:
    """A float that is not NaN or infinite (argparse's float accepts 'nan' and 'inf')."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def float_at_least(minimum: float, inclusive: bool = True):
    """An argparse type: a finite float >= minimum (> minimum when not inclusive)."""

    def parse(text: str) -> float:
        value = finite_float(text)
        if value < minimum or (not inclusive and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {'at least' if inclusive else 'more than'} {minimum:g}, got {text}")
        return value

    parse.__name__ = f"number {'>=' if inclusive else '>'} {minimum:g}"
    return parse


def device_value(text: str) -> str:
    """'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', refused at once when this machine lacks it
    (torch would fail later, after the checkpoint and weights were loaded)."""
    if text == "auto":
        return text
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cpu":
        return text
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text}: no CUDA GPU is available to this PyTorch; use --device cpu (or auto)")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise argparse.ArgumentTypeError(f"{text}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}")
        return text
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise argparse.ArgumentTypeError(f"{text}: Apple MPS is not available here; use --device cpu (or auto)")
        return text
    raise argparse.ArgumentTypeError(f"unsupported device {text!r}; use auto, cpu, cuda, cuda:N or mps")


def add_device(p) -> None:
    p.add_argument("--device", type=device_value, default="auto",
                   help="'auto' (this rank's GPU if any, else CPU), 'cpu', 'cuda', 'cuda:1', ...")


def add_seed(p: argparse.ArgumentParser, default: int = 0) -> None:
    p.add_argument("--seed", type=seed_value, default=default, help="sample i depends only on (seed, i)")


def add_overwrite(p: argparse.ArgumentParser, what: str = "output files") -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace existing {what} (refused otherwise)")


def add_output(p: argparse.ArgumentParser) -> None:
    """--json and --results, for commands that produce a result record."""
    p.add_argument("--json", action="store_true", help="print the full result record as JSON")
    p.add_argument("--results", metavar="FILE", help="append the result record as one JSON line to FILE "
                   "(created, or an existing results file)")


def check_results(args: argparse.Namespace) -> None:
    """--results can be appended to (checked before the work starts)."""
    from stylegan_eval.outputs import check_output_file

    if args.results:
        check_output_file(args.results, "--results", existing="append")


def add_substitute(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--substitute-weights",
        action="store_true",
        help="if the pretrained backbone weights are absent, use seeded random weights instead; "
        "the result is labelled SUBSTITUTE everywhere and is not comparable with the paper",
    )


def emit_record(args: argparse.Namespace, record, summary: str) -> None:
    """Print the record (human line or JSON) and append it to --results; rank 0 only."""
    from stylegan_core import distributed
    from stylegan_eval.records import append_jsonl

    if not distributed.is_main():
        return
    if args.json:
        print(json.dumps(record.to_dict(), indent=2, sort_keys=True))
    else:
        print(summary)
    if record.feature_network is not None and record.feature_network.substitute:
        print(
            f"WARNING: measured with SUBSTITUTE weights ({record.feature_network.weights}); "
            "not comparable with published numbers.",
            file=sys.stderr,
        )
    if args.results:
        append_jsonl(args.results, record)


def add_label(p: argparse.ArgumentParser) -> None:
    p.add_argument("--label", help="model name in the record (default: the checkpoint's stem or run folder)")


@dataclass(frozen=True)
class LoadedGenerator:
    G: object  # the EMA generator, eval mode, on the requested device
    checkpoint: str  # the snapshot file actually loaded (a run folder resolves to its latest)
    label: str  # --label, else the run folder's name, else the file's stem
    preset: str | None  # the preset name stored in the checkpoint


def load_checkpoint_generator(ckpt: str, label: str | None, device, trust_pickle_code: bool = False,
                              class_idx: int | None = None) -> LoadedGenerator:
    """What every metric command does with --ckpt and --label (and --trust-pickle-code, --class)."""
    from stylegan_core.checkpoint import checkpoint_info, load_generator
    from stylegan_core.errors import ConfigError
    from stylegan_core.formats.nvlabs_torch import is_nvlabs_torch_pickle

    if is_nvlabs_torch_pickle(ckpt):
        G = load_generator(ckpt, device=device, trust_pickle_code=trust_pickle_code, class_idx=class_idx)
        stem = Path(ckpt).stem if class_idx is None else f"{Path(ckpt).stem}-class{class_idx}"
        return LoadedGenerator(G=G, checkpoint=str(ckpt), label=label or stem, preset=None)
    if class_idx is not None:
        raise ConfigError(f"--class picks the label of a conditional NVlabs pickle; {ckpt} is not one")
    info = checkpoint_info(ckpt)
    path, given = Path(info["path"]), Path(ckpt)
    return LoadedGenerator(
        G=load_generator(path, device=device),
        checkpoint=str(path),
        label=label or (given.name if given.is_dir() else path.stem),
        preset=info["preset"],
    )


# ---------------------------------------------------------------------------------------------
# The model a command measures: --ckpt (project checkpoint, run folder, NVlabs pickle) or --generator.

CKPT_HELP = ("checkpoint file or run folder (its latest snapshot); an official StyleGAN (TensorFlow) .pkl, read as "
             "data; or an NVlabs StyleGAN2-ADA / StyleGAN3 .pkl (runs only with --trust-pickle-code)")


def add_model_source(p, group=None) -> None:
    """--ckpt | --generator (exactly one, in `group` if given, e.g. fid's --ckpt | --gen-folder),
    --trust-pickle-code and --class."""
    src = group if group is not None else p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", metavar="PATH", help=CKPT_HELP)
    src.add_argument(
        "--generator", metavar="MODULE:CALLABLE",
        help="IMPORTS AND RUNS that Python module (e.g. mypkg.models:make_generator or path/to/file.py:make); the "
        "callable, called without arguments, returns a generator honouring stylegan_core.GeneratorInterface",
    )
    p.add_argument(
        "--trust-pickle-code", action="store_true",
        help="run an NVlabs StyleGAN2-ADA / StyleGAN3 .pkl given as --ckpt: this EXECUTES the Python code stored in "
        "the file; needs that repository (dnnlib/, torch_utils/) on PYTHONPATH",
    )
    p.add_argument("--class", dest="class_idx", type=int, metavar="K", help="class label of a conditional NVlabs generator")


def load_generator_option(args: argparse.Namespace, device) -> LoadedGenerator:
    """The model of --generator, or of --ckpt (with --trust-pickle-code and --class), labelled by --label."""
    label = getattr(args, "label", None)
    if getattr(args, "generator", None):
        from stylegan_core.interface import generator_from_callable

        if args.class_idx is not None:
            from stylegan_core.errors import ConfigError

            raise ConfigError("--class picks the label of a conditional NVlabs pickle; it does not apply to --generator")
        return LoadedGenerator(G=generator_from_callable(args.generator, device), checkpoint=None,
                               label=label or args.generator, preset=None)
    return load_checkpoint_generator(args.ckpt, label, device, args.trust_pickle_code, args.class_idx)
@contextmanager
def dataset_hints(skip: str | None, fit: str | None, resolution: str | None):
    """Re-word the dataset library's fixes (its parameter names) with this command's options.

    skip: the option that skips unreadable images (None: the command has none);
    fit: the option that resizes or crops; resolution: the option giving the size (None: the
    model fixes it, as in train and fid).
    """
    from stylegan_core.data import ImageProblemError
    from stylegan_core.errors import DatasetError

    try:
        yield
    except ImageProblemError as e:
        if e.remedy == "skip":
            fix = f"fix or remove it, or pass {skip} to skip unreadable images" if skip else "fix or remove it"
        elif fit:
            fix = f"pass {fit} resize or {fit} center-crop" + (f" with {resolution} N" if resolution else "")
        else:
            fix = "resize or crop the images to one square power-of-two size first"
        raise DatasetError(f"{e.detail}; {fix}") from None
