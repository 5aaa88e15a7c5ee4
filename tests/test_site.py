"""The site builder's pieces, executing at most two one-cell notebooks (the built site itself is
checked in a browser by tests/test_browser_site.py)."""

import base64

import nbformat
import pytest

from course_lib import site

PNG = base64.b64encode(b"\x89PNG fake").decode()


def widget_notebook():
    """A notebook with a tqdm bar and an image widget, as nbclient saves them."""
    state = {
        "bar": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_l", "IPY_MODEL_p",
                                                                  "IPY_MODEL_r"]}},
        "l": {"model_name": "HTMLModel", "state": {"value": "train: 100%"}},
        "p": {"model_name": "FloatProgressModel", "state": {"value": 40.0, "max": 40.0}},
        "r": {"model_name": "HTMLModel", "state": {"value": " 40/40 [00:01&lt;00:00]"}},
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_s", "IPY_MODEL_i"]}},
        "s": {"model_name": "IntSliderModel", "state": {"description": "sigma", "value": 25}},
        "i": {"model_name": "ImageModel", "state": {"format": "png"},
              "buffers": [{"path": ["value"], "data": PNG, "encoding": "base64"}]},
        "gone": {"model_name": "HBoxModel", "state": {"children": []}},
    }  # fmt: skip

    def view(model_id):
        return nbformat.v4.new_output(
            "display_data",
            data={site.WIDGET_VIEW: {"model_id": model_id, "version_major": 2}, "text/plain": "x"},
        )

    cell = nbformat.v4.new_code_cell("...")
    cell.outputs = [view("bar"), nbformat.v4.new_output("stream", text="hi\n"), view("box"),
                    view("missing")]  # fmt: skip
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["widgets"] = {site.WIDGET_STATE: {"state": state, "version_major": 2}}
    return nb


def test_freeze_widgets_draws_each_widget_as_it_last_looked():
    nb = widget_notebook()
    assert site.freeze_widgets(nb) == 3
    outputs = nb.cells[0].outputs
    assert "widgets" not in nb.metadata  # no widget JavaScript from the internet needed
    assert [o.output_type for o in outputs] == ["display_data", "stream", "display_data"]
    bar, box = outputs[0].data["text/html"], outputs[2].data["text/html"]
    assert "train: 100%" in bar and '<progress value="40.0" max="40.0">' in bar, bar
    assert f"data:image/png;base64,{PNG}" in box and "sigma = 25" in box, box
    assert all(site.WIDGET_VIEW not in o.get("data", {}) for o in outputs)


def test_readme_sections_keep_the_landing_page_parts_and_fix_links():
    readme = (
        "# Course\n\nintro, see [nbgrader](https://nbgrader.readthedocs.io)\n\n"
        "## Set up: two commands\n<!-- test-command -->\nmake test\n\n"
        "## Syllabus\n| [welcome](notebooks/00_welcome.ipynb) | [x](exercises/README.md) |\n\n"
        "## How to use it\n\n### Learner (self-study)\nread\n\n### Instructor\ngrade\n\n"
        "## Repository layout\nfiles\n"
    )
    text = site.readme_sections(readme)
    for kept in ("# Course", "## Set up", "## Syllabus", "### Learner (self-study)"):
        assert kept in text, kept
    for dropped in ("### Instructor", "## Repository layout", "<!-- test-command -->"):
        assert dropped not in text, dropped
    assert "[welcome](00_welcome.html)" in text
    assert "[nbgrader](https://nbgrader.readthedocs.io)" in text
    assert "| x |" in text  # a file of the repository is not on the site: plain text


def test_build_without_executed_notebooks_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="not executed yet"):
        site.build(tmp_path / "site", tmp_path / "executed", execute_notebooks=False)


def test_execute_all_times_each_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "0")  # execute_all sets it; monkeypatch restores it
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebooks = []
    for name in ("90_a.ipynb", "91_b.ipynb"):
        nb = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell("import os; print(os.environ['COURSE_FAST'])")]
        )
        nbformat.write(nb, tmp_path / name)
        notebooks.append(tmp_path / name)
    timed = site.execute_all(notebooks, tmp_path / "executed", jobs=2)
    assert [p.name for p in timed] == ["90_a.ipynb", "91_b.ipynb"], timed
    assert all(p.parent == tmp_path / "executed" and p.is_file() for p in timed), timed
    assert all(0 < s < 600 for s in timed.values()), timed
    for path in timed:
        outputs = nbformat.read(path, as_version=4).cells[0].outputs
        assert outputs[0]["text"].strip() == "1", f"{path.name} did not run in fast mode: {outputs}"
