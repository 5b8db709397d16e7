"""The classification section of ``report.html``: the two figures, the sweep tables (each cell links to its
drill-down, the published numbers about its runs beside it) and a per-class drill-down per panel.

The drill-down answers "which classes moved?": for every cell (a line of the curve at one num_desc), the classes
sorted by their accuracy change Δ against a baseline cell chosen on the page, each class opening on click to the
texts it was scored with, as encoded (the run's ``descriptions.json``). A cell of several runs (seeds) shows the
mean per-class accuracy over them and the texts of its first run. The data travel in the page as JSON (texts
stored once however many cells share them); a few lines of plain JavaScript draw a cell's table when it is opened.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from descbench.core.published import compare_published
from descbench.report.groups import display, split_panels
from descbench.report.html import HtmlPage, escape, html_table, json_script
from descbench.report.runs import Run
from descbench.tasks.classify.report import group_cells, num_desc_label, sweep_cells

DESCRIPTIONS = "descriptions.json"


def per_class_accuracy(result: Mapping[str, Any]) -> list[tuple[str, float]] | None:
    """``[(class name, accuracy)]`` in class-index order from a run's ``per_class_acc`` (None when absent)."""
    value = result.get("per_class_acc")
    if isinstance(value, list):
        rows = sorted((r for r in value if isinstance(r, Mapping)), key=lambda r: r.get("index", 0))
        return [(str(r.get("class")), float(r["acc"])) for r in rows if isinstance(r.get("acc"), (int, float))]
    if isinstance(value, Mapping):  # an older layout: {class name: accuracy}
        return [(str(k), float(v)) for k, v in value.items() if isinstance(v, (int, float))]
    return None


def read_descriptions(run_dir: Path) -> tuple[list[list[str]] | None, str]:
    """The texts each class was scored with (``descriptions.json`` of a run, class-index order) and a note (which
    repetition they are of a repeated control), or None and why."""
    path = run_dir / DESCRIPTIONS
    if not path.is_file():
        return None, f"no {DESCRIPTIONS} in {run_dir.name or run_dir}"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        texts = [[str(t) for t in c["texts"]] for c in sorted(stored["classes"], key=lambda c: c["index"])]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return None, f"{path} unreadable: {err}"
    reps = stored.get("repetitions") if isinstance(stored, dict) else None
    # a repeated random control: the accuracy is the mean over repetitions, the texts shown are the first's
    return texts, f"of repetition 1 of {len(reps)}" if isinstance(reps, list) and len(reps) > 1 else ""


def published_notes(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """The published numbers about a cell's runs: ``published 62.1 % (source): Δ +1.40`` or ``…: not comparable:
    <settings that differ>``, each distinct text once (what :func:`compare_published` says, nothing more)."""
    notes: list[str] = []
    for result in results:
        for match in compare_published(result):
            text = f"{match['key']}: published {float(match['value']):g} % ({match['source']}): {match['verdict']}"
            if text not in notes:
                notes.append(text)
    return notes


def _mean_accuracy(cell: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[float]] | None:
    """Class names and the mean per-class accuracy (%) over the runs of a cell (None when they do not agree)."""
    tables = [per_class_accuracy(r) for r in cell]
    if not tables or any(t is None or not t for t in tables):
        return None
    names = [n for n, _ in tables[0]]
    if any([n for n, _ in t] != names for t in tables):
        return None
    return names, [100 * sum(t[i][1] for t in tables) / len(tables) for i in range(len(names))]


def drill_data(results: Sequence[Mapping[str, Any]], runs: Sequence[Run], page: HtmlPage, title: str) -> dict:
    """The JSON of one panel's drill-down: ``classes``, ``texts`` (each text once), ``cells`` (``id``, ``name``,
    ``acc`` per class in %, ``desc`` per class as indices into ``texts``, ``runs``), the default ``baseline``,
    and ``skipped`` (cells without per-class accuracy, with why)."""
    run_of = {id(r.results): r for r in runs}
    texts: dict[str, int] = {}
    cells, skipped = [], []
    classes: list[str] | None = None
    for label, by_x in group_cells(results, "top1").items():
        for x, cell in by_x.items():
            name = f"{label} · num_desc={num_desc_label(x)}"
            accuracy = _mean_accuracy(cell)
            if accuracy is None or (classes is not None and accuracy[0] != classes):
                skipped.append(f"{name}: no per-class accuracy shared by its runs")
                continue
            classes = accuracy[0]
            dirs = [run_of[id(r)].dir for r in cell if id(r) in run_of]
            desc, why = read_descriptions(page.root / dirs[0]) if dirs else (None, "no run dir")
            if desc is not None and len(desc) != len(classes):
                desc, why = None, f"{DESCRIPTIONS} of {dirs[0]} lists {len(desc)} classes, the run {len(classes)}"
            cells.append(
                {
                    "id": page.anchor(f"cell {title} {name}"),
                    "name": name,
                    "x": None if x is None else display(x),
                    "acc": [round(a, 4) for a in accuracy[1]],
                    "desc": None if desc is None else [[texts.setdefault(t, len(texts)) for t in d] for d in desc],
                    "desc_note": why if desc is None else " ".join(["as encoded in run", dirs[0], why]).strip(),
                    "runs": dirs,
                }
            )
    # the default baseline: the cell without num_desc (a class-name source) when there is one, else the first
    baseline = next((i for i, c in enumerate(cells) if c["x"] is None), 0)
    return {"classes": classes or [], "texts": list(texts), "cells": cells, "baseline": baseline, "skipped": skipped}


def _sweep_table(acc_panel, ent_panel, rs, cell_ids: dict[str, str]) -> str:
    """The panel's sweep table as report.md has it, each cell a link to its drill-down, and a ``published``
    column beside a line when some of its runs have a published number."""
    labels, xs, texts = sweep_cells(acc_panel, ent_panel)
    by_cell = group_cells(rs, "top1")
    notes = {(label, x): published_notes(cell) for label, by_x in by_cell.items() for x, cell in by_x.items()}
    header = ["num_desc"]
    with_notes = [label for label in labels if any(notes.get((label, x)) for x in xs)]
    for label in labels:
        header.append(escape(label))
        if label in with_notes:
            header.append(f"published ({escape(label)})")
    rows = []
    for x in xs:
        row = [escape(num_desc_label(x))]
        for label in labels:
            text = escape(texts[label, x])
            anchor = cell_ids.get(f"{label} · num_desc={num_desc_label(x)}")
            row.append(f'<a href="#{anchor}">{text}</a>' if anchor and texts[label, x] != "—" else text)
            if label in with_notes:
                row.append("<br>".join(escape(n) for n in notes.get((label, x), [])) or "—")
        rows.append(row)
    return html_table(header, rows, cls="sweep")


def classification_html(data: Mapping[str, Any], runs: Sequence[Run], page: HtmlPage) -> str:
    """The section: figures, per panel the sweep table and the drill-down."""
    acc, ent = data["accuracy_vs_num_desc"], data["entropy_vs_num_desc"]
    parts = ["<h2>Classification</h2>"]
    parts.append(page.figure(page.out / acc["file"], "top-1 accuracy vs num_desc (chance: dotted line)"))
    parts.append(page.figure(page.out / ent["file"], "mean prediction entropy vs num_desc"))
    panels = split_panels([r.results for r in runs])
    for acc_panel, ent_panel, (_, rs) in zip(acc["panels"], ent["panels"], panels):
        title = acc_panel["title"]
        drill = drill_data(rs, runs, page, title)
        cell_ids = {c["name"]: c["id"] for c in drill["cells"]}
        parts.append(f"<h3>{escape(title)}</h3>")
        parts.append(
            '<p class="note">Cells: top-1 accuracy (%) / mean entropy (nats), mean ± std over n seeds (one run with a '
            f"recorded interval: value [95 % interval]). Columns grouped by: {escape(acc_panel['legend_title'])}. "
            "Click a cell for its classes.</p>"
        )
        parts.append(_sweep_table(acc_panel, ent_panel, rs, cell_ids))
        parts.append(_drill_html(drill, title))
    parts.append(f"<script>{DRILL_SCRIPT}</script>")
    return "".join(parts)


def _drill_html(drill: Mapping[str, Any], title: str) -> str:
    cells = drill["cells"]
    head = f"<h4>Per-class drill-down · {escape(title)}</h4>"
    if not cells:
        return head + '<p class="note">No cell of this panel records a per-class accuracy.</p>'
    source = f"drill-data-{cells[0]['id']}"
    options = "".join(
        f'<option value="{i}"{" selected" if i == drill["baseline"] else ""}>{escape(c["name"])}</option>'
        for i, c in enumerate(cells)
    )
    items = "".join(
        f'<details class="cell" id="{c["id"]}" data-cell="{i}"><summary>{escape(c["name"])} '
        f'<span class="note">({len(c["runs"])} run(s); texts {escape(c["desc_note"])})</span></summary>'
        '<div class="drill-body"></div></details>'
        for i, c in enumerate(cells)
    )
    skipped = "".join(f'<p class="left-out">{escape(s)}</p>' for s in drill["skipped"])
    return (
        head + '<p class="note">For each cell: the classes sorted by Δ = the cell\'s per-class accuracy − the baseline '
        "cell's (points; a cell of several runs: their mean), largest gain first. Open a class for the texts it was "
        f"scored with.</p>{skipped}"
        f'<div class="drill" data-init="drilldown" data-source="{source}">'
        f'<div class="drill-controls"><label>Baseline cell: <select class="baseline">{options}</select></label></div>'
        f"{items}</div>{json_script(source, drill)}"
    )


DRILL_SCRIPT = """
window.descbench = window.descbench || {};
window.descbench.drilldown = function (root) {
  "use strict";
  var data = JSON.parse(document.getElementById(root.getAttribute("data-source")).textContent);
  var select = root.querySelector("select.baseline");
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }
  function fmt(v, digits) { return v === null || v === undefined ? "—" : v.toFixed(digits); }
  function render(details) {
    var cell = data.cells[+details.getAttribute("data-cell")];
    var base = data.cells[+select.value];
    var body = details.querySelector(".drill-body");
    body.textContent = "";
    var rows = data.classes.map(function (name, i) {
      var a = cell.acc[i], b = base.acc[i];
      return { i: i, name: name, a: a, b: b, d: (a === null || b === null) ? null : a - b };
    });
    rows.sort(function (p, q) {
      if (p.d === null || q.d === null) return (p.d === null) - (q.d === null);
      return q.d - p.d || p.i - q.i;
    });
    var up = rows.filter(function (r) { return r.d > 0; }).length;
    var down = rows.filter(function (r) { return r.d < 0; }).length;
    var mean = rows.reduce(function (s, r) { return s + (r.d || 0); }, 0) / Math.max(rows.length, 1);
    body.appendChild(el("p", "Against " + base.name + ": mean Δ " + (mean >= 0 ? "+" : "") + mean.toFixed(2) +
      " pp over " + rows.length + " classes; " + up + " up, " + down + " down, " +
      (rows.length - up - down) + " unchanged.", "note"));
    var table = el("table", null, "drill-table");
    var head = el("tr");
    ["#", "class (open: its texts)", "accuracy (%)", "baseline (%)", "Δ (pp)"].forEach(function (h) {
      head.appendChild(el("th", h));
    });
    table.appendChild(el("thead")).appendChild(head);
    var tbody = table.appendChild(el("tbody"));
    rows.forEach(function (r, rank) {
      var tr = el("tr");
      tr.appendChild(el("td", String(rank + 1), "num"));
      var name = el("td");
      var texts = cell.desc ? cell.desc[r.i] : null;
      if (texts) {
        var det = el("details", null, "class");
        det.appendChild(el("summary", r.name + " (" + texts.length + " text" + (texts.length === 1 ? "" : "s") + ")"));
        var list = el("ul", null, "texts");
        texts.forEach(function (t) { list.appendChild(el("li", data.texts[t])); });
        det.appendChild(list);
        name.appendChild(det);
      } else {
        name.textContent = r.name;
      }
      tr.appendChild(name);
      tr.appendChild(el("td", fmt(r.a, 2), "num"));
      tr.appendChild(el("td", fmt(r.b, 2), "num"));
      tr.appendChild(el("td", r.d === null ? "—" : (r.d > 0 ? "+" : "") + r.d.toFixed(2),
        "num " + (r.d > 0 ? "pos" : r.d < 0 ? "neg" : "")));
      tbody.appendChild(tr);
    });
    var wrap = el("div", null, "scroll");
    wrap.appendChild(table);
    body.appendChild(wrap);
  }
  root.querySelectorAll("details.cell").forEach(function (details) {
    details.addEventListener("toggle", function () { if (details.open) render(details); });
    if (details.open) render(details);
  });
  select.addEventListener("change", function () {
    root.querySelectorAll("details.cell[open]").forEach(render);
  });
};
"""
