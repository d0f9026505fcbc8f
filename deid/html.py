"""The self-contained ``report.html``: one file, inline CSS and inline PNG thumbnails, no script.

It shows what a reviewer needs first: totals by status, modality and action, the throughput, the
failures with their reasons, the flags (studies whose instances carry different patient
pseudonyms, values removed by the residual-identity guard, warnings) and thumbnails of cleaned
images with the masked boxes outlined. Everything shown comes from the manifest: paths, tags,
action codes, counts and pseudonyms, never an original value.
"""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from deid.manifest import InputRecord
from deid.report import MAX_FLAG_SOURCES, RunInfo, Totals, atomic_text
from deid.results import Status

logger = logging.getLogger(__name__)

#: What each action code means (PS3.15 Table E.1-1a), for the totals table.
ACTION_MEANINGS = {
    "X": "removed",
    "Z": "replaced with a zero-length value",
    "D": "replaced with a dummy value",
    "U": "UID replaced with a pseudonym",
    "C": "cleaned (pseudonym or shifted date)",
    "K": "kept",
    "guard": "removed by the residual-identity guard",
}

_STATUS_ORDER = tuple(s.value for s in Status)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1d2430;
background:#fafbfc;line-height:1.4}
h1{margin:0 0 .2rem;font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #d0d7de;
padding-bottom:.3rem;font-size:1.2rem}
.sub{color:#57606a;margin:0 0 1rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:.7rem 1rem;min-width:8rem}
.card .n{font-size:1.8rem;font-weight:600}.card .l{color:#57606a;font-size:.85rem}
.card.written .n{color:#1a7f37}.card.failed .n{color:#cf222e}.card.skipped .n{color:#9a6700}
.card.dry-run .n{color:#0969da}
table{border-collapse:collapse;background:#fff;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.path{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
.ok{color:#1a7f37}.none{color:#57606a;font-style:italic}
.grid{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:.5rem;
max-width:260px}
figure img{display:block;max-width:240px;max-height:240px;image-rendering:pixelated;
background:#000}
figcaption{font-size:.8rem;color:#57606a;word-break:break-all;margin-top:.3rem}
.flag-kind{font-weight:600;white-space:nowrap}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], table_id: str) -> str:
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    head = ""
    if headers:
        head = "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr></thead>"
    return f'<table id="{table_id}">{head}<tbody>{body}</tbody></table>'


def _num(value: int | float, cell_id: str | None = None) -> str:
    ident = f' id="{cell_id}"' if cell_id else ""
    return f'<td class="num"{ident}>{_e(value)}</td>'


def _cell(value: object, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f"<td{cls}>{_e(value)}</td>"


def render_html(
    info: RunInfo,
    counts: Mapping[str, int],
    totals: Totals,
    thumbnails: Sequence[tuple[InputRecord, bytes]],
) -> str:
    """The report page as a string (see :func:`write_html`)."""
    total = sum(counts.values())
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>deid report - {_e(info.out_dir)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>De-identification report</h1>",
        f'<p class="sub">deid {_e(info.version)} · DICOM PS3.15 {_e(info.ps315_edition)} · '
        f"profile <b>{_e(info.profile)}</b>"
        + (f" + {_e(', '.join(info.options))}" if info.options else "")
        + f" · pixels {_e(info.pixels)} · {_e(info.finished)}"
        + (" · <b>dry run</b>" if info.dry_run else "")
        + "</p>",
    ]

    # Totals by status.
    parts.append('<div class="cards" id="totals">')
    parts.append(
        f'<div class="card total"><div class="n" id="total-inputs">{total}</div>'
        '<div class="l">inputs</div></div>'
    )
    for status in _STATUS_ORDER:
        n = counts.get(status, 0)
        if n or status in (Status.WRITTEN.value, Status.FAILED.value):
            parts.append(
                f'<div class="card {status}"><div class="n" id="count-{status}">{n}</div>'
                f'<div class="l">{_e(status)}</div></div>'
            )
    parts.append(
        f'<div class="card"><div class="n" id="throughput">{info.throughput:.1f}</div>'
        '<div class="l">files/s this run</div></div>'
    )
    parts.append("</div>")

    # The run.
    parts.append("<h2>Run</h2>")
    rows = [
        ("Sources", "; ".join(info.sources)),
        ("Output folder", info.out_dir),
        ("Profile", info.profile + (f" + {', '.join(info.options)}" if info.options else "")),
        ("Profile file (SHA-256)", info.profile_file_sha256 or "none (shipped profile)"),
        ("Pixel mode / redaction", f"{info.pixels} / {info.redact}"),
        ("Output layout", info.layout),
        ("Key", "persistent (key file or $DEID_KEY)" if info.key == "persistent"
         else "one-run random key (anonymisation; pseudonyms match no other run)"),
        ("Executor", info.executor),
        ("Started / finished (UTC)", f"{info.started} / {info.finished}"),
        ("This run", f"{info.processed} inputs processed in {info.elapsed_s:.1f} s "
         f"({info.throughput:.1f} files/s); {info.done_before} already done by an earlier run"),
        ("Worker time per input", f"{totals.busy_s / total:.3f} s mean" if total else "-"),
        ("Mapping file", info.mapping_file or "none"),
    ]
    parts.append(_table((), [["<th>" + _e(k) + "</th>", _cell(v)] for k, v in rows], "run"))

    # By modality and by action.
    parts.append("<h2>Content</h2>")
    modality_rows = [
        [_cell(m), _num(n, f"modality-{m}")] for m, n in sorted(totals.by_modality.items())
    ]
    parts.append(_table(("Modality", "Inputs"), modality_rows, "modalities"))
    action_rows = [
        [_cell(code), _cell(ACTION_MEANINGS.get(code, "")), _num(n, f"action-{code}")]
        for code, n in sorted(totals.by_action.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    parts.append(_table(("Action", "Meaning", "Elements"), action_rows, "actions"))
    parts.append(_table(
        ("Pixel data", ""),
        [[_cell("inputs scanned for burned-in text"), _num(totals.pixels_scanned,
                                                           "pixels-scanned")],
         [_cell("text boxes masked"), _num(totals.boxes_masked, "boxes-masked")],
         [_cell("inputs where the guard removed a value"), _num(totals.with_residual_hits,
                                                                "residual-inputs")]],
        "pixels",
    ))

    # Failures.
    n_failed = counts.get(Status.FAILED.value, 0)
    parts.append(f'<h2 id="failures-title">Failures ({n_failed})</h2>')
    if totals.failures:
        rows_f = [
            [_cell(f["source"], "path"), _cell(f["error_class"] or ""), _cell(f["reason"] or "")]
            for f in totals.failures
        ]
        parts.append(_table(("Input", "Error", "Reason"), rows_f, "failures"))
        if totals.more_failures:
            parts.append(f"<p>… and {totals.more_failures} more: see report.csv.</p>")
    else:
        parts.append('<p class="ok" id="no-failures">No input failed.</p>')

    # Flags.
    n_flags = sum(f.inputs for f in totals.flags)
    parts.append(f'<h2 id="flags-title">Flags for review ({n_flags} inputs)</h2>')
    if totals.flags:
        rows_g = [
            [_cell(flag.kind, "flag-kind"), _cell(flag.detail), _num(flag.inputs),
             _cell("; ".join(flag.sources[:MAX_FLAG_SOURCES])
                   + (" …" if flag.inputs > min(len(flag.sources), MAX_FLAG_SOURCES) else ""),
                   "path")]
            for flag in totals.flags
        ]
        parts.append(_table(("Flag", "Detail", "Inputs", "Which"), rows_g, "flags"))
        if totals.more_flags:
            parts.append(f"<p>… and {totals.more_flags} more findings: see report.json.</p>")
    else:
        parts.append('<p class="none" id="no-flags">Nothing flagged.</p>')

    # Thumbnails.
    parts.append(f'<h2 id="thumbnails-title">Cleaned images ({len(thumbnails)} shown)</h2>')
    if thumbnails:
        parts.append('<div class="grid" id="thumbnails">')
        for record, png in thumbnails:
            pixels = record.result.pixels
            masked = pixels.masked if pixels is not None else 0
            data = base64.b64encode(png).decode("ascii")
            parts.append(
                f'<figure><img alt="{_e(record.result.source)}" '
                f'src="data:image/png;base64,{data}"><figcaption>{_e(record.result.source)}'
                f"<br>{masked} box{'es' if masked != 1 else ''} masked"
                f"{' (outlined)' if masked else ''}</figcaption></figure>"
            )
        parts.append("</div>")
    else:
        parts.append('<p class="none">No thumbnail (no pixel data was scanned).</p>')
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(
    path: Path,
    info: RunInfo,
    counts: Mapping[str, int],
    totals: Totals,
    thumbnails: Sequence[tuple[InputRecord, bytes]],
) -> None:
    """Write ``report.html`` atomically."""
    page = render_html(info, counts, totals, thumbnails)
    with atomic_text(path) as handle:
        handle.write(page)
