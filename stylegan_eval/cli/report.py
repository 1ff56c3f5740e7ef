"""`stylegan-eval report`: a comparison report (Markdown, self-contained HTML, CSV, figures) from
result records and run folders."""

import argparse

from stylegan_eval.cli import HelpFormatter

EXAMPLE = """examples:
  # measure two checkpoints into one results file, then compare them
  stylegan-eval ppl --ckpt runs/F-cpu32 --space w --sampling end --num-samples 2000 --results results.jsonl
  stylegan-eval ppl --ckpt runs/B-cpu32 --space z --sampling end --num-samples 2000 --results results.jsonl
  stylegan-eval report results.jsonl --out reports/compare

  # add training curves (run folders) and a sample grid from `stylegan-eval generate grid`
  stylegan-eval report results.jsonl runs/F-cpu32 runs/B-cpu32 --out reports/compare --image "F samples" grid.png
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="comparison report (report.md, report.html, results.csv, figures) from result records",
        description="Build tables like the paper's (one row per model; Table 4 by generator kind and mapping "
        "depth) with the published numbers alongside, figures (PPL histograms, per-attribute entropies, "
        "training curves, sample grids) and a CSV tracing every cell to its record.",
        epilog=EXAMPLE,
        formatter_class=HelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="RESULTS.jsonl|RUN_DIR", help="result files and/or run folders")
    p.add_argument("--out", required=True, metavar="DIR", help="report folder (replaced if it holds an earlier report)")
    p.add_argument("--title", default="StyleGAN metrics comparison", help="report title")
    p.add_argument("--image", nargs=2, action="append", default=[], metavar=("TITLE", "PNG"),
                   help="embed an image (repeatable), e.g. a sample grid from `stylegan-eval generate`")
    p.add_argument("--no-run-images", action="store_true", help="do not embed PNGs found in run folders")
    p.add_argument("--no-published", action="store_true", help="leave out the paper's published numbers")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stylegan_eval.html_report import ReportOptions, write_report
    from stylegan_eval.outputs import check_output_dir
    from stylegan_eval.report import frame_notes, load_inputs, records_frame

    check_output_dir(args.out, "--out")
    inputs = load_inputs(args.inputs)
    opts = ReportOptions(
        title=args.title,
        images=tuple((t, p) for t, p in args.image),
        include_run_images=not args.no_run_images,
        published=not args.no_published,
    )
    out = write_report(inputs, args.out, opts)
    models = len({r.record.model for r in inputs.records})
    print(f"report: {len(inputs.records)} records, {models} models -> {out}/report.html (also report.md, results.csv)")
    for note in [*inputs.notes, *frame_notes(records_frame(inputs.records))]:
        print(f"note: {note}")
    return 0
