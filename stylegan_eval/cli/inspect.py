"""`stylegan-eval inspect FILE`: what a model file is (format, networks, resolution, parameter
counts, truncation defaults, SHA-256), read as data: nothing from the file is run."""

import argparse
import json

from stylegan_eval.cli import HelpFormatter

EPILOG = """examples:
  stylegan-eval inspect karras2019stylegan-ffhq-1024x1024.pkl
  stylegan-eval inspect network-snapshot-025000.pkl      # StyleGAN2-ADA / StyleGAN3
  stylegan-eval inspect runs/F-cpu32 --json
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="describe a checkpoint or model pickle without running it",
        description="Print a model file's format, its networks with parameter counts, resolution, "
        "truncation defaults and SHA-256. Reads stylegan-eval checkpoints, official StyleGAN (TF) "
        "pickles and NVlabs StyleGAN2-ADA / StyleGAN3 PyTorch pickles. Pickles are read by restricted "
        "unpicklers (data only: arrays, tensors, plain containers); the source code stored in them is "
        "never executed.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("file", metavar="FILE",
                   help="checkpoint (.pt), run folder, official StyleGAN .pkl, or StyleGAN2-ADA/3 .pkl")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(func=run)


def describe(path: str):
    """The file's FileDescription (stylegan_core.formats.identify, shared with `report`)."""
    from stylegan_core.formats.identify import describe_model_file

    return describe_model_file(path)


# A network line longer than LINE_WIDTH (e.g. NVlabs networks with all their constructor arguments)
# puts its details on lines of their own, wrapped to DETAILS_WIDTH; official TF networks' fit beside.
LINE_WIDTH = 180
DETAILS_WIDTH = 100


def _wrapped(items: list[str], indent: str) -> list[str]:
    """items joined by ", " into lines of at most DETAILS_WIDTH characters, never splitting an item."""
    lines, line = [], ""
    for item in items:
        if line and len(indent) + len(line) + len(", ") + len(item) + len(",") > DETAILS_WIDTH:
            lines.append(indent + line + ",")
            line = item
        else:
            line = f"{line}, {item}" if line else item
    return lines + [indent + line] if line else lines


def render(d) -> str:
    """A FileDescription as text: facts, one line per network (details beside it, or below it when
    the line would be too long), notes."""
    facts = {"format": d.format, "sha256": d.sha256, "size": f"{d.size_bytes:,} bytes"}
    facts |= {k: v for k, v in d.facts.items() if v is not None}
    width = max(len(k) for k in facts)
    lines = [d.path] + [f"  {key:<{width}}  {value}" for key, value in facts.items()]
    width = max(len(n.name) for n in d.networks) if d.networks else 4
    kind_width = max([12] + [len(n.kind) for n in d.networks])
    lines.append("  networks:")
    for n in d.networks:
        shown = {k: "+".join(v) if isinstance(v, list) else v for k, v in n.details.items() if v not in (None, [], "")}
        items = [f"{k} {v}" for k, v in shown.items()]
        head = f"    {n.name:<{width}}  {n.kind:<{kind_width}} {n.parameters:>12,} parameters  {n.buffers:>9,} buffers"
        one = head + (f"  ({', '.join(items)})" if items else "")
        lines += [one] if len(one) <= LINE_WIDTH else [head] + _wrapped(items, " " * 8)
    lines += [f"  note: {note}" for note in d.notes]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    d = describe(args.file)
    print(json.dumps(d.to_dict(), indent=2, sort_keys=True) if args.json else render(d))
    return 0
