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


def load_checkpoint_generator(ckpt: str, label: str | None, device) -> LoadedGenerator:
    """What every metric command does with --ckpt and --label."""
    from stylegan_core.checkpoint import checkpoint_info, load_generator

    info = checkpoint_info(ckpt)
    path, given = Path(info["path"]), Path(ckpt)
    return LoadedGenerator(
        G=load_generator(path, device=device),
        checkpoint=str(path),
        label=label or (given.name if given.is_dir() else path.stem),
        preset=info["preset"],
    )
