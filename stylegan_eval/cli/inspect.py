"""`stylegan-eval inspect FILE`: what a model file is (format, networks, resolution, parameter
counts, truncation defaults, SHA-256), read as data: nothing from the file is run."""

import argparse
import json

from stylegan_eval.cli import HelpFormatter

EPILOG = """examples:
  stylegan-eval inspect karras2019stylegan-ffhq-1024x1024.pkl
  stylegan-eval inspect runs/F-cpu32 --json
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="describe a checkpoint or model pickle without running it",
        description="Print a model file's format, its networks with parameter counts, resolution, "
        "truncation defaults and SHA-256. Official StyleGAN pickles are read by a restricted "
        "unpickler (numpy arrays only); their embedded source code is never executed.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="checkpoint (.pt), run folder, or official StyleGAN .pkl")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(func=run)


def describers():
    """(recognises(path) -> bool, describe(path) -> FileDescription) per known format, in order."""
    from stylegan_core.checkpoint import describe_checkpoint, is_project_checkpoint
    from stylegan_core.formats.official_tf import is_official_pickle
    from stylegan_core.formats.official_tf_networks import describe_official

    return [(is_official_pickle, describe_official), (is_project_checkpoint, describe_checkpoint)]


def describe(path: str):
    from pathlib import Path

    from stylegan_core.checkpoint import resolve_checkpoint
    from stylegan_core.errors import CheckpointError

    resolved = resolve_checkpoint(path)
    if not resolved.is_file():
        raise CheckpointError(f"{path}: no such file")
    for recognises, describe_fn in describers():
        if recognises(resolved):
            return describe_fn(resolved)
    raise CheckpointError(
        f"{Path(path)}: not a format this program reads (a stylegan-eval checkpoint or an official StyleGAN pickle)"
    )


def render(d) -> str:
    facts = {"format": d.format, "sha256": d.sha256, "size": f"{d.size_bytes:,} bytes"}
    facts |= {k: v for k, v in d.facts.items() if v is not None}
    width = max(len(k) for k in facts)
    lines = [d.path] + [f"  {key:<{width}}  {value}" for key, value in facts.items()]
    width = max(len(n.name) for n in d.networks) if d.networks else 4
    lines.append("  networks:")
    for n in d.networks:
        shown = {k: "+".join(v) if isinstance(v, list) else v for k, v in n.details.items() if v not in (None, [], "")}
        details = ", ".join(f"{k} {v}" for k, v in shown.items())
        lines.append(f"    {n.name:<{width}}  {n.kind:<12} {n.parameters:>12,} parameters  {n.buffers:>9,} buffers"
                     + (f"  ({details})" if details else ""))
    lines += [f"  note: {note}" for note in d.notes]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    d = describe(args.file)
    print(json.dumps(d.to_dict(), indent=2, sort_keys=True) if args.json else render(d))
    return 0
