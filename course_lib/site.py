"""The course as a static web site: every notebook executed in fast mode, one HTML page per
chapter, and a landing page made from the README (what the course is, the syllabus, how to run
it). A maintainer's tool, not part of what the chapters teach: ``make site``, or

    python -m course_lib.site [--out build/site] [--jobs 2]

Why nbconvert and not a site generator: it is already installed with JupyterLab, renders a
notebook exactly as JupyterLab's static view does (its "lab" template), and builds with no network
at all. jupyter-book 1 (Sphinx) would add some thirty packages for a dozen pages; jupyter-book 2 /
mystmd downloads its theme at build time. Three things nbconvert would fetch from the internet are
replaced here: MathJax is copied from the ``jupyter-server-mathjax`` package into the site,
require.js and mermaid (which no chapter uses) are left out, and widgets, which need a running
kernel, are drawn as what they last showed: a training progress bar as its final line, an
interactive widget as its last picture with a note that it is live in JupyterLab.

Notebooks run on temporary copies (``build/executed/``), never in ``notebooks/``; a chapter that
raises stops the build with the notebook and cell named.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jinja2
import jupyter_server_mathjax  # MathJax 2, as files (the dev extra installs it)
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"  # the one bundled
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}
<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  tex2jax: {inlineMath: [['$', '$'], ['\\(', '\\)']], displayMath: [['$$', '$$'], ['\\[', '\\]']],
            processEscapes: true, processEnvironments: true},
  TeX: {equationNumbers: {autoNumber: "AMS", useLabelIds: true}},
  displayAlign: "center", messageStyle: "none",
  // the fonts jupyter-server-mathjax bundles (the default TeX fonts are not in it)
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null},
  SVG: {font: "STIX-Web"}
});
</script>
<script src="{{ resources.mathjax_url }}"></script>
{%- endblock html_head_js_mathjax -%}
{% block extra_css %}
<style>
nav.course { display: flex; gap: 1.5em; padding: 0.6em 1em; font: 14px sans-serif;
             border-bottom: 1px solid #ddd; background: #f7f7f7; }
nav.course a { text-decoration: none; }
nav.course .fast { margin-left: auto; color: #777; }
.course-widget { border-left: 3px solid #1976d2; padding: 0.3em 0.8em; }
.course-widget p { font: 13px sans-serif; color: #555; margin: 0.2em 0; }
.course-progress { font: 12px monospace; white-space: pre; }
</style>
{% endblock extra_css %}
{%- block body_header -%}
{{ super() }}
<nav class="course">{{ resources.course_nav }}</nav>
{%- endblock body_header -%}
{% block body_footer %}
<nav class="course">{{ resources.course_nav }}</nav>
{{ super() }}
{% endblock body_footer %}
"""


# ----------------------------------------------------------------------------- execution


def execute(notebook: Path, workdir: Path, timeout: int = 900) -> Path:
    """Run ``notebook`` top to bottom in fast mode on a copy in ``workdir`` (its working
    directory, so that whatever it writes lands there); return the executed copy."""
    workdir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    try:
        client.execute()
    except CellExecutionError as error:
        raise RuntimeError(f"{notebook.name} failed while building the site:\n{error}") from None
    out = workdir / notebook.name
    nbformat.write(nb, out)
    return out


def execute_all(notebooks: list[Path], workdir: Path, jobs: int) -> dict[Path, float]:
    """Execute ``notebooks`` in fast mode, ``jobs`` at a time (one kernel each); returns each
    executed copy with the seconds it took (kernel start included)."""
    os.environ["COURSE_FAST"] = "1"  # the kernels inherit it, and a share of the cores each
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) // jobs)))

    def timed(notebook: Path) -> tuple[Path, float]:
        start = time.perf_counter()
        return execute(notebook, workdir), time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return dict(pool.map(timed, notebooks))


# ----------------------------------------------------------------------------- widgets


def _widget_models(nb) -> dict:
    return nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})


def _descendants(model_id: str, models: dict):
    """``model_id`` and every widget inside it (children of boxes), depth first."""
    model = models.get(model_id)
    if model is None:
        return
    yield model, model.get("buffers", [])
    for child in model.get("state", {}).get("children", []):
        yield from _descendants(str(child).removeprefix("IPY_MODEL_"), models)


def static_widget(output: dict, models: dict) -> str | None:
    """HTML for a widget output as it last looked; ``None`` when the state is unknown."""
    model_id = output["data"][WIDGET_VIEW]["model_id"]
    parts = list(_descendants(model_id, models))
    if not parts:
        return None
    names = [model["model_name"] for model, _ in parts]
    if "FloatProgressModel" in names or "IntProgressModel" in names:  # a tqdm bar
        # tqdm draws HBox(HTML(left text), FloatProgress, HTML(right text)): keep the last state
        texts = [m["state"].get("value", "") for m, _ in parts if m["model_name"] == "HTMLModel"]
        left, right = (texts + ["", ""])[:2]
        bar = next(m["state"] for m, _ in parts if m["model_name"].endswith("ProgressModel"))
        done = f'<progress value="{bar.get("value", 0)}" max="{bar.get("max", 1)}"></progress>'
        return f'<div class="course-progress">{left} {done} {right}</div>'
    pictures = []
    for model, buffers in parts:
        if model["model_name"] != "ImageModel":
            continue
        data = next((b["data"] for b in buffers if b.get("path") == ["value"]), None)
        fmt = model["state"].get("format", "png")
        if data:
            src = f"data:image/{fmt};base64,{data}"
            pictures.append(f'<img alt="the picture the widget showed" src="{src}">')
    controls = [
        f"{m['state'].get('description', '')} = {m['state'].get('value')}"
        for m, _ in parts
        if m["model_name"] in ("IntSliderModel", "FloatSliderModel", "DropdownModel")
    ]
    if not pictures and not controls:
        return None
    note = (
        f"Interactive widget ({html.escape(', '.join(controls))}): run this notebook in "
        "JupyterLab to move its controls. Below, what it showed when the page was built."
    )
    return f'<div class="course-widget"><p>{note}</p>{"".join(pictures)}</div>'


def freeze_widgets(nb) -> int:
    """Replace every widget output of ``nb`` by static HTML (its last state) and drop the
    widget state, so that the page needs no widget JavaScript from the internet. Returns how
    many outputs were replaced."""
    models, replaced = _widget_models(nb), 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            if WIDGET_VIEW in output.get("data", {}):
                frozen = static_widget(output, models)
                replaced += 1
                if frozen is None:
                    continue
                output = nbformat.v4.new_output("display_data", data={"text/html": frozen})
            outputs.append(output)
        cell.outputs = outputs
    nb.metadata.pop("widgets", None)
    return replaced


# ----------------------------------------------------------------------------- pages


def _exporter():
    return HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"course_site.html.j2": TEMPLATE})],
        template_file="course_site.html.j2",
        mathjax_url=f"mathjax/MathJax.js?config={MATHJAX_CONFIG}",
    )


def _nav(pages: list[str], i: int | None, titles: dict[str, str]) -> str:
    links = ['<a href="index.html">Image Generation and Editing with Neural Networks</a>']
    if i is not None:
        if i > 0:
            links.append(f'<a href="{pages[i - 1]}.html">&larr; {titles[pages[i - 1]]}</a>')
        if i + 1 < len(pages):
            links.append(f'<a href="{pages[i + 1]}.html">{titles[pages[i + 1]]} &rarr;</a>')
        # what a reader sees here is a short run: say so on every chapter
        links.append(
            '<span class="fast">run in fast mode (short trainings): run the notebook for the full '
            "results</span>"
        )
    return " ".join(links)


def _title(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown" and (m := re.search(r"^#\s+(.+)$", cell.source, re.M)):
            return re.sub(r"[*_`]", "", m.group(1)).strip()
    return fallback


def readme_sections(readme: str) -> str:
    """The landing page's Markdown: the README's opening, set-up, syllabus and how a learner
    uses the course; links to notebooks become links to their pages, other links to files of
    the repository become plain text (they are not on the site)."""
    parts = re.split(r"(?m)^(?=#{2,3} )", readme)
    wanted = ("## Set up", "## Syllabus", "### Learner (self-study)", "### Learner with")
    keep = [parts[0]] + [p for p in parts[1:] if p.startswith(wanted)]
    text = "\n".join(keep)
    text = re.sub(r"\]\(notebooks/(\d\d_\w+)\.ipynb\)", r"](\1.html)", text)
    text = re.sub(r"\[([^\]]+)\]\((?!https?://|\d\d_\w+\.html)[^)]+\)", r"\1", text)
    return text.replace("<!-- test-command -->\n", "")


def build(out: Path, workdir: Path, jobs: int = 2, execute_notebooks: bool = True) -> dict:
    """Build the site into ``out``; returns what it built (pages, seconds, bytes)."""
    start = time.perf_counter()
    notebooks = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if execute_notebooks:
        if workdir.exists():
            shutil.rmtree(workdir)
        notebook_seconds = execute_all(notebooks, workdir, jobs)
        executed = list(notebook_seconds)
    else:
        notebook_seconds = {}
        executed = [workdir / nb.name for nb in notebooks]
        missing = [p.name for p in executed if not p.exists()]
        if missing:
            raise FileNotFoundError(f"not executed yet (run without --no-execute): {missing}")
    seconds_executing = time.perf_counter() - start
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    _copy_mathjax(out / "mathjax")

    exporter = _exporter()
    nbs = {p.stem: nbformat.read(p, as_version=4) for p in executed}
    pages = list(nbs)
    titles = {stem: _title(nb, stem) for stem, nb in nbs.items()}
    frozen = 0
    for i, (stem, nb) in enumerate(nbs.items()):
        frozen += freeze_widgets(nb)
        body, _ = exporter.from_notebook_node(
            nb, resources={"course_nav": _nav(pages, i, titles), "metadata": {"name": titles[stem]}}
        )
        (out / f"{stem}.html").write_text(body, encoding="utf-8")

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    landing = readme_sections((ROOT / "README.md").read_text(encoding="utf-8"))
    landing += (
        "\n\n---\n\nThe chapters on this site were executed in **fast mode** (`COURSE_FAST=1`: "
        "shorter training, same code), so their figures are rougher than a full run's; "
        "interactive widgets show the picture they had when the page was built. "
        f"Built {time.strftime('%Y-%m-%d')}" + (f" from commit `{commit}`." if commit else ".")
    )
    index = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(landing)])
    body, _ = exporter.from_notebook_node(
        index, resources={"course_nav": _nav(pages, None, titles), "metadata": {"name": "Course"}}
    )
    (out / "index.html").write_text(body, encoding="utf-8")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {
        "pages": ["index", *pages],
        "widgets_frozen": frozen,
        "seconds": time.perf_counter() - start,
        "seconds_executing": seconds_executing,
        "notebook_seconds": {p.stem: round(t, 1) for p, t in notebook_seconds.items()},
        "bytes": size,
    }


def _copy_mathjax(dest: Path) -> None:
    """MathJax 2 as the ``jupyter-server-mathjax`` package bundles it (its one combined
    configuration, TeX-AMS-MML_HTMLorMML-full, and the STIX-Web fonts), without the
    translations of its menus, its SVG renderer and its accessibility extensions (which only
    its right-click menu would load; they are 6.6 of its 9.4 MB). No network."""
    src = Path(jupyter_server_mathjax.__file__).parent / "static"
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("localization", "SVG", "a11y", "*.md"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site")
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "executed")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once")
    parser.add_argument(
        "--no-execute", action="store_true", help="reuse the notebooks already in --workdir"
    )
    args = parser.parse_args(argv)
    report = build(args.out, args.workdir, args.jobs, not args.no_execute)
    print(
        f"site: {len(report['pages'])} pages in {args.out} "
        f"({report['bytes'] / 2**20:.1f} MiB), built in {report['seconds']:.0f} s "
        f"({report['seconds_executing']:.0f} s executing the notebooks in fast mode); "
        f"{report['widgets_frozen']} widget outputs drawn as their last state",
        file=sys.stderr,
    )
    if report["notebook_seconds"]:
        each = ", ".join(f"{k[:2]} {v:.0f}" for k, v in report["notebook_seconds"].items())
        print(f"site: seconds per notebook ({args.jobs} at a time): {each}", file=sys.stderr)


if __name__ == "__main__":
    main()


__all__ = ["build", "execute", "freeze_widgets", "readme_sections", "static_widget"]
