"""Comparison tables from result records, laid out like the paper's Tables 1, 3 and 4.

Pipeline: result files / run folders -> `load_inputs` (records with ids and file:line sources)
-> `records_frame` (one row per record: the traceability table written as results.csv) ->
`model_table` (one row per model: FID, PPL full/end in Z and W, separability in Z and W) and
`table4_view` (one row per model and latent space, grouped by generator kind and mapping depth,
as Table 4). Published numbers (stylegan_eval.published) are added as separate, labelled rows.

A measured cell is marked SUBSTITUTE_MARK when its feature network was a substitute (not the
standard pretrained weights) and FEWER_MARK when it used fewer samples than the paper's protocol;
`LEGEND` explains both. `qualitative_findings` checks the paper's three claims on the measured
values only (never on published ones).
"""

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import pandas as pd

from stylegan_core.errors import UserError
from stylegan_eval.published import METRIC_COLUMNS, PAPER_NUM_SAMPLES, generator_kind, published_rows
from stylegan_eval.records import ResultRecord, iter_records

SUBSTITUTE_MARK = "†"
FEWER_MARK = "‡"
NOT_MEANINGFUL_MARK = "§"
SINGLE_CLASS_MARK = "¶"
FID_MIN_SAMPLES = 2048  # Inception pool3 features: with fewer samples the covariance is singular
LEGEND = {
    SUBSTITUTE_MARK: "measured with a SUBSTITUTE feature network (not the standard pretrained weights); "
    "not comparable with published numbers",
    FEWER_MARK: "measured with fewer samples than the paper's protocol (FID/KID/precision/recall 50k, PPL 100k, "
    "separability 200k)",
    NOT_MEANINGFUL_MARK: f"not meaningful: FID of fewer than {FID_MIN_SAMPLES} samples (the feature dimension; the "
    "covariance is singular); see KID, which is unbiased (the value is in results.csv)",
    SINGLE_CLASS_MARK: "separability without signal: for every attribute the kept samples all had one label, so the "
    "score is 1.0 with nothing separated (a classifier or generator problem, not a result)",
}
COLUMN_TITLES = {
    "fid": "FID",
    "kid": "KID",
    "precision": "Precision",
    "recall": "Recall",
    "ppl_zfull": "PPL Z full",
    "ppl_zend": "PPL Z end",
    "ppl_wfull": "PPL W full",
    "ppl_wend": "PPL W end",
    "ls_z": "Sep. Z",
    "ls_w": "Sep. W",
}
TABLE4_COLUMNS = ("FID", "PPL full", "PPL end", "Separability")


@dataclass(frozen=True)
class LoadedRecord:
    record: ResultRecord
    record_id: str  # first 12 hex digits of the SHA-256 of the record's canonical JSON
    source: str  # "path:line" of the JSON line it was read from


@dataclass(frozen=True)
class ReportInputs:
    records: list[LoadedRecord]
    stats_files: list[Path]  # training statistics (JSON lines) found in run folders
    images: list[Path]  # PNGs found in run folders (snapshot grids, sampling figures)
    notes: tuple[str, ...] = ()  # what loading decided for the user (e.g. duplicates counted once)


def record_id(record: ResultRecord) -> str:
    canonical = json.dumps(record.to_dict(), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def read_records(path: str | os.PathLike) -> list[LoadedRecord]:
    """Records of one results file, each with its id and file:line; bad lines name file and line."""
    return [LoadedRecord(rec, record_id(rec), f"{path}:{lineno}") for lineno, rec in iter_records(path)]


def _first_json(path: Path) -> dict | None:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                try:
                    obj = json.loads(line.decode("utf-8"))
                except ValueError:  # UnicodeDecodeError too: a binary file is not ours to read
                    return None
                return obj if isinstance(obj, dict) else None
    return None


def load_inputs(paths: Sequence[str | os.PathLike]) -> ReportInputs:
    """Result files (JSON lines) and run folders; a folder is searched recursively for result
    files, training statistics (other JSON-lines files) and PNG images. Identical records (the
    same file reached twice, or a line appended twice) are kept once, and a note says so."""
    if not paths:
        raise UserError("no inputs: give at least one results file (.jsonl) or run folder")
    records: dict[str, LoadedRecord] = {}
    repeats: dict[str, int] = {}
    stats, images = [], []

    def add(found: list[LoadedRecord]) -> None:
        for r in found:
            if r.record_id in records:
                repeats[r.record_id] = repeats.get(r.record_id, 0) + 1
            else:
                records[r.record_id] = r

    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*.jsonl")):
                first = _first_json(f)
                if first is not None and "metric" in first and "record_version" in first:
                    add(read_records(f))
                elif first is not None:
                    stats.append(f)
            images.extend(sorted(p.rglob("*.png")))
        elif p.is_file():
            add(read_records(p))
        else:
            raise UserError(f"{p}: no such results file or run folder")
    notes = []
    if repeats:
        shown = ", ".join(f"{records[i].record.metric} of {records[i].record.model} ({records[i].source})"
                          for i in list(repeats)[:3])
        notes.append(f"{sum(repeats.values())} identical record(s) were read more than once and counted once: {shown}"
                     + (" ..." if len(repeats) > 3 else ""))
    return ReportInputs(list(records.values()), stats, images, tuple(notes))


def metric_column(metric: str) -> str | None:
    """Report column of a record's metric name ("fid50k" -> "fid"), or None if not tabulated."""
    if metric in METRIC_COLUMNS:
        return metric
    if metric.startswith("fid"):
        return "fid"
    if metric.startswith("kid"):
        return "kid"
    if metric.startswith("pr") and metric.endswith(("_precision", "_recall")):
        return metric.rsplit("_", 1)[1]
    return None


def uncertainty_of(record: ResultRecord) -> float | None:
    """The spread a record reports beside its value: KID's standard deviation over subsets."""
    if record.metric.startswith("kid"):
        from stylegan_eval.metrics.image_metrics import KIDExtras

        return KIDExtras.from_dict(record.extras).std
    return None


def records_frame(loaded: Sequence[LoadedRecord]) -> pd.DataFrame:
    """One row per record with everything needed to trace a table cell (written as results.csv)."""
    rows = []
    for lr in loaded:
        r = lr.record
        column = metric_column(r.metric)
        paper_n = PAPER_NUM_SAMPLES.get(column) if column else None
        fn = r.feature_network
        rows.append(
            {
                "record_id": lr.record_id,
                "source": lr.source,
                "model": r.model,
                "preset": r.params.get("preset"),
                "checkpoint": r.checkpoint,
                "checkpoint_sha256": r.checkpoint_sha256,
                "metric": r.metric,
                "column": column,
                "value": r.value,
                "std": uncertainty_of(r),
                "num_samples": r.num_samples,
                "paper_num_samples": paper_n,
                "fewer_samples": bool(paper_n is not None and r.num_samples < paper_n),
                "feature_network": fn.name if fn else None,
                "feature_weights": fn.weights if fn else None,
                "substitute": bool(fn and fn.substitute),
                "single_class": single_class(r),
                "seed": r.seed,
                "wall_time_s": r.wall_time_s,
                "created": r.created,
                "params": json.dumps(r.params, sort_keys=True),
            }
        )
    columns = [
        "record_id", "source", "model", "preset", "checkpoint", "checkpoint_sha256", "metric", "column",
        "value", "std", "num_samples", "paper_num_samples", "fewer_samples", "feature_network", "feature_weights",
        "substitute", "single_class", "seed", "wall_time_s", "created", "params",
    ]
    return pd.DataFrame(rows, columns=columns)


def _model_labels(df: pd.DataFrame) -> pd.Series:
    """Row label per record: the model label, plus a short checkpoint hash where one label
    covers several checkpoints (so two different models never share a row)."""
    key = df["checkpoint_sha256"].fillna("")
    # Records without a hash (a generator built in memory) join their label's hashed row.
    n_hashes = df["checkpoint_sha256"].groupby(df["model"]).transform("nunique")
    short = key.str[:8]
    return df["model"].where((n_hashes <= 1) | (key == ""), df["model"] + " @" + short)


def single_class(record: ResultRecord) -> bool:
    """A separability record in which every attribute's kept samples had one label (older records
    carry only the per-attribute statuses)."""
    if "all_single_class" in record.extras:
        return bool(record.extras["all_single_class"])
    statuses = record.extras.get("statuses") or []
    return bool(statuses) and all(st == "single_class" for st in statuses)


def marks_of(row) -> str:
    not_meaningful = row["column"] == "fid" and row["num_samples"] < FID_MIN_SAMPLES
    return ((SUBSTITUTE_MARK if row["substitute"] else "") + (FEWER_MARK if row["fewer_samples"] else "")
            + (NOT_MEANINGFUL_MARK if not_meaningful else "") + (SINGLE_CLASS_MARK if row.get("single_class", False) else ""))


@dataclass(frozen=True)
class ModelTable:
    """One row per model; parallel frames with the same index (model label) and columns."""

    values: pd.DataFrame  # float; NaN where not measured
    marks: pd.DataFrame  # "", "†", "‡", "†‡"
    record_ids: pd.DataFrame  # the record each cell came from ("" where not measured)
    info: pd.DataFrame  # preset, checkpoint_sha256, kind, mapping_layers per model
    std: pd.DataFrame | None = None  # float; the spread a record reports (KID's std), NaN where none


def model_table(frame: pd.DataFrame) -> ModelTable:
    """The latest record per (model, column); models in first-appearance order."""
    df = frame[frame["column"].notna()].copy()
    df["label"] = _model_labels(df)
    order = list(dict.fromkeys(df["label"]))
    df = df.sort_values("created", kind="stable")
    latest = df.groupby(["label", "column"], sort=False).tail(1)
    cols = list(METRIC_COLUMNS)
    values = latest.pivot(index="label", columns="column", values="value").reindex(index=order, columns=cols)
    latest = latest.assign(mark=latest.apply(marks_of, axis=1))
    marks = latest.pivot(index="label", columns="column", values="mark").reindex(index=order, columns=cols)
    ids = latest.pivot(index="label", columns="column", values="record_id").reindex(index=order, columns=cols)
    std = latest.pivot(index="label", columns="column", values="std").reindex(index=order, columns=cols).astype(float)
    info_rows = []
    for label in order:
        sub = df[df["label"] == label]
        # A model without a preset (an official pickle, --generator) reads as NaN beside named ones.
        preset = next((p for p in sub["preset"] if isinstance(p, str) and p), None)
        kind = generator_kind(preset)
        info_rows.append(
            {
                "preset": preset,
                "checkpoint_sha256": next((h for h in sub["checkpoint_sha256"] if h), None),
                "kind": kind[0] if kind else None,
                "mapping_layers": kind[1] if kind else None,
            }
        )
    info = pd.DataFrame(info_rows, index=pd.Index(order, name="label"),
                        columns=["preset", "checkpoint_sha256", "kind", "mapping_layers"])
    values.index.name = marks.index.name = ids.index.name = std.index.name = "label"
    return ModelTable(values, marks.astype(object).fillna(""), ids.astype(object).fillna(""), info, std)


def format_value(v: float) -> str:
    if pd.isna(v):
        return ""
    return f"{v:.2f}" if abs(v) < 1000 else f"{v:.1f}"


def format_cell(table: ModelTable, label: str, column: str) -> str:
    """A measured cell: KID with 4 decimals and its standard deviation (its values are ~1e-3),
    everything else as `format_value`; then the cell's marks."""
    v = table.values.at[label, column]
    if NOT_MEANINGFUL_MARK in table.marks.at[label, column]:
        text = "n/m"
    elif column == "kid" and pd.notna(v):
        std = table.std.at[label, column] if table.std is not None else float("nan")
        text = f"{v:.4f}" + (f" ± {std:.4f}" if pd.notna(std) else "")
    else:
        text = format_value(v)
    return text + table.marks.at[label, column]


@dataclass(frozen=True)
class DisplayRow:
    label: str
    cells: list[str]
    published: bool  # True for a published (paper) row
    record_ids: list[str]  # per cell, "" where none (published rows: the table's name instead)


def model_rows(table: ModelTable, published: bool = True) -> list[DisplayRow]:
    """Rows of the one-row-per-model table as strings with marks; each measured model is followed
    by the published rows of the paper configuration its preset reproduces."""
    rows = []
    for label in table.values.index:
        cells = [format_cell(table, label, c) for c in METRIC_COLUMNS]
        rows.append(DisplayRow(label, cells, False, [table.record_ids.at[label, c] for c in METRIC_COLUMNS]))
        if published:
            for pr in published_rows(table.info.at[label, "preset"]):
                cells = [format_value(pr.values.get(c, float("nan"))) for c in METRIC_COLUMNS]
                rows.append(DisplayRow(f"published: {pr.label}", cells, True, [pr.sources.get(c, "") for c in METRIC_COLUMNS]))
    return rows


def table4_rows(table: ModelTable, published: bool = True) -> list[tuple[str, str, DisplayRow]]:
    """Table-4 layout: (generator kind, mapping layers, row) with row cells FID, PPL full, PPL end,
    separability, one row per model and measured latent space, grouped by kind then depth."""
    def known(value):
        # A model of no known paper configuration (an official pickle) has None, read back as NaN.
        return None if value is None or (isinstance(value, float) and pd.isna(value)) else value

    def sort_key(label):
        kind, depth = known(table.info.at[label, "kind"]), known(table.info.at[label, "mapping_layers"])
        return (["traditional", "style-based"].index(kind) if kind else 2, depth if depth is not None else 99)

    out = []
    for label in sorted(table.values.index, key=sort_key):
        kind = known(table.info.at[label, "kind"]) or "unknown"
        depth = table.info.at[label, "mapping_layers"]
        depth_s = "?" if depth is None or pd.isna(depth) else str(int(depth))
        for space in ("z", "w"):
            cols = ["fid", f"ppl_{space}full", f"ppl_{space}end", f"ls_{space}"]
            if all(pd.isna(table.values.at[label, c]) for c in cols[1:]):
                continue
            cells = [format_cell(table, label, c) for c in cols]
            ids = [table.record_ids.at[label, c] for c in cols]
            out.append((kind, depth_s, DisplayRow(f"{label} ({space.upper()})", cells, False, ids)))
            if published:
                for pr in published_rows(table.info.at[label, "preset"]):
                    if any(c in pr.values for c in cols[1:]):
                        cells = [format_value(pr.values.get(c, float("nan"))) for c in cols]
                        src = [pr.sources.get(c, "") for c in cols]
                        out.append((kind, depth_s, DisplayRow(f"published: {pr.label} ({space.upper()})", cells, True, src)))
    return out


Verdict = Literal["held", "did not hold", "mixed", "not measured"]


@dataclass(frozen=True)
class Finding:
    claim: str
    verdict: Verdict
    evidence: list[str]  # one line per compared model / pair, with the measured values


def _verdict(outcomes: list[bool]) -> Verdict:
    if not outcomes:
        return "not measured"
    return "held" if all(outcomes) else "did not hold" if not any(outcomes) else "mixed"


def _has_mapping(table: ModelTable, label: str) -> bool:
    depth = table.info.at[label, "mapping_layers"]
    # Unknown depth: compare anyway (W differs from Z whenever a mapping network exists).
    return depth is None or pd.isna(depth) or depth > 0


def qualitative_findings(table: ModelTable) -> list[Finding]:
    """The paper's qualitative claims, checked on the measured values in `table`.

    1. Paths in W are shorter than in Z (Table 4: every generator with a mapping network).
    2. W is more linearly separable than Z (lower score).
    3. The style-based generator is more separable than the traditional one, each in the space
       the paper reports for it (W where there is a mapping network, Z otherwise).
    """
    v = table.values
    paths, paths_ev = [], []
    sep, sep_ev = [], []
    for label in v.index:
        if not _has_mapping(table, label):
            paths_ev.append(f"{label}: not applicable (no mapping network, W is the normalised Z)")
            sep_ev.append(f"{label}: not applicable (no mapping network)")
            continue
        for s in ("full", "end"):
            z, w = v.at[label, f"ppl_z{s}"], v.at[label, f"ppl_w{s}"]
            if pd.notna(z) and pd.notna(w):
                paths.append(bool(w < z))
                paths_ev.append(f"{label}: PPL {s} W {format_value(w)} {'<' if w < z else '>='} Z {format_value(z)}")
        z, w = v.at[label, "ls_z"], v.at[label, "ls_w"]
        if pd.notna(z) and pd.notna(w):
            sep.append(bool(w < z))
            sep_ev.append(f"{label}: separability W {format_value(w)} {'<' if w < z else '>='} Z {format_value(z)}")

    def own_space_sep(label):
        col = "ls_w" if _has_mapping(table, label) else "ls_z"
        return v.at[label, col], col[-1].upper()

    kinds = table.info["kind"]
    style = [lb for lb in v.index if kinds[lb] == "style-based" and pd.notna(own_space_sep(lb)[0])]
    trad = [lb for lb in v.index if kinds[lb] == "traditional" and pd.notna(own_space_sep(lb)[0])]
    kind_cmp, kind_ev = [], []
    for s in style:
        for t in trad:
            (sv, ss), (tv, ts) = own_space_sep(s), own_space_sep(t)
            kind_cmp.append(bool(sv < tv))
            kind_ev.append(
                f"{s} (style-based, {ss}) {format_value(sv)} {'<' if sv < tv else '>='} {t} (traditional, {ts}) {format_value(tv)}"
            )
    return [
        Finding("W paths are shorter than Z paths (PPL W < PPL Z)", _verdict(paths), paths_ev),
        Finding("W is more linearly separable than Z (separability W < Z)", _verdict(sep), sep_ev),
        Finding("the style-based generator is more separable than the traditional one", _verdict(kind_cmp), kind_ev),
    ]


def substitute_networks(frame: pd.DataFrame) -> list[str]:
    """Distinct substitute feature networks used by any record, as 'name (weights)'."""
    sub = frame[frame["substitute"]]
    return sorted({f"{n} ({w})" for n, w in zip(sub["feature_network"], sub["feature_weights"])})


def frame_notes(frame: pd.DataFrame) -> list[str]:
    """What the tables leave out, said rather than done silently: records of metrics that are not
    tabulated, records replaced by a newer one for the same model and column, and separability
    scores without signal."""
    notes = []
    # DCI/MIG/SAP records have a table of their own (disentanglement_table).
    other = sorted(m for m in set(frame.loc[frame["column"].isna(), "metric"]) if not m.startswith(("dci_", "mig_", "sap_")))
    if other:
        notes.append(f"records of metric(s) {', '.join(other)} are not tabulated (the tables show fid*, kid*, pr*, "
                     "ppl_[zw]full/end, ls_z, ls_w, and dci/mig/sap per space); they are listed under Records and in "
                     "results.csv")
    df = frame[frame["column"].notna()].copy()
    if len(df):
        df["label"] = _model_labels(df)
        df = df.sort_values("created", kind="stable")
        for (label, column), group in df.groupby(["label", "column"], sort=False):
            if len(group) > 1:
                notes.append(f"{label} {COLUMN_TITLES[column]}: {len(group)} records, the table shows the newest "
                             f"(record {group['record_id'].iloc[-1]}); the others are listed under Records")
    for _, r in frame[frame["single_class"]].iterrows():
        notes.append(f"{r['model']} {r['metric']} = {r['value']:.4g} has no signal: every attribute's kept samples had "
                     f"one label (marked {SINGLE_CLASS_MARK})")
    return notes
# ---------------------------------------------------------------------------------------------
# Disentanglement scores (DCI, MIG, SAP) per latent space, beside PPL and separability.

DISENTANGLEMENT_COLUMNS = ("PPL full", "PPL end", "Separability", "DCI-D", "DCI-C", "DCI-I", "MIG", "SAP")
DISENTANGLEMENT_SPACES = ("z", "w", "s")


def disentanglement_table(loaded: Sequence[LoadedRecord]) -> pd.DataFrame:
    """One row per (model, latent space) with a DCI, MIG or SAP record, the latest record per
    (model, metric): PPL full/end and separability (lower is better; Z and W only) beside DCI
    disentanglement, completeness, test informativeness, MIG and SAP (higher is better). Index
    (model, space); NaN where not measured; column "DCI predictor" names the DCI regressor."""
    latest: dict[tuple[str, str], ResultRecord] = {}
    for lr in sorted(loaded, key=lambda lr: lr.record.created):
        latest[(lr.record.model, lr.record.metric)] = lr.record
    scores = ("dci", "mig", "sap")
    rows, index = [], []
    for model in dict.fromkeys(lr.record.model for lr in loaded):
        for space in DISENTANGLEMENT_SPACES:
            got = {s: latest.get((model, f"{s}_{space}")) for s in scores}
            if not any(got.values()):
                continue

            def value(metric: str) -> float:
                rec = latest.get((model, metric))
                return rec.value if rec is not None else float("nan")

            dci = got["dci"]
            rows.append({
                "PPL full": value(f"ppl_{space}full"),
                "PPL end": value(f"ppl_{space}end"),
                "Separability": value(f"ls_{space}"),
                "DCI-D": dci.value if dci else float("nan"),
                "DCI-C": dci.extras["completeness"] if dci else float("nan"),
                "DCI-I": dci.extras["informativeness_test"] if dci else float("nan"),
                "MIG": value(f"mig_{space}"),
                "SAP": value(f"sap_{space}"),
                "DCI predictor": dci.extras["regressor"] if dci else "",
            })
            index.append((model, space))
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["model", "space"]) if index else None,
                        columns=[*DISENTANGLEMENT_COLUMNS, "DCI predictor"])


def disentanglement_ordering(table: pd.DataFrame) -> list[str]:
    """Per model and score (DCI-D, MIG, SAP): the spaces from most to least disentangled, with values."""
    lines = []
    for model in dict.fromkeys(table.index.get_level_values("model")):
        sub = table.xs(model, level="model")
        for col in ("DCI-D", "MIG", "SAP"):
            vals = sub[col].dropna()
            if len(vals) >= 2:
                ordered = list(vals.sort_values(ascending=False, kind="stable").items())
                text = f"{ordered[0][0].upper()} {ordered[0][1]:.3f}"
                for (_, prev), (space, v) in zip(ordered, ordered[1:]):
                    text += f" {'>' if prev > v else '='} {space.upper()} {v:.3f}"
                lines.append(f"{model}: {col} {text}")
    return lines
