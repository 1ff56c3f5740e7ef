"""Argument groups shared by several sub-commands, so each option means one thing everywhere."""

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="'auto' (this rank's GPU if any, else CPU), 'cpu', 'cuda', 'cuda:1', ...")


def add_seed(p: argparse.ArgumentParser, default: int = 0) -> None:
    p.add_argument("--seed", type=int, default=default, help="sample i depends only on (seed, i)")


def add_output(p: argparse.ArgumentParser) -> None:
    """--json and --results, for commands that produce a result record."""
    p.add_argument("--json", action="store_true", help="print the full result record as JSON")
    p.add_argument("--results", metavar="FILE", help="append the result record as one JSON line to FILE")


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
