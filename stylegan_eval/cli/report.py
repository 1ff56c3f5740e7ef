"""`stylegan-eval report`: a comparison report (Markdown, self-contained HTML, CSV, figures) from
result records, run folders and model files."""

import argparse

from stylegan_eval.cli import HelpFormatter
from stylegan_eval.cli.common import add_device

EXAMPLE = """examples:
  # measure two checkpoints into one results file, then compare them
  stylegan-eval ppl --ckpt runs/F-cpu32 --space w --sampling end --num-samples 2000 --results results.jsonl
  stylegan-eval ppl --ckpt runs/B-cpu32 --space z --sampling end --num-samples 2000 --results results.jsonl
  stylegan-eval report results.jsonl --out reports/compare

  # add training curves (run folders) and a sample grid from `stylegan-eval generate grid`
  stylegan-eval report results.jsonl runs/F-cpu32 runs/B-cpu32 --out reports/compare --image "F samples" grid.png

  # an official model measured into results.jsonl: its facts and sample figures beside its row
  stylegan-eval report results.jsonl karras2019stylegan-ffhq-1024x1024.pkl --out reports/ffhq
"""

MODEL_FILES = (
    "A model file (a stylegan-eval checkpoint, an official StyleGAN (TensorFlow) .pkl, read as data, or an NVlabs "
    "StyleGAN2-ADA / StyleGAN3 .pkl, which runs only with --trust-pickle-code) is recognised by its content. For "
    "each, the report shows what the file is (as `stylegan-eval inspect` prints it: format, networks, resolution, "
    "parameter counts, truncation defaults, SHA-256) and sample figures made from it (uncurated samples, truncation "
    "sweep, interpolations, style mixing; seeds fixed, no truncation unless the figure sweeps it). It belongs to the "
    "table rows of the records whose checkpoint_sha256 is the file's SHA-256 (the metric commands record it), named "
    "under the file's section; a file no record was measured from is shown on its own. A run folder stays a source "
    "of records, statistics and images; give its snapshot file to add its samples."
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="comparison report (report.md, report.html, results.csv, figures) from result records and model files",
        description="Build tables like the paper's (one row per model; Table 4 by generator kind and mapping "
        "depth) with the published numbers alongside, figures (PPL histograms, per-attribute entropies, "
        "training curves, sample grids) and a CSV tracing every cell to its record. " + MODEL_FILES,
        epilog=EXAMPLE,
        formatter_class=HelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="RESULTS.jsonl|RUN_DIR|MODEL_FILE",
                   help="result files, run folders and/or model files (.pt checkpoint, official .pkl, NVlabs .pkl)")
    p.add_argument("--out", required=True, metavar="DIR", help="report folder (replaced if it holds an earlier report)")
    p.add_argument("--title", default="StyleGAN metrics comparison", help="report title")
    p.add_argument("--image", nargs=2, action="append", default=[], metavar=("TITLE", "PNG"),
                   help="embed an image (repeatable), e.g. a sample grid from `stylegan-eval generate`")
    p.add_argument("--no-run-images", action="store_true", help="do not embed PNGs found in run folders")
    p.add_argument("--no-published", action="store_true", help="leave out the paper's published numbers")
    p.add_argument(
        "--trust-pickle-code", action="store_true",
        help="make samples from an NVlabs StyleGAN2-ADA / StyleGAN3 .pkl given as input: this EXECUTES the Python code "
        "stored in the file; needs that repository (dnnlib/, torch_utils/) on PYTHONPATH",
    )
    add_device(p)
    p.set_defaults(func=run)


def _style_based(G) -> bool:
    """Whether G has per-layer styles (style mixing applies): a project generator says so in its
    config; official and NVlabs generators are all style-based."""
    synthesis = getattr(getattr(G, "config", None), "synthesis", None)
    return bool(getattr(synthesis, "use_styles", True))


def model_sections(paths: list[str], device, trust_pickle_code: bool, work_dir):
    """A ModelFileSection per model file: its description and sample figures (written under work_dir)."""
    from pathlib import Path

    from stylegan_core.formats.identify import describe_model_file
    from stylegan_eval.cli.common import load_checkpoint_generator
    from stylegan_eval.cli.inspect import render
    from stylegan_eval.figures import sample_figures
    from stylegan_eval.html_report import ModelFileSection

    described = [(p, describe_model_file(p)) for p in paths]
    # Load every generator before making any figure, so a refused file fails before the work.
    loaded = [(p, d, load_checkpoint_generator(p, None, device, trust_pickle_code)) for p, d in described]
    sections = []
    for i, (p, d, lg) in enumerate(loaded):
        prefix = f"model{i}"  # file names under work_dir; titles name the file instead
        figs = sample_figures(lg.G, prefix, _style_based(lg.G), Path(work_dir), device)
        images = tuple((Path(p).name + title[len(prefix):], path) for title, path in figs)
        sections.append(ModelFileSection(name=str(p), sha256=d.sha256, description=render(d), images=images))
    return sections


def run(args: argparse.Namespace) -> int:
    import tempfile

    from stylegan_core.distributed import default_device
    from stylegan_core.formats.identify import is_model_file
    from stylegan_eval.html_report import ReportOptions, check_png, write_report
    from stylegan_eval.outputs import check_output_dir
    from stylegan_eval.report import frame_notes, load_inputs, records_frame

    check_output_dir(args.out, "--out")
    for _, image in args.image:  # before any work: a wrong file is named at once
        check_png(image)
    models = [p for p in args.inputs if is_model_file(p)]
    inputs = load_inputs([p for p in args.inputs if p not in models]) if len(models) < len(args.inputs) else None
    with tempfile.TemporaryDirectory(prefix="stylegan-eval-report-") as work:
        sections = model_sections(models, default_device(args.device), args.trust_pickle_code, work)
        if inputs is None:
            from stylegan_eval.report import ReportInputs

            inputs = ReportInputs([], [], [])
        opts = ReportOptions(
            title=args.title,
            images=tuple((t, p) for t, p in args.image),
            include_run_images=not args.no_run_images,
            published=not args.no_published,
            models=tuple(sections),
        )
        out = write_report(inputs, args.out, opts)
    n_models = len({r.record.model for r in inputs.records})
    print(f"report: {len(inputs.records)} records, {n_models} models, {len(sections)} model files -> {out}/report.html "
          "(also report.md, results.csv)")
    for note in [*inputs.notes, *frame_notes(records_frame(inputs.records))]:
        print(f"note: {note}")
    return 0
