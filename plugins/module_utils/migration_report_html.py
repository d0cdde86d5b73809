# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration report as one self-contained HTML page: inline CSS, an inline SVG timeline, tables.

No script and nothing fetched, so it opens from a file with no network and prints cleanly. Every
value from the ledger goes through ``_e`` (HTML-escaped): account names, event details and DNS
names are whatever operators and playbooks recorded. The data comes from migration_report.collect.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import html
import math
from datetime import datetime, timezone

from ansible_collections.hosting.migration.plugins.module_utils.ledger_records import normalise_time, parse_time

NONE_YET = "none yet"

STYLE = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --band: #f5f7fa; --accent: #334e68; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); margin: 0 auto; padding: 24px; max-width: 1120px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--accent); }
p.sub, p.note, footer { color: var(--muted); margin: 0 0 8px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin-top: 16px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; background: var(--band); }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 20px; font-weight: 600; }
.card .d { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.t { white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.group td { border-top: 2px solid var(--line); }
.none { color: var(--muted); font-style: italic; }
.bad { color: #b42318; font-weight: 600; }
.ok { color: #027a48; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; color: var(--muted); }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -2px; border-radius: 2px; }
svg { width: 100%; height: auto; display: block; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: var(--ink); }
svg .axis text { fill: var(--muted); }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .open { stroke: var(--ink); stroke-dasharray: 3 2; fill-opacity: .55; }
@media print {
  body { padding: 0; max-width: none; font-size: 11px; }
  h2 { break-after: avoid; }
  tr, .card, svg { break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  @page { margin: 14mm; }
}
"""

PHASE_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#e15759")
KIND_COLOURS = {"freeze": "#d62728", "move_out": "#c6d4e6", "move_back": "#cfe6c6", "lease": "#bab0ac",
                "reinstall": "#8c564b", "reroute": "#6a3d9a", "dns": "#0f8b8d", "dns_restore": "#0f8b8d"}
LEGEND = (("move out", "move_out"), ("move back", "move_back"), ("freeze", "freeze"), ("transit lease", "lease"),
          ("reinstall", "reinstall"), ("reroute", "reroute"), ("DNS change", "dns"))

# The timeline's geometry, in SVG user units (the SVG scales to the page's width).
WIDTH, LABEL_W, RIGHT_PAD, ROW_H, BAR_H, TOP, AXIS_H = 1000, 150, 30, 24, 14, 8, 24
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
              172800, 604800, 1209600, 2592000)
FIXED_ROWS = (("phases", "phases"), ("lease", "transit lease"), ("reinstall", "reinstall"),
              ("addresses", "addresses"), ("DNS", "DNS"))


# --- text --------------------------------------------------------------------------------------

def _e(value):
    """HTML-escaped text of any value; '-' for none."""
    return "-" if value is None else html.escape(str(value), quote=True)


def bytes_text(count):
    if count is None:
        return "?"
    count = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(count) < 1000:
            return ("%d %s" if unit == "B" else "%.1f %s") % (count, unit)
        count /= 1000.0
    return "%.1f TB" % count


def seconds_text(seconds):
    if seconds is None:
        return "-"
    if seconds < 60:
        return ("%.2f s" if seconds < 10 else "%.1f s") % seconds
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return "%d min %02d s" % (minutes, rest)
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return "%d h %02d min" % (hours, minutes)
    return "%d d %d h" % divmod(hours, 24)


def time_text(text):
    """``2025-03-01 12:00:05`` (UTC) from the ledger's time text; '-' for none."""
    return "-" if not text else _moment(text).strftime("%Y-%m-%d %H:%M:%S")


def _moment(text):
    return parse_time(normalise_time(text))


def _span_s(start, end):
    if not start or not end:
        return None
    return (_moment(end) - _moment(start)).total_seconds()


def _none(columns, text=NONE_YET):
    return '<tr><td colspan="%d" class="none">%s</td></tr>' % (columns, _e(text))


def _table(headers, rows, empty=NONE_YET):
    head = "".join('<th%s>%s</th>' % (' class="n"' if name.startswith("#") else "", _e(name.lstrip("#")))
                   for name in headers)
    body = "".join(rows) if rows else _none(len(headers), empty)
    return "<table><thead><tr>%s</tr></thead><tbody>%s</tbody></table>" % (head, body)


def _cells(*cells):
    """A row; each cell is text (escaped here) or (text, class)."""
    out = []
    for cell in cells:
        text, css = cell if isinstance(cell, tuple) else (cell, None)
        out.append("<td%s>%s</td>" % (' class="%s"' % css if css else "", _e(text)))
    return "<tr>%s</tr>" % "".join(out)


# --- the timeline ------------------------------------------------------------------------------

def _range(spans):
    times = [_moment(t).timestamp() for span in spans for t in (span["start"], span["end"]) if t]
    first, last = min(times), max(times)
    # A chart of less than a minute (a server with one move so far) still shows a minute.
    last = max(last, first + 60)
    pad = (last - first) * 0.01
    return first - pad, last + pad


def _ticks(first, last):
    step = next((s for s in TICK_STEPS if (last - first) / s <= 8), TICK_STEPS[-1])
    tick = math.ceil(first / step) * step
    ticks = []
    while tick <= last:
        ticks.append(tick)
        tick += step
    if step >= 86400:
        fmt = "%m-%d"
    elif last - first <= 86400 and _day(first) == _day(last):
        fmt = "%H:%M:%S" if step < 60 else "%H:%M"
    else:
        fmt = "%m-%d %H:%M"
    return [(tick, datetime.fromtimestamp(tick, timezone.utc).strftime(fmt)) for tick in ticks]


def _day(stamp):
    return datetime.fromtimestamp(stamp, timezone.utc).date()


def _rows(data, spans):
    used = {span["row"] for span in spans}
    rows = [(key, label) for key, label in FIXED_ROWS if key in used]
    for account in data["accounts"]:
        key = "account " + account["name"]
        if key in used:
            name = account["name"]
            rows.append((key, name if len(name) <= 22 else name[:21] + "\u2026"))
    return rows


def _colour(span, phases):
    if span["kind"] == "phase":
        return phases.setdefault(span["label"], PHASE_COLOURS[len(phases) % len(PHASE_COLOURS)])
    if span["kind"] == "move":
        return KIND_COLOURS["move_back" if span["label"].startswith("back") else "move_out"]
    return KIND_COLOURS.get(span["kind"], "#999999")


def _title(span):
    parts = [span["label"], time_text(span["start"])]
    if span["end"] and span["end"] != span["start"]:
        parts.append("to " + time_text(span["end"]))
        parts.append("(%s)" % seconds_text(_span_s(span["start"], span["end"])))
    elif span["end"] is None and span["kind"] not in ("reroute", "dns", "dns_restore"):
        parts.append("(not finished)")
    if span.get("switch_s") is not None:
        parts.append("measured loss %s" % seconds_text(span["switch_s"]))
    return " ".join(parts)


def _shape(span, x, right, y, fill):
    title = "<title>%s</title>" % _e(_title(span))
    if span["kind"] in ("reroute", "dns", "dns_restore"):
        mid = y + ROW_H / 2
        if span["kind"] == "reroute":
            path = "M%.1f %.1f l5 -7 h-10 z M%.1f %.1f v%.1f" % (x, mid - 1, x, mid - 8, ROW_H - 6)
            return '<path d="%s" fill="%s" stroke="%s" stroke-width="1.5">%s</path>' % (path, fill, fill, title)
        hollow = ' fill="white" stroke="%s"' % fill if span["kind"] == "dns_restore" else ' fill="%s"' % fill
        return '<path d="M%.1f %.1f l5 5 l-5 5 l-5 -5 z"%s>%s</path>' % (x, mid - 5, hollow, title)
    height = BAR_H if span["kind"] != "freeze" else BAR_H + 4
    top = y + (ROW_H - height) / 2
    width = max(right - x, 2.5)
    css = ' class="open"' if span["end"] is None else ""
    shape = '<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="2" fill="%s"%s>%s</rect>' % (
        x, top, width, height, fill, css, title)
    if span["kind"] in ("phase", "lease") and width > 7 * len(span["label"]) + 8:
        colour = "white" if span["kind"] == "phase" else "#1f2933"
        shape += '<text x="%.1f" y="%.1f" style="fill:%s">%s</text>' % (x + 4, top + BAR_H - 3, colour, _e(span["label"]))
    return shape


def timeline_svg(data):
    """The SVG chart of ``data["timeline"]``; '' when there is nothing to draw."""
    spans = [span for span in data["timeline"] if span["start"]]
    if not spans:
        return ""
    first, last = _range(spans)
    rows = _rows(data, spans)
    index = {key: number for number, (key, dummy) in enumerate(rows)}
    plot_w = WIDTH - LABEL_W - RIGHT_PAD
    height = TOP + len(rows) * ROW_H + AXIS_H

    def x_of(text):
        return LABEL_W + (_moment(text).timestamp() - first) / (last - first) * plot_w

    out = ['<svg viewBox="0 0 %d %d" role="img" aria-label="timeline">'
           % (WIDTH, height)]
    out.append('<g class="axis">')
    bottom = TOP + len(rows) * ROW_H
    for tick, label in _ticks(first, last):
        x = LABEL_W + (tick - first) / (last - first) * plot_w
        out.append('<line class="grid" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>' % (x, TOP, x, bottom + 4))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x, bottom + 16, _e(label)))
    out.append('<text x="6" y="%d">%s UTC</text></g>' % (bottom + 16, _e(
        datetime.fromtimestamp(first, timezone.utc).strftime("%Y-%m-%d"))))
    for number, (key, label) in enumerate(rows):
        y = TOP + number * ROW_H
        if number % 2 == 0:
            out.append('<rect x="0" y="%d" width="%d" height="%d" fill="#f5f7fa"/>' % (y, WIDTH, ROW_H))
        out.append('<text x="6" y="%.1f">%s</text>' % (y + ROW_H / 2 + 4, _e(label)))
    phases = {}
    # Moves first, so that their freeze windows are drawn over them.
    for span in sorted(spans, key=lambda item: item["kind"] != "move"):
        y = TOP + index[span["row"]] * ROW_H
        right = x_of(span["end"]) if span["end"] else LABEL_W + plot_w
        out.append(_shape(span, x_of(span["start"]), right, y, _colour(span, phases)))
    out.append("</svg>")
    legend = "".join('<span><i style="background:%s"></i>%s</span>' % (colour, _e(phase))
                     for phase, colour in phases.items())
    kinds = {span["kind"] if span["kind"] != "move" else ("move_back" if span["label"].startswith("back") else "move_out")
             for span in spans}
    legend += "".join('<span><i style="background:%s"></i>%s</span>' % (KIND_COLOURS[key], _e(name))
                      for name, key in LEGEND if key in kinds)
    return "".join(out) + '<p class="legend">%s</p>' % legend


# --- the sections ------------------------------------------------------------------------------

def _card(key, value, detail=""):
    return '<div class="card"><div class="k">%s</div><div class="v">%s</div><div class="d">%s</div></div>' % (
        _e(key), _e(value), _e(detail))


def _summary(data):
    summary = data["summary"]
    live = ", ".join("%d on %s" % (count, server) for server, count in sorted(summary["accounts_live_on"].items()))
    switch = summary["switch_max_s"]
    lease = summary["lease_amount"]
    if lease is None:
        lease_detail = "waiting, place %d in line" % summary["waiting_position"] if summary["waiting_position"] else ""
    else:
        lease_detail = "so far (lease running)" if summary["lease_running"] else "final"
    return '<div class="cards">%s</div>' % "".join((
        _card("accounts", summary["accounts_total"], live or NONE_YET),
        _card("moves done", "%d / %d" % (summary["moves_done"], summary["moves_total"]),
              "%d unfinished" % summary["moves_unfinished"] if summary["moves_unfinished"] else ""),
        _card("freeze, longest", seconds_text(summary["freeze_max_s"]), summary["freeze_max_account"] or NONE_YET),
        _card("freeze, total", seconds_text(summary["freeze_total_s"]) if summary["freeze_max_s"] is not None else "-"),
        _card("bytes moved", bytes_text(summary["bytes_moved"]), "files %s, databases %s" % (
            bytes_text(summary["files_bytes"]), bytes_text(summary["databases_bytes"]))),
        _card("reroutes", len(summary["reroutes"]), "longest loss %s" % seconds_text(switch) if switch is not None
              else NONE_YET),
        _card("DNS records changed", summary["dns_records_changed"]),
        _card("transit lease", lease or "-", lease_detail or NONE_YET),
    ))


def _phases(data):
    history = data["server"]["phase_history"]
    rows = []
    for number, change in enumerate(history):
        until = history[number + 1]["at"] if number + 1 < len(history) else None
        rows.append(_cells(change["phase"], (time_text(change["at"]), "t"),
                           (time_text(until) if until else "(current)", "t"),
                           (seconds_text(_span_s(change["at"], until)), "n")))
    out = _table(["phase", "from", "until", "#lasted"], rows)
    reinstalls = [_cells((time_text(item["at"]), "t"), item["version"], item["driver"],
                         (seconds_text(item["elapsed_s"]), "n")) for item in data["reinstalls"]]
    if reinstalls:
        out += "<h3>Reinstalls</h3>" + _table(["done at", "version", "driver", "#took"], reinstalls)
    return out


def _copies(account):
    return ", ".join("%s %s" % (copy["server"], copy["state"]) for copy in account["copies"])


def _accounts(data):
    rows = []
    for account in data["accounts"]:
        lead = [account["name"], account["live_server"], _copies(account)]
        if not account["moves"]:
            cells = "".join("<td>%s</td>" % _e(text) for text in lead)
            rows.append('<tr class="group">%s<td colspan="8" class="none">no move yet</td></tr>' % cells)
            continue
        for number, move in enumerate(account["moves"]):
            cells = lead if number == 0 else ["", "", ""]
            verification = move["verification"]
            row = _cells(*cells + [
                "%s: %s to %s" % (move["direction"], move["source"], move["target"]),
                (move["step"], "bad" if move["step"] == "failed" else None),
                (time_text(move["freeze_started_at"]), "t"),
                (seconds_text(move["freeze_window_s"]) if move["freeze_ended_at"] or not move["freeze_started_at"]
                 else "frozen now", "n"),
                (bytes_text(move["files_bytes"]), "n"), (bytes_text(move["databases_bytes"]), "n"),
                (verification["text"], "ok" if verification["verified"] else None),
                (move["error"] or "", "bad")])
            rows.append(row.replace("<tr>", '<tr class="group">', 1) if number == 0 else row)
    return _table(["account", "lives on", "copies", "move", "step", "frozen at", "#freeze", "#files",
                   "#databases", "verification", "error"], rows)


def _addresses(data):
    rows = []
    for address in data["addresses"]:
        lead = [address["address"], address["routed_to"]]
        if not address["reroutes"]:
            rows.append(_cells(*lead + ["never rerouted", "", ""]))
            continue
        for number, reroute in enumerate(address["reroutes"]):
            rows.append(_cells(*(lead if number == 0 else ["", ""]) + [
                (time_text(reroute["at"]), "t"), "%s to %s" % (reroute["from"], reroute["to"]),
                (seconds_text(reroute["switch_s"]), "n")]))
    return _table(["address", "routed to", "rerouted at", "from, to", "#measured loss"], rows)


def _addresses_text(addresses, ttl):
    return "%s (TTL %s)" % (", ".join(addresses) or "none", "-" if ttl is None else ttl)


def _dns(entries, empty=NONE_YET):
    rows = []
    for entry in entries:
        records = entry["records"] or [None]
        for number, record in enumerate(records):
            lead = [(time_text(entry["at"]), "t"), entry["purpose"]] if number == 0 else ["", ""]
            if record is None:
                rows.append(_cells(*lead + ["no record listed", "", ""]))
                continue
            rows.append(_cells(*lead + [
                "%s %s" % (record["name"], record["type"]),
                _addresses_text(record["old_addresses"], record["old_ttl"]),
                _addresses_text(record["new_addresses"], record["new_ttl"])]))
    return _table(["when", "why", "record", "before", "after"], rows, empty)


def _leases(data):
    rows = []
    for lease in data["leases"]:
        if lease.get("charge_error"):
            amount = lease.get("amount") or "?"
        else:
            amount = "%s %s%s" % (lease["amount"], lease["currency"], " so far" if lease["running"] else "")
        rows.append(_cells(lease["id"], lease["transit"], lease["state"], (time_text(lease["started_at"]), "t"),
                           (time_text(lease.get("free_until")), "t"), (time_text(lease["released_at"]), "t"),
                           "%s %s a month" % (lease["price_monthly"], lease["currency"]),
                           (lease.get("billed_days", "?"), "n"), (amount, "n"),
                           (lease.get("warning") or lease.get("charge_error") or "", "bad")))
        for month in lease.get("breakdown") or []:
            rows.append(_cells("", "", "", "", "", "", "%s: %d of %d days at %s" % (
                month["month"], month["days"], month["days_in_month"], month["daily_rate"]), "",
                (month["subtotal"], "n"), ""))
    out = _table(["lease", "transit", "state", "started", "free until", "released", "price", "#days billed",
                  "#amount", "note"], rows)
    waiting = data["waiting"]
    if waiting:
        out += '<p class="note">Waiting for a transit server since %s: place %d in line (for %s).</p>' % (
            _e(time_text(waiting["requested_at"])), waiting["position"], _e(", ".join(waiting["candidates"])))
    return out


def _versions(server):
    versions = [item["version"] for item in server["versions"]]
    if not versions:
        return server["infra_version"] or "unknown"
    return " \u2192 ".join(versions)


def render_html(data):
    """The report of migration_report.collect as one self-contained HTML page."""
    server = data["server"]
    chart = timeline_svg(data)
    sections = [
        ("Timeline", chart or '<p class="none">%s: no phase, move, reroute, DNS change or lease recorded.</p>' % NONE_YET),
        ("Phases", _phases(data)),
        ("Accounts", _accounts(data)),
        ("Service addresses", _addresses(data)),
        ("DNS changes", _dns(data["dns_changes"])),
        ("DNS restored", _dns(data["dns_restores"])),
        ("Transit lease and charges", _leases(data)),
    ]
    body = "".join('<section><h2>%s</h2>%s</section>' % (_e(title), content) for title, content in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<title>Migration report: %(name)s</title><style>%(style)s</style></head><body>'
        '<header><h1>Migration of %(name)s</h1>'
        '<p class="sub">infrastructure %(versions)s &middot; status: %(status)s &middot; registered %(registered)s'
        ' &middot; <time class="generated" datetime="%(generated)s">report generated %(generated_text)s UTC</time></p>'
        '%(summary)s</header>%(body)s'
        '<footer><p>Times are UTC, from the ledger (the state store). Freeze: from the account frozen to its switch; '
        'measured loss: the time an address answered nobody during its reroute.</p></footer>'
        '</body></html>\n') % {
        "name": _e(server["name"]), "style": STYLE, "versions": _e(_versions(server)),
        "status": _e(data["summary"]["status"]), "registered": _e(time_text(server["registered_at"])),
        "generated": _e(data["generated_at"]), "generated_text": _e(time_text(data["generated_at"])),
        "summary": _summary(data), "body": body}
