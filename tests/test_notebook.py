"""examples/course_experiment.ipynb runs end to end in a real Jupyter kernel (nbclient), so it
cannot rot: the sweep trains, the table and the curves come back, the report is written.

Its parameters cell is swapped for a smaller budget (two architectures, a 2 x 1 grid, 300
images): the cells below it are the notebook's own, run unchanged. The table cell is run a
second time with pandas hidden, for the plain-dicts branch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the test extra (nbclient) is not installed")
nbclient = pytest.importorskip("nbclient", reason="the test extra (nbclient) is not installed")
pytest.importorskip("ipykernel", reason="the test extra (ipykernel) is not installed")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "course_experiment.ipynb"
SMALL = """MODELS = ["lenet", "fastnet"]
GRID_MODEL = "lenet"
LRS = [1e-3, 5e-3]
DROPOUTS = [0.25]
OTHERS_LR, OTHERS_DROPOUT = 2e-3, 0.1
TRAIN_SUBSET = 300
EVAL_SUBSET = 200
EPOCHS = 2
OUT = "runs/course-notebook"
"""

pytestmark = pytest.mark.slow


@pytest.fixture
def kernel(tmp_path_factory, monkeypatch) -> str:
    """A kernel spec running this interpreter: a machine's own "python3" spec (say, a system
    Jupyter's) may start a Python without mnistlab, and it would win over ipykernel's."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "mnistlab-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "mnistlab test", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(root))
    return "mnistlab-test"


def outputs(cell, output_type=None) -> list:
    return [o for o in cell.outputs if output_type is None or o.output_type == output_type]


def text_of(cell) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(out.data.get("text/plain", ""))
    return "".join(parts)


def cell_with(nb, needle: str):
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]
    return cell


def test_the_course_notebook_runs_end_to_end(tmp_path, kernel):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (params,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    # The committed notebook carries no outputs (they would go stale in the repository).
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    params.source = SMALL

    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name=kernel, resources={"metadata": {"path": str(tmp_path)}}
    )
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)  # raises CellExecutionError on any error
        table_cell = cell_with(nb, "runs_frame")
        frame_text = text_of(table_cell)
        frame_html = [o.data.get("text/html", "") for o in outputs(table_cell, "execute_result")]

        hide = nbformat.v4.new_code_cell('import sys\nsys.modules["pandas"] = None')
        nb.cells.append(hide)
        client.execute_cell(hide, len(nb.cells) - 1)
        again = nbformat.v4.new_code_cell(table_cell.source)
        nb.cells.append(again)
        client.execute_cell(again, len(nb.cells) - 1)

    out = tmp_path / "runs" / "course-notebook"
    sweep_file = tmp_path / "runs" / "course-notebook.toml"
    assert sweep_file.read_text().startswith("# written by examples/course_experiment.ipynb")

    summary = text_of(cell_with(nb, "run_experiment("))
    assert "lenet" in summary and "fastnet" in summary

    # pandas (the data extra) is there in `make test`: a DataFrame, best run first.
    assert frame_html and "<table" in frame_html[0]
    assert frame_text.count("finished") == 3
    plain = text_of(again)
    assert plain.startswith("[{") and plain.count("'finished'") == 3

    curves = cell_with(nb, "plt.show()")
    assert any("image/png" in o.get("data", {}) for o in outputs(curves))

    report = text_of(cell_with(nb, "result.report"))
    assert report.startswith("report: ")
    path = Path(report.removeprefix("report: ").strip())
    path = path if path.is_absolute() else tmp_path / path
    assert path.is_file() and path.is_relative_to(out)


def test_a_sweep_file_it_did_not_write_is_left_alone(tmp_path, kernel):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (params,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    params.source = SMALL
    mine = tmp_path / "runs" / "course-notebook.toml"
    mine.parent.mkdir()
    mine.write_text("# my own sweep\n")
    cells = [params, cell_with(nb, "HEADER = ")]
    nb.cells = cells
    client = nbclient.NotebookClient(
        nb, timeout=60, kernel_name=kernel, resources={"metadata": {"path": str(tmp_path)}}
    )
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="not written by this"):
        client.execute()
    assert mine.read_text() == "# my own sweep\n"
