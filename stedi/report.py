"""One run as a self-contained HTML page: stages, record funnels, checks, schema drift (`stedi report`).

Made from the run's entry in the history (stedi.pipeline.run_history), so the
page shows the figures `stedi history` and, for a published run, `stedi
status` show. The history counts the lines carrying each key outside a
schema; the file given as an example of each key is the one the landing
stage recorded beside that count (example_files): in published.json while
the run is published or kept there, else in the run's staged
<source>_drift tables while they are kept. No script, no font or stylesheet
from elsewhere: it opens offline, in a mail or an archive.
"""

from __future__ import annotations

from html import escape
from typing import Any, Mapping

from stedi.catalogue import LANDING_SOURCES, PLAIN, SOURCE, STAGE, STAGE_LIST
from stedi.lake import Lake, published_entries

Examples = Mapping[str, Mapping[str, str]]  # source -> key outside its schema -> a file with a line carrying it

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #1d2430; }
h1 { font-size: 1.4rem; margin-bottom: .2rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
.meta { color: #5b6575; } .outcome { font-weight: 600; }
.published { color: #17703a; } .failed, .crashed { color: #b3261e; } .not_run { color: #8a93a3; }
.stopped, .timed_out { color: #8a6d00; }
ol.stages { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .4rem; }
ol.stages li { border: 1px solid #c9d1dc; border-radius: 6px; padding: .4rem .6rem; min-width: 9rem; }
ol.stages li.failed { border-color: #b3261e; background: #fdecea; }
ol.stages li.not_run { border-style: dashed; }
.funnel { margin: .6rem 0 1.2rem; }
.step { display: grid; grid-template-columns: 16rem 7rem 1fr; align-items: center; gap: .5rem; margin: .15rem 0; }
.bar { height: .8rem; background: #3b6fb6; border-radius: 3px; }
.aside .bar { background: #d08a2c; } .aside { color: #6b4b16; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: .25rem .5rem; }
tr.failed td { background: #fdecea; font-weight: 600; } tr.skipped td { color: #8a93a3; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
p.keys { margin: -.6rem 0 1.2rem; color: #5b6575; }
p.keys.drift, tr.drift td { color: #6b4b16; }
td.file { font: 12px ui-monospace, monospace; word-break: break-all; } td.file.unknown { color: #8a93a3; }
"""


def render(run: dict[str, Any], examples: Examples | None = None) -> str:
    """The page for one run (an entry of stedi.pipeline.run_history). With `examples` (example_files), each
    key outside a schema is shown with a file that has a line carrying it, or "not kept"."""
    title = f"STEDI run {run['run_id']}"
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta"><span class="outcome {escape(run["outcome"])}" id="outcome">{escape(run["outcome"])}</span>'
        f" · engine {escape(run['engine'])} · consent scope {escape(run['consent_scope'])}"
        f" · finished {escape(run['finished_at'])}</p>",
        _failures(run),
        "<h2>Stages</h2>", _stages(run),
        "<h2>From landing lines to published rows</h2>", *(_funnel(run, source.name) for source in LANDING_SOURCES),
        _plain_stages(run),
        "<h2>Checks</h2>", _checks(run),
        "<h2>Keys outside the schema (schema drift)</h2>", _drift(run, examples),
        "</body></html>", "",
    ])


def _stage_status(run: dict[str, Any], stage: str) -> str:
    if run["outcome"] in ("crashed", "stopped", "timed_out") and stage == run.get("ended_at"):
        return "failed" if run["outcome"] == "crashed" else "stopped"
    if stage not in run["stage_seconds"]:
        return "not_run"
    failed = {check.split(".")[0] for check in run["failures"]}
    if failed & set(STAGE[stage].tables):
        return "failed"
    return "passed"


def _stages(run: dict[str, Any]) -> str:
    items = []
    for stage in STAGE_LIST:
        status = _stage_status(run, stage.name)
        seconds = run["stage_seconds"].get(stage.name)
        timing = "" if seconds is None else (f"{seconds:.2f} s + checks "
                                             f"{run['check_seconds'].get(stage.name, 0):.2f} s")
        items.append(f'<li class="{status}" data-stage="{escape(stage.name)}"><b>{escape(stage.name)}</b><br>'
                     f"{status.replace('_', ' ')}<br><small>{timing}</small></li>")
    return '<ol class="stages">' + "".join(items) + "</ol>"


def _funnel(run: dict[str, Any], source: str) -> str:
    """A source's lines: landed or rejected, then each stage that reads its records: kept or filtered."""
    rows, definition = run["rows"], SOURCE[source]
    landed = rows.get(definition.landing_table)
    if landed is None:
        return ""
    rejected = run["rejected"].get(source, {})
    steps = [("lines with a record", sum(rejected.values()) + landed, "", "lines")]
    steps += [(f"rejected: {reason}", count, "aside", "rejected") for reason, count in rejected.items()]
    steps.append((definition.landing_table, landed, "", "landed"))
    table = definition.landing_table
    for stage in STAGE_LIST:  # each stage that keeps or filters this source's records, in order
        if stage.records_from == table and stage.name in rows:
            steps += [(f"{stage.name}: {rule}", count, "aside", "filtered")
                      for rule, count in run["filtered"].get(stage.name, {}).items()]
            steps.append((stage.name, rows[stage.name], "", "kept"))
            table = stage.name
    widest = max(count for _, count, _, _ in steps) or 1
    lines = [f'<div class="step {kind}" data-figure="{figure}"><span>{escape(label)}</span>'
             f'<span class="n">{count:,}</span>'
             f'<span class="bar" style="width:{100 * count / widest:.1f}%"></span></div>'
             for label, count, kind, figure in steps]
    return (f'<h3>{escape(source)}</h3><div class="funnel" data-source="{escape(source)}">' + "".join(lines) + "</div>"
            + _unknown_keys(run, source))


def _unknown_keys(run: dict[str, Any], source: str) -> str:
    """Under a source's funnel: how many keys its lines carry outside the schema (each is in the drift section)."""
    keys = run.get("drift", {}).get(source, {})
    text = (f"{len(keys):,} key{'' if len(keys) == 1 else 's'} outside the schema, kept out of "
            f"{SOURCE[source].landing_table}: see schema drift, below the checks" if keys
            else "no key outside the schema")
    return (f'<p class="keys{" drift" if keys else ""}" data-unknown-keys="{escape(source)}" '
            f'data-count="{len(keys)}">{escape(text)}</p>')


def _plain_stages(run: dict[str, Any]) -> str:
    """Stages that join rather than filter (the ML table): their rows, and what they are."""
    return "".join(
        f'<p class="step" data-figure="kept"><span>{escape(stage.name)}</span>'
        f'<span class="n">{run["rows"][stage.name]:,}</span><span>{escape(stage.summary)}</span></p>'
        for stage in STAGE_LIST if stage.kind == PLAIN and stage.name in run["rows"])


def _checks(run: dict[str, Any]) -> str:
    lines = ["<table><tr><th>stage</th><th>check</th><th>status</th><th>expected</th><th>actual</th></tr>"]
    for check in run["results"]:
        lines.append(f'<tr class="{escape(check["status"])}" id="{escape(check["table"] + "." + check["check"])}">'
                     f"<td>{escape(check['stage'])}</td><td>{escape(check['table'])}.{escape(check['check'])}</td>"
                     f"<td>{escape(check['status'])}</td><td>{escape(check['expected'])}</td>"
                     f"<td>{escape(check['actual'])}</td></tr>")
    return "".join(lines) + "</table>"


def _drift(run: dict[str, Any], examples: Examples | None) -> str:
    """Per source whose lines landed: each key outside its schema, the lines carrying it and (with
    `examples`) a file with one."""
    drift = run.get("drift", {})
    landed = [source.name for source in LANDING_SOURCES if source.landing_table in run["rows"]]
    if not landed:
        return "<p>No figures: the landing stage did not finish.</p>"
    lines = ["<p>Information, never a failure: a line with such a key lands if its schema fields do, "
             "without the key.</p>",
             '<table class="drift"><tr><th>source</th><th>key</th><th class="n">lines</th>'
             + ("" if examples is None else "<th>example file</th>") + "</tr>"]
    for source in landed:
        keys = drift.get(source, {})
        if not keys:
            lines.append(f'<tr data-drift="{escape(source)}"><td>{escape(source)}</td>'
                         f'<td colspan="{2 if examples is None else 3}">none</td></tr>')
        for key, count in keys.items():
            lines.append(f'<tr class="drift" data-drift="{escape(source)}" data-key="{escape(key)}">'
                         f'<td>{escape(source)}</td><td>{escape(key)}</td><td class="n">{count:,}</td>'
                         f"{_example_cell(examples, source, key)}</tr>")
    return "".join(lines) + "</table>"


def _example_cell(examples: Examples | None, source: str, key: str) -> str:
    if examples is None:
        return ""
    file = examples.get(source, {}).get(key)
    return '<td class="file unknown">not kept</td>' if file is None else f'<td class="file">{escape(file)}</td>'


def example_files(lake: Lake, run_id: str) -> dict[str, dict[str, str]]:
    """Per source and key outside its schema, the file the run's landing stage gave as an example: from the
    run's entry in published.json (what `stedi status --json` shows), else from its staged <source>_drift
    tables; {} when neither is kept any more."""
    manifest = lake.published()
    for entry in published_entries(manifest) if manifest else []:
        if entry["run_id"] == run_id and "drift" in entry:
            return {source: {key: found["example_file"] for key, found in keys.items()}
                    for source, keys in entry["drift"].items()}
    staging = lake.staging(run_id)
    tables = {source.name: staging / source.drift_table for source in LANDING_SOURCES}
    if not all(table.is_dir() for table in tables.values()):
        return {}
    import duckdb

    from stedi.duck import parquet_sql

    con = duckdb.connect()
    try:
        return {source: dict(con.execute(f"SELECT key, example_file FROM ({parquet_sql(table)})").fetchall())
                for source, table in tables.items()}
    finally:
        con.close()


def _failures(run: dict[str, Any]) -> str:
    if not run["failures"]:
        return ""
    items = "".join(f'<li><a href="#{escape(failure.split(":")[0])}">{escape(failure)}</a></li>'
                    for failure in run["failures"])
    return f'<div class="failed" id="failures"><b>Failed checks</b><ul>{items}</ul></div>'
