"""`stylegan-eval`: one command line with a sub-command per capability.

Each sub-command lives in its own module in this package with two functions:
`register(subparsers)` adds its parser (with `func=run` as a default) and `run(args) -> int`.
The CLI is thin: parse, build the library's config, call the library, render.

`main` is the one error boundary: a problem the user can fix becomes one line on stderr naming
the thing and the fix, and exit status 2. That covers bad arguments (argparse's usage block is
replaced by one line), the library's `stylegan_core.errors.UserError`, every OSError (read-only
or full disk, a file where a folder is expected, permissions) and running out of memory.
Interrupts keep the shell's conventions: 130 for SIGINT (Ctrl-C); `train` saves a snapshot and
returns 143 on SIGTERM. Anything else is a bug and keeps its traceback. Warnings are one line too.
"""

import argparse
import importlib
import sys
import warnings

from stylegan_core.errors import UserError

# Sub-command modules, in the order `--help` lists them.
COMMANDS = ("demo", "data", "train", "generate", "measure", "ppl", "classifier", "ls", "fid", "disentanglement", "report",
            "inspect", "convert")

EPILOG = """examples:
  stylegan-eval demo                      # everything end to end in ~20 min on a 2-core CPU
  stylegan-eval data synth --out data/synth32 --num 20000 --resolution 32
  stylegan-eval train --data data/synth32/images --preset F-cpu32 --out runs/F-cpu32
  stylegan-eval ppl --ckpt runs/F-cpu32 --space w --sampling end --results results.jsonl
  stylegan-eval report results.jsonl runs/F-cpu32 --out reports/compare

Run `stylegan-eval COMMAND --help` for a command's options and more examples.
"""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults and keeps example blocks as written."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage block would bury the message); sub-command
    parsers inherit it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _is_out_of_memory(e: BaseException) -> bool:
    if isinstance(e, MemoryError):
        return True
    # torch.OutOfMemoryError (CUDA) subclasses RuntimeError; the CPU allocator raises a plain one.
    text = str(e)
    return isinstance(e, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _warning_line(prefix: str):
    """A `warnings.formatwarning`: one line naming the command, no source file or code line.
    (Replacing the format, not `showwarning`, leaves callers that record warnings unaffected.)"""

    def format_warning(message, category, filename, lineno, line=None) -> str:
        return f"{prefix}: warning: {message}\n"

    return format_warning


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="stylegan-eval",
        description="Train and sample StyleGAN; measure PPL, linear separability and FID; compare models.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for name in COMMANDS:
        importlib.import_module(f"stylegan_eval.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    from stylegan_eval.cli.allocator import keep_freed_memory
    from stylegan_eval.outputs import describe_os_error

    keep_freed_memory()

    # "stylegan-eval data synth", as argparse names the command in its own errors.
    sub = [v for v in (getattr(args, "action", None), getattr(args, "mode", None)) if v]
    prefix = " ".join(["stylegan-eval", args.command, *sub])
    format_before, warnings.formatwarning = warnings.formatwarning, _warning_line(prefix)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        message = str(e)
    except OSError as e:
        message = describe_os_error(e)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as e:
        if not _is_out_of_memory(e):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        message = f"out of memory ({first}); use a smaller --batch (or fewer samples/seeds)"
    finally:
        warnings.formatwarning = format_before
    # One line even if a message carries a newline from a lower layer.
    one_line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"{prefix}: error: {one_line}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
