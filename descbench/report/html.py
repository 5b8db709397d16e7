"""``report.html``: the report as one self-contained page (``python -m descbench.report DIR --html``).

Nothing is fetched at view time: the plots and example images are embedded as ``data:`` URIs, the styles and a
little plain JavaScript are inline, and text that came from outside (descriptions, expressions, file names) is
escaped, never interpreted as markup or links. Each task's section writes its own part of the page (its
:class:`~descbench.report.sections.Section` carries an ``html`` builder); a task without one gets its Markdown
section rendered as HTML with its figures embedded. The shared sections (missing jobs, comparisons, published
numbers, all runs) are the Markdown report's, rendered the same way, so both formats say the same.

Images are downscaled to :data:`MAX_SIDE` pixels and counted against :data:`IMAGE_BUDGET`; what would exceed it
is left out and the page lists it (a 14-run sweep's page stays under 15 MB).
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from descbench.report.runs import Run

#: the longest side of an embedded example image, in pixels (a figure of the report keeps its own size)
MAX_SIDE = 320
#: bytes of embedded images (base64) a page may hold; past it images are left out and listed
IMAGE_BUDGET = 12 * 2**20

_IMAGE_LINE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<file>[^)]+)\)$")


def escape(text: Any) -> str:
    """Text as HTML shows it, never as markup."""
    return html.escape(str(text), quote=True)


@dataclass
class HtmlPage:
    """What a section's HTML builder gets: where the runs live (``root``) and the plots were written (``out``),
    and the image embedding with its budget. ``left_out`` lists what the budget (or a missing file) kept off
    the page; the page shows that list."""

    root: Path
    out: Path
    examples: int = 8
    budget: int = IMAGE_BUDGET
    used: int = 0
    left_out: list[str] = field(default_factory=list)
    anchors: set[str] = field(default_factory=set)
    #: what sections keep while the page is built (a reader rebuilt once for the runs of a sweep)
    shared: dict[str, Any] = field(default_factory=dict)

    def run_dir(self, run: Run) -> Path:
        """The directory a run's files are in."""
        return self.root / run.dir

    def anchor(self, text: str) -> str:
        """A page-unique ``id`` made from ``text``."""
        base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "s"
        name, n = base, 1
        while name in self.anchors:
            n += 1
            name = f"{base}-{n}"
        self.anchors.add(name)
        return name

    def _take(self, uri: str, what: str) -> str | None:
        if self.used + len(uri) > self.budget:
            self.left_out.append(f"{what} (the page's image budget of {self.budget / 2**20:.0f} MB is spent)")
            return None
        self.used += len(uri)
        return uri

    def image_uri(self, image: Image.Image, what: str, max_side: int = MAX_SIDE) -> str | None:
        """A ``data:`` URI of ``image`` downscaled to ``max_side`` (PNG or JPEG, whichever is smaller), or None
        when the budget is spent (then ``what`` is listed as left out)."""
        return self._take(encode_image(image, max_side), what)

    def file_uri(self, path: Path, what: str) -> str | None:
        """A ``data:`` URI of an image file as written (a plot), or None (missing, or over the budget)."""
        if not path.is_file():
            self.left_out.append(f"{what} ({path} not found)")
            return None
        mime = "image/svg+xml" if path.suffix == ".svg" else f"image/{path.suffix.lstrip('.').lower()}"
        return self._take(f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}", what)

    def img(self, uri: str | None, alt: str, cls: str = "") -> str:
        """An ``<img>`` of an embedded image, or a note where it was left out."""
        if uri is None:
            return f'<p class="left-out">left out: {escape(alt)}</p>'
        klass = f' class="{cls}"' if cls else ""
        return f'<img{klass} src="{uri}" alt="{escape(alt)}">'

    def figure(self, path: Path, alt: str) -> str:
        """A plot the section wrote, embedded as written (so the page shows what report.md links)."""
        return f'<figure class="plot">{self.img(self.file_uri(path, f"figure {path.name}"), alt)}</figure>'

    def run_heading(self, run: Run, what: str = "Examples") -> str:
        """``<h4>Examples · run DIR (overrides)</h4>``: which run a gallery is of."""
        where = "the report's dir" if run.dir == "." else escape(run.dir)
        overrides = escape(run.results.get("overrides", "")) or "no overrides"
        return f'<h4>{escape(what)} · run {where} <span class="note">({overrides})</span></h4>'

    def examples_gallery(self, run: Run, pattern: str = "examples/*.png", max_side: int = MAX_SIDE) -> str:
        """The example images a job wrote (``pattern`` in its run dir), downscaled to ``max_side``, the first
        :attr:`examples` of them (the page says how many more the folder has)."""
        files = sorted(self.run_dir(run).glob(pattern))
        if not files:
            return f'<p class="note">no {escape(pattern)} in this run (the job wrote no examples)</p>'
        shown = files[: self.examples]
        items = []
        for path in shown:
            with Image.open(path) as image:
                uri = self.image_uri(image, f"{run.dir}/{path.relative_to(self.run_dir(run)).as_posix()}", max_side)
            items.append(f"<figure>{self.img(uri, path.name)}<figcaption>{escape(path.name)}</figcaption></figure>")
        more = len(files) - len(shown)
        note = (
            f'<p class="note">{more} more example image(s) of this run are in its examples/ folder.</p>' if more else ""
        )
        wide = " wide" if max_side > MAX_SIDE else ""
        return f'<div class="gallery{wide}">{"".join(items)}</div>{note}'


def encode_image(image: Image.Image, max_side: int = MAX_SIDE) -> str:
    """``image`` scaled down (never up) to ``max_side`` as a ``data:`` URI: PNG or JPEG (quality 85), the smaller."""
    image = image.convert("RGB")
    scale = min(1.0, max_side / max(image.size))
    if scale < 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
    encoded = []
    for fmt, mime, options in (("PNG", "image/png", {"optimize": True}), ("JPEG", "image/jpeg", {"quality": 85})):
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        encoded.append((len(buffer.getvalue()), mime, buffer.getvalue()))
    _, mime, data = min(encoded, key=lambda e: e[0])
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def html_table(header: Sequence[Any], rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    """A table of already escaped cells (use :func:`escape` on text)."""
    klass = f' class="{cls}"' if cls else ""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _markdown_renderer():
    from markdown_it import MarkdownIt

    # commonmark with tables; raw HTML escaped, and no links or images: text from runs (descriptions, sources)
    # must never load or point to anything
    return MarkdownIt("commonmark", {"html": False}).enable("table").disable(["link", "image", "autolink"])


def markdown_html(lines: Sequence[str], page: HtmlPage | None = None) -> str:
    """Markdown lines of the report as HTML; a line ``![alt](file.png)`` becomes that figure embedded from
    ``page.out``. Tables scroll sideways instead of widening the page."""
    renderer = _markdown_renderer()
    parts, chunk = [], []

    def flush() -> None:
        if chunk:
            rendered = renderer.render("\n".join(chunk) + "\n")
            rendered = rendered.replace("<table>", '<div class="scroll"><table>').replace("</table>", "</table></div>")
            parts.append(rendered)
            chunk.clear()

    for line in lines:
        found = _IMAGE_LINE.match(line.strip())
        if found and page is not None:
            flush()
            parts.append(page.figure(page.out / found["file"], found["alt"]))
        else:
            chunk.append(line)
    flush()
    return "".join(parts)


def generic_html(lines: Sequence[str], page: HtmlPage) -> str:
    """The HTML of a task section that brings none of its own: its Markdown, figures embedded."""
    return markdown_html(lines, page)


def json_script(element_id: str, data: Any) -> str:
    """Data for the page's script, inert (``type=application/json``; ``</`` cannot close the element)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
    return f'<script type="application/json" id="{escape(element_id)}">{text}</script>'


STYLE = """
:root { --fg: #1d1d1f; --muted: #5f6368; --line: #d9d9de; --ok: #1b7f3b; --bad: #b3261e; --bg2: #f6f7f9; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  margin: 0 auto; max-width: 1200px; padding: 1rem 1.5rem 4rem; }
h1 { font-size: 1.6rem; margin: .5rem 0; } h2 { border-bottom: 2px solid var(--line); padding-bottom: .2rem;
  margin-top: 2.2rem; } h3 { margin-top: 1.6rem; } h4 { margin: 1rem 0 .4rem; }
.meta, .note { color: var(--muted); } .left-out { color: var(--bad); font-style: italic; }
nav ul { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; list-style: none; padding: 0; }
nav a, a { color: #0b57d0; }
.scroll { overflow-x: auto; margin: .6rem 0 1rem; }
table { border-collapse: collapse; font-size: .88rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; text-align: left; vertical-align: top; }
thead th { background: var(--bg2); position: sticky; top: 0; }
tbody tr:nth-child(even) { background: #fbfbfc; }
td.num, th.num { text-align: right; white-space: nowrap; }
.pos { color: var(--ok); } .neg { color: var(--bad); }
figure { margin: .4rem 0; } figure.plot img { max-width: 100%; height: auto; border: 1px solid var(--line); }
.gallery { display: flex; flex-wrap: wrap; gap: .8rem; margin: .4rem 0 1rem; }
.gallery figure { width: 340px; margin: 0; padding: .4rem; border: 1px solid var(--line); border-radius: 4px;
  break-inside: avoid; }
.gallery.wide figure { width: auto; max-width: 100%; }
.gallery.wrong figure { border-color: #e8b4b0; } .gallery.right figure { border-color: #b5dcc1; }
.gallery img { max-width: 100%; height: auto; image-rendering: auto; }
.gallery .pair { display: flex; gap: .3rem; align-items: flex-start; }
.gallery .pair img.marked { width: 40%; }
figcaption { font-size: .82rem; color: var(--muted); } figcaption b { color: var(--fg); }
.legend span { display: inline-block; margin-right: 1rem; } .swatch { display: inline-block; width: .9em;
  height: .9em; border: 2px solid; margin-right: .25rem; vertical-align: -2px; }
details { border: 1px solid var(--line); border-radius: 4px; margin: .3rem 0; padding: .2rem .6rem; }
details > summary { cursor: pointer; padding: .2rem 0; } details[open] > summary { font-weight: 600; }
details details { border: none; padding: 0; margin: 0; } details details > summary { font-weight: normal; }
.drill-controls { margin: .5rem 0; } .drill-controls select { font: inherit; max-width: 100%; }
ul.texts { margin: .2rem 0 .4rem 1rem; padding: 0; font-size: .85rem; }
.callout { background: #fff8e1; border-left: 4px solid #f2b600; padding: .4rem .8rem; margin: .8rem 0; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; } nav, .drill-controls { display: none; }
  details { border: none; } details > summary::marker { content: ""; }
  h2 { break-before: auto; } table, figure, .gallery figure { break-inside: avoid; }
  thead th { position: static; }
}
"""

SCRIPT = """
(function () {
  "use strict";
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (el && el.tagName === "DETAILS") { el.open = true; el.scrollIntoView(); }
  }
  window.addEventListener("hashchange", openTarget);
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-init]").forEach(function (el) {
      var init = window.descbench && window.descbench[el.getAttribute("data-init")];
      if (init) init(el);
    });
    openTarget();
  });
})();
"""


def page_html(title: str, header: str, nav: Sequence[tuple[str, str]], body: str, scripts: Sequence[str]) -> str:
    """The whole document: styles and scripts inline, ``nav`` as ``(anchor, title)`` links."""
    links = "".join(f'<li><a href="#{escape(a)}">{escape(t)}</a></li>' for a, t in nav)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<header>{header}<nav><ul>{links}</ul></nav></header>\n<main>\n{body}\n</main>\n"
        + "".join(scripts)
        + f"<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def write_page(
    page: HtmlPage,
    title: str,
    intro: str,
    warnings: Sequence[str],
    missing: Sequence[Any],
    parts: Sequence[tuple[Any, Any]],
    comparisons: Sequence[Any],
    runs: Sequence[Run],
    tables: Sequence[tuple[str, tuple[list[str], list[list[Any]]]]],
    unknown: Sequence[Run],
) -> Path:
    """Write ``report.html`` into ``page.out``: the shared sections of report.md and each task's section
    (``parts``: ``(definition, Section)``), in report.md's order; returns its path."""
    from descbench.core.files import write_atomic
    from descbench.report.markdown import comparisons_markdown, missing_markdown, published_markdown, runs_markdown

    sections: list[tuple[str, str, str]] = []  # (anchor, nav title, html)

    def add(name: str, body: str) -> None:
        if body:
            anchor = page.anchor(name)
            sections.append((anchor, name, f'<section id="{anchor}">{body}</section>'))

    add("Missing or failed jobs", markdown_html(missing_markdown(missing), page))
    for definition, part in parts:
        add(definition.label, part.html(page) if part.html is not None else generic_html(part.lines, page))
    add("Comparisons", markdown_html(comparisons_markdown(comparisons), page))
    add("Published numbers", markdown_html(published_markdown(runs), page))
    add("All runs", markdown_html(runs_markdown(tables, unknown), page))

    header = f"<h1>{escape(title)}</h1>{markdown_html([intro])}"
    header += "".join(f'<p class="callout">warning: {escape(w)}</p>' for w in warnings)
    if page.left_out:
        items = "".join(f"<li>{escape(item)}</li>" for item in page.left_out)
        header += f'<div class="callout"><b>Left out of this page ({len(page.left_out)}):</b><ul>{items}</ul></div>'
    else:
        header += (
            f'<p class="meta">Every figure and example image is embedded (example images downscaled, up to '
            f"{page.examples} per run); nothing was left out.</p>"
        )
    document = page_html(title, header, [(a, t) for a, t, _ in sections], "\n".join(s for _, _, s in sections), [])
    path = page.out / "report.html"
    write_atomic(path, document)
    return path
