"""Writes a comparison report folder: report.md, a self-contained report.html (inline CSS, every
image embedded as a base64 data URI), results.csv (one row per record, for tracing cells) and
the PNG figures under figures/.

The folder is built in a temporary sibling and renamed into place, so a reader never sees a
half-written report; an existing folder is replaced only if it holds an earlier report.
"""

import base64
import html
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from stylegan_core.errors import UserError
from stylegan_eval import figures as F
from stylegan_eval.published import PUBLISHED, METRIC_COLUMNS
from stylegan_eval.report import (
    COLUMN_TITLES, DISENTANGLEMENT_COLUMNS, LEGEND, SINGLE_CLASS_MARK, TABLE4_COLUMNS, DisplayRow, Finding, ReportInputs,
    disentanglement_ordering, disentanglement_table, frame_notes, model_rows, model_table, qualitative_findings,
    _model_labels, records_frame, substitute_networks, table4_rows,
)

MARKER = ".stylegan-eval-report"  # identifies a folder this module wrote (safe to replace)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #bbb;padding:.25em .6em;text-align:right}
th:first-child,td:first-child,td.text{text-align:left}th{background:#eef}
tr.published td{background:#f6f6f6;color:#555;font-style:italic}
.warning{background:#fff3cd;border:2px solid #e0a800;padding:.8em 1em;font-weight:bold}
.held{color:#176f2c;font-weight:bold}.did-not-hold{color:#a61b1b;font-weight:bold}
.mixed,.not-measured{color:#8a6d00;font-weight:bold}
figure{display:inline-block;margin:.6em;vertical-align:top;max-width:100%}
figure img{max-width:100%;min-width:min(100%,384px);height:auto;border:1px solid #ddd;image-rendering:pixelated}
figcaption{font-size:.85em;color:#555;max-width:560px}
.small{font-size:.8em;color:#555}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.8em}code{font-size:.9em}
"""


@dataclass(frozen=True)
class ModelFileSection:
    """A model file given to the report: what it is and sample figures made with it."""

    name: str  # the file as the user named it
    sha256: str  # matched against records' checkpoint_sha256
    description: str  # what `stylegan-eval inspect` prints for it
    images: tuple[tuple[str, str], ...] = ()  # (title, PNG path): its sample figures


@dataclass(frozen=True)
class ReportOptions:
    title: str = "StyleGAN metrics comparison"
    notes: tuple[str, ...] = ()  # paragraphs shown near the top (e.g. how the demo was run)
    warnings: tuple[str, ...] = ()  # shown prominently at the top, in addition to substitute use
    images: tuple[tuple[str, str], ...] = ()  # (title, PNG path) to embed (sample grids etc.)
    include_run_images: bool = True  # embed PNGs found in run folders
    published: bool = True  # show the paper's numbers alongside
    findings: bool = True  # check the paper's qualitative claims on the measured values
    max_run_images: int = 12  # cap on PNGs taken from run folders (newest kept)
    models: tuple[ModelFileSection, ...] = ()  # model files: their facts and sample figures


# Markdown punctuation that could turn a label into markup (links, emphasis, raw HTML, table
# cells); a backslash makes CommonMark show it as the character itself.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#!~&])")


def md_text(text: str) -> str:
    """`text` for a Markdown page, shown literally (the HTML page escapes the same text)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


@dataclass
class _Doc:
    """The report's sections, rendered to both Markdown and HTML."""

    md: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.md.append(f"{'#' * level} {md_text(text)}\n")
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def para(self, text: str, cls: str | None = None) -> None:
        self.md.append(f"{'**' + md_text(text) + '**' if cls == 'warning' else md_text(text)}\n")
        attr = f' class="{cls}"' if cls else ""
        self.html.append(f"<p{attr}>{html.escape(text)}</p>")

    def bullets(self, items: Sequence[str]) -> None:
        self.md.append("".join(f"- {md_text(i)}\n" for i in items))
        self.html.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")

    def table(self, header: Sequence[str], rows: Sequence[tuple[list[str], bool, list[str]]], table_id: str) -> None:
        """rows: (cells, published?, per-cell provenance shown as a tooltip)."""
        esc = md_text
        self.md.append("| " + " | ".join(map(esc, header)) + " |\n|" + "---|" * len(header) + "\n")
        self.md[-1] += "".join("| " + " | ".join(map(esc, cells)) + " |\n" for cells, _, _ in rows)
        out = [f'<table id="{table_id}"><thead><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>"]
        for cells, pub, prov in rows:
            tds = []
            for i, c in enumerate(cells):
                tip = prov[i] if i < len(prov) else ""
                title = f' title="{html.escape("published, " + tip if pub else "record " + tip)}"' if tip else ""
                # Text cells (labels, names) read better left-aligned; numbers stay right-aligned.
                cls = "" if str(c)[:1].isdigit() or str(c)[:1] == "-" else ' class="text"'
                tds.append(f"<td{title}{cls}>{html.escape(str(c))}</td>")
            out.append(f'<tr class="{"published" if pub else "measured"}">' + "".join(tds) + "</tr>")
        self.html.append("".join(out) + "</tbody></table>")

    def preformatted(self, text: str) -> None:
        fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
        self.md.append(f"{fence}text\n{text}\n{fence}\n")
        self.html.append(f"<pre>{html.escape(text)}</pre>")

    def figure(self, fig: F.FigureFile, rel: str) -> None:
        title, caption = md_text(fig.title), md_text(fig.caption) if fig.caption else ""
        self.md.append(f"![{title}]({rel})\n\n*{title}*{': ' + caption if caption else ''}\n")
        data = base64.b64encode(fig.path.read_bytes()).decode("ascii")
        self.html.append(
            f'<figure><img alt="{html.escape(fig.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption><b>{html.escape(fig.title)}</b>{(': ' + html.escape(fig.caption)) if fig.caption else ''}</figcaption></figure>"
        )


def _row_tuple(r: DisplayRow) -> tuple[list[str], bool, list[str]]:
    return [r.label, *r.cells], r.published, ["", *r.record_ids]


def _make_figures(inputs: ReportInputs, frame, fig_dir: Path, opts: ReportOptions) -> list[F.FigureFile]:
    figs: list[F.FigureFile] = []
    by_model: dict[str, dict[str, object]] = {}
    for lr in inputs.records:
        by_model.setdefault(lr.record.model, {})[lr.record.metric] = lr
    for i, (model, recs) in enumerate(by_model.items()):
        dists = {}
        for metric, lr in recs.items():
            if metric.startswith("ppl_"):
                base = Path(lr.source.rsplit(":", 1)[0]).parent
                p = F.dists_path(lr.record, base)
                if p is not None:
                    dists[metric] = np.load(p, allow_pickle=False)
        if dists:
            figs.append(F.ppl_histogram(model, dists, fig_dir / f"ppl_hist_{i}.png"))
        ent = {s: F.entropies_of(recs[f"ls_{s}"].record) if f"ls_{s}" in recs else None for s in ("z", "w")}
        if ent["z"] or ent["w"]:
            figs.append(F.entropy_bars(model, ent["z"], ent["w"], fig_dir / f"entropies_{i}.png"))
    for j, stats in enumerate(inputs.stats_files):
        fig = F.training_curves(stats, fig_dir / f"training_{j}.png")
        if fig is not None:
            figs.append(fig)
    images = list(opts.images)
    if opts.include_run_images:
        run_pngs = sorted(inputs.images, key=lambda p: p.stat().st_mtime)[-opts.max_run_images:]
        images += [(p.stem.replace("_", " "), str(p)) for p in run_pngs]
    for k, (title, src) in enumerate(images):
        figs.append(F.FigureFile(title, _copy_image(src, fig_dir / f"image_{k}_{Path(src).name}")))
    return figs


def _render(inputs: ReportInputs, tmp: Path, opts: ReportOptions) -> tuple[str, str]:
    frame = records_frame(inputs.records)
    frame.to_csv(tmp / "results.csv", index=False)
    doc = _Doc()
    doc.heading(opts.title, 1)
    if not inputs.records:  # model files only: what they are and their samples, no tables
        for w in opts.warnings:
            doc.para(w, "warning")
        for n in [*opts.notes, *inputs.notes]:
            doc.para(n)
        _model_file_sections(doc, frame, tmp / "figures", opts.models)
        _figures_section(doc, _make_figures(inputs, frame, tmp / "figures", opts))
        return _pages(doc, opts)
    table = model_table(frame)
    subs = substitute_networks(frame)
    for w in opts.warnings:
        doc.para(w, "warning")
    if subs:
        doc.para(
            "SUBSTITUTE FEATURE NETWORKS: some values were measured without the standard pretrained weights ("
            + "; ".join(subs) + "). They are marked † and are NOT comparable with the paper's numbers.",
            "warning",
        )
    if frame["single_class"].any():
        doc.para(
            f"SEPARABILITY WITHOUT SIGNAL: some separability scores are 1.0 only because every attribute's kept samples "
            f"had one label; they are marked {SINGLE_CLASS_MARK} and measure nothing (check the classifier and the generator).",
            "warning",
        )
    for n in opts.notes:
        doc.para(n)
    notes = [*inputs.notes, *frame_notes(frame)]
    if notes:
        doc.heading("Notes on the inputs", 3)
        doc.bullets(notes)

    if opts.findings:
        doc.heading("Did the paper's findings hold at this scale?")
        doc.para("Checked on the measured values below (never on published ones); small sample counts make close calls uncertain.")
        items = []
        for f in qualitative_findings(table):
            items.append(f)
        doc.md.append("".join(f"- **{f.verdict.upper()}**: {md_text(f.claim)}" + "".join(f"\n  - {md_text(e)}" for e in f.evidence)
                              + "\n" for f in items))
        doc.html.append("<ul>" + "".join(_finding_html(f) for f in items) + "</ul>")

    doc.heading("Models (Table 1 / Table 3 layout)")
    header = ["model", *[COLUMN_TITLES[c] for c in METRIC_COLUMNS]]
    doc.table(header, [_row_tuple(r) for r in model_rows(table, opts.published)], "models")
    doc.heading("By generator kind and mapping depth (Table 4 layout)")
    rows4 = table4_rows(table, opts.published)
    doc.table(
        ["generator", "mapping layers", "model (space)", *TABLE4_COLUMNS],
        [([kind, depth, *_row_tuple(r)[0]], r.published, ["", "", *_row_tuple(r)[2]]) for kind, depth, r in rows4],
        "table4",
    )
    doc.heading("Legend", 3)
    legend = [f"{m} {text}" for m, text in LEGEND.items()]
    if opts.published:
        legend.append(
            "Rows starting 'published:' are the paper's numbers (1024x1024, FFHQ, real feature networks, full sample "
            "counts), shown for orientation; each cell names its table. They are not comparable with CPU-sized runs."
        )
    legend.append("Lower is better for every column. Hover a cell in report.html for its record id; results.csv lists every record.")
    doc.bullets(legend)
    _disentanglement_section(doc, inputs, tmp / "figures")
    _model_file_sections(doc, frame, tmp / "figures", opts.models)

    _figures_section(doc, _make_figures(inputs, frame, tmp / "figures", opts))

    doc.heading("Records (traceability)")
    doc.para("Every table cell comes from one of these records; the full parameters are in results.csv.")
    rec_rows = []
    for _, r in frame.iterrows():
        fn = f"{r['feature_network']} [{r['feature_weights']}]" if r["feature_network"] else ""
        rec_rows.append((
            [r["record_id"], r["model"], r["metric"], f"{r['value']:.4g}", str(r["num_samples"]),
             str(r["paper_num_samples"] or ""), fn, (r["checkpoint_sha256"] or "")[:12], r["source"]],
            False, [],
        ))
    doc.table(["record", "model", "metric", "value", "samples", "paper samples", "feature network",
               "checkpoint sha256", "source"], rec_rows, "records")

    if opts.published:
        doc.heading("Published reference (the paper, for orientation)")
        pub_rows = [([r.label, r.dataset, *[_published_cell(r.values.get(c)) for c in METRIC_COLUMNS]], True,
                     ["", "", *[r.sources.get(c, "") for c in METRIC_COLUMNS]])
                    for rows in PUBLISHED.values() for r in rows]
        doc.table(["published row", "dataset", *[COLUMN_TITLES[c] for c in METRIC_COLUMNS]], pub_rows, "published")

    return _pages(doc, opts)


def _figures_section(doc: _Doc, figs: list[F.FigureFile]) -> None:
    if figs:
        doc.heading("Figures")
        for fig in figs:
            doc.figure(fig, f"figures/{fig.path.name}")


def _pages(doc: _Doc, opts: ReportOptions) -> tuple[str, str]:
    """report.md and report.html of the rendered document."""
    md = "\n".join(doc.md)
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(opts.title)}</title>'
        f"<style>{CSS}</style></head><body>" + "\n".join(doc.html) + "</body></html>\n"
    )
    return md, page


def _disentanglement_section(doc: _Doc, inputs: ReportInputs, fig_dir: Path) -> None:
    """Latent spaces Z, W, S: DCI, MIG and SAP beside PPL and separability, and the DCI importance
    heatmaps; nothing when no record has a disentanglement score."""
    table = disentanglement_table(inputs.records)
    if table.empty:
        return
    doc.heading("Disentanglement by latent space (DCI, MIG, SAP)")
    doc.para("Factors are the attribute classifiers' labels. PPL and separability: lower is better (Z and W only); "
             "DCI disentanglement (D), completeness (C), informativeness (I, test accuracy), MIG and SAP: higher is "
             "better. S is StyleSpace, the concatenated AdaIN style scales of every layer.")
    fmt = lambda v: "" if pd.isna(v) else f"{v:.3f}"  # noqa: E731
    rows = [([f"{model} ({space.upper()})", *[fmt(r[c]) for c in DISENTANGLEMENT_COLUMNS], r["DCI predictor"]], False, [])
            for (model, space), r in table.iterrows()]
    doc.table(["model (space)", *DISENTANGLEMENT_COLUMNS, "DCI predictor"], rows, "disentanglement")
    ordering = disentanglement_ordering(table)
    if ordering:
        doc.bullets(ordering)
    by_model: dict[str, dict] = {}
    for lr in sorted(inputs.records, key=lambda lr: lr.record.created):
        r = lr.record
        if r.metric.startswith("dci_") and r.extras.get("importance"):
            by_model.setdefault(r.model, {})[r.params["space"]] = r
    for i, (model, recs) in enumerate(by_model.items()):
        fig = F.dci_heatmaps(model, recs, fig_dir / f"dci_importance_{i}.png")
        doc.figure(fig, f"figures/{fig.path.name}")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path: str | os.PathLike) -> Path:
    """`path` if it is a PNG file (by its signature); UserError naming it otherwise. The report
    embeds images as PNG data, so anything else would show as a broken image."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: image for the report not found")
    with path.open("rb") as f:
        head = f.read(len(PNG_SIGNATURE))
    if head != PNG_SIGNATURE:
        raise UserError(f"{path}: not a PNG image; the report embeds PNG files (convert it, "
                        "or use a grid from `stylegan-eval generate grid --out grid.png`)")
    return path


def _copy_image(src: str | os.PathLike, dst: Path) -> Path:
    shutil.copyfile(check_png(src), dst)
    return dst


def _model_file_sections(doc: _Doc, frame: pd.DataFrame, fig_dir: Path, models: Sequence[ModelFileSection]) -> None:
    """One section per model file: the table rows it was measured as (records whose
    checkpoint_sha256 is the file's SHA-256), what the file is, and its sample figures."""
    if not models:
        return
    doc.heading("Model files")
    doc.para("Each model file given to the report, read as data (as `stylegan-eval inspect` prints it), with sample "
             "figures made from it. A file belongs to the table rows of the records whose checkpoint SHA-256 is the "
             "file's SHA-256.")
    df = frame[frame["column"].notna()].copy()
    labels = _model_labels(df) if len(df) else pd.Series(dtype=object)
    for i, m in enumerate(models):
        rows = list(dict.fromkeys(labels[df["checkpoint_sha256"] == m.sha256])) if len(df) else []
        others = list(dict.fromkeys(frame.loc[(frame["checkpoint_sha256"] == m.sha256) & frame["column"].isna(), "model"]))
        doc.heading(f"{m.name}", 3)
        if rows or others:
            doc.para("measured as table row(s): " + ", ".join(rows + [o for o in others if o not in rows]))
        else:
            doc.para("no result record was measured from this file (no record has its SHA-256)")
        doc.preformatted(m.description)
        for k, (title, src) in enumerate(m.images):
            dst = _copy_image(src, fig_dir / f"model_{i}_{k}_{Path(src).name}")
            fig = F.FigureFile(title, dst)
            doc.figure(fig, f"figures/{fig.path.name}")


def _published_cell(v: float | None) -> str:
    return "" if v is None else f"{v:g}"


def _finding_html(f: Finding) -> str:
    cls = f.verdict.replace(" ", "-")
    ev = "".join(f"<li>{html.escape(e)}</li>" for e in f.evidence)
    return f'<li><span class="{cls}">{html.escape(f.verdict.upper())}</span>: {html.escape(f.claim)}<ul>{ev}</ul></li>'


def write_report(inputs: ReportInputs, out_dir: str | os.PathLike, options: ReportOptions = ReportOptions()) -> Path:
    """Write the report folder `out_dir` (report.md, report.html, results.csv, figures/) atomically.

    Raises UserError when there are neither records nor model files, or when out_dir exists and is neither empty nor
    an earlier report (never overwrite someone else's folder)."""
    if not inputs.records and not options.models:
        raise UserError("no result records found in the inputs; run `stylegan-eval ppl|ls|fid --results FILE` first, "
                        "or give a model file")
    out = Path(out_dir)
    if out.exists() and not (out.is_dir() and ((out / MARKER).is_file() or not any(out.iterdir()))):
        raise UserError(f"{out}: exists and is not a stylegan-eval report folder; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a report folder is meant to be shared
        (tmp / "figures").mkdir()
        md, page = _render(inputs, tmp, options)
        (tmp / "report.md").write_text(md, encoding="utf-8")
        (tmp / "report.html").write_text(page, encoding="utf-8")
        (tmp / MARKER).write_text("written by stylegan_eval.html_report\n")
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
