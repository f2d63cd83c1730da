"""The base install runs without TensorFlow (nor scikit-image or SciPy): the import boundary,
tested without a second venv.

Each test runs ``python -c`` in a subprocess whose ``sys.meta_path`` starts with a finder
that refuses ``tensorflow`` and ``keras`` as a venv without them would (``ModuleNotFoundError``),
then imports the pipeline path, scores faces or runs a command there.  The packaging half
checks the dependency markers: TensorFlow in the base only where LiteRT has no wheel.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from fakeblock.common.tensorflow_setup import (
    CLONE_TRAIN_EXTRA,
    PIP_TRAIN_EXTRA,
    TRAIN_EXTRA_INSTALL,
    missing_tensorflow,
)
from tests.helpers import MEDIA, shared_file

ROOT = Path(__file__).resolve().parents[1]
SUBPROCESS_TIMEOUT_S = 120
# The shipped model is int8: its seven scores sum to 1 within quantisation steps.
SCORE_SUM_TOLERANCE = 0.01
TENSORFLOW_FREE = ("tensorflow", "keras")
# Not in the base install: the demo's photo ships inside the package instead.
SCIENCE_FREE = ("skimage", "scipy")
# The modules `fakeblock up`, `analyze` and `eval` of a .tflite model import.
PIPELINE_MODULES = (
    "fakeblock.control.cli.app",
    "fakeblock.control.supervisor.loop",
    "fakeblock.control.supervisor.workers",
    "fakeblock.api.analyzer",
    "fakeblock.control.cli.analyze_command",
    "fakeblock.capture.stage",
    "fakeblock.detect.stage",
    "fakeblock.classify.queue",
    "fakeblock.classify.stage",
    "fakeblock.display.stage",
    "fakeblock.train.evaluate",
)


def blocker(*modules: str) -> str:
    """Source that makes importing any of ``modules`` (and their submodules) fail as if not installed."""
    return (
        "import sys\n"
        "class NotInstalled:\n"
        f"    blocked = {modules!r}\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in self.blocked:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, NotInstalled())\n"
    )


def run_blocked(code: str, *modules: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where ``modules`` (default: TensorFlow and Keras) are missing."""
    script = blocker(*(modules or TENSORFLOW_FREE)) + code
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT_S, cwd=ROOT)


def run_cli_blocked(*arguments: str, modules: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``fakeblock ARGUMENTS`` with TensorFlow and Keras missing."""
    code = ("from fakeblock.control.cli.app import main\n"
            f"sys.argv = ['fakeblock', *{list(arguments)!r}]\n"
            "main()\n")
    return run_blocked(code, *modules)


def assert_one_line_error(completed: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2 with exactly one line on stderr that holds every fragment, and no traceback."""
    lines = completed.stderr.strip().splitlines()
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), completed.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0]


# ---------------------------------------------------------------- the pipeline path without TensorFlow

@pytest.mark.timeout(180)
def test_the_pipeline_modules_import_and_the_shipped_model_scores_without_tensorflow():
    code = (
        "import importlib, json\n"
        "import numpy as np\n"
        f"for name in {PIPELINE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "from fakeblock.classify.model_runtime import EmotionModel\n"
        "scores = EmotionModel().scores(np.zeros((3, 48, 48), np.uint8))\n"
        f"loaded = sorted(name for name in sys.modules if name.split('.')[0] in {TENSORFLOW_FREE!r})\n"
        "print(json.dumps({'shape': list(scores.shape), 'sums': scores.sum(axis=1).tolist(), 'loaded': loaded}))\n"
    )
    completed = run_blocked(code)
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(completed.stdout.splitlines()[-1])
    assert report["shape"] == [3, 7] and report["loaded"] == []
    assert np.allclose(report["sums"], 1.0, atol=SCORE_SUM_TOLERANCE)


@pytest.mark.timeout(180)
def test_analyze_without_tensorflow_prints_what_it_prints_with_it():
    justin = str(shared_file(MEDIA / "justin.jpg"))
    blocked = run_cli_blocked("analyze", justin, "--json")
    assert blocked.returncode == 0, blocked.stderr[-2000:]
    (line,) = blocked.stdout.splitlines()
    assert json.loads(line)["faces"], "the photo has a face"
    unblocked = run_cli_blocked("analyze", justin, "--json", modules=("no_such_module",))
    assert unblocked.stdout == blocked.stdout


@pytest.mark.timeout(180)
def test_eval_of_a_tflite_model_runs_without_tensorflow(layouts, cache_in_tmp, tmp_path):
    summary_path = tmp_path / "eval.json"
    completed = run_cli_blocked("eval", "--data", str(layouts["csv"][0]), "--json", str(summary_path))
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert json.loads(summary_path.read_text())["n"] == layouts["csv"][2]


@pytest.mark.timeout(180)
def test_the_demo_and_the_api_examples_photo_need_neither_scikit_image_nor_scipy():
    code = (
        "import json\n"
        "import fakeblock\n"
        "from fakeblock.capture.core import open_source\n"
        "with open_source('demo') as source:\n"
        "    first, _time_s = next(iter(source))\n"
        "with fakeblock.Analyzer() as analyzer:\n"
        "    faces = analyzer.analyze(fakeblock.astronaut_photo())\n"
        f"loaded = sorted(name for name in sys.modules if name.split('.')[0] in {SCIENCE_FREE!r})\n"
        "print(json.dumps({'frame': list(first.shape), 'faces': [face.emotion for face in faces], 'loaded': loaded}))\n"
    )
    completed = run_blocked(code, *SCIENCE_FREE, *TENSORFLOW_FREE)
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(completed.stdout.splitlines()[-1])
    assert report == {"frame": [480, 640, 3], "faces": ["happy"], "loaded": []}


# ---------------------------------------------------------------- what needs TensorFlow says so in one line

@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", [["train", "--data", "faces.csv"],
                                     ["ensemble", "--model", "a.keras", "--data", "faces.csv"]])
def test_train_and_ensemble_without_tensorflow_name_the_extra_in_one_line(command):
    assert_one_line_error(run_cli_blocked(*command), f"fakeblock {command[0]} needs TensorFlow", TRAIN_EXTRA_INSTALL)


@pytest.mark.timeout(120)
def test_eval_of_a_keras_model_without_tensorflow_names_the_extra_in_one_line(layouts, tmp_path):
    model = tmp_path / "model.keras"
    model.write_bytes(b"not read: Keras is missing before the file is opened")
    completed = run_cli_blocked("eval", "--data", str(layouts["csv"][0]), "--model", str(model))
    assert_one_line_error(completed, str(model), "a Keras model needs TensorFlow", TRAIN_EXTRA_INSTALL)


def test_the_install_hint_and_the_pages_give_both_ways_to_the_extra():
    # One for a package installed with pip, one for a clone; the error and the pages agree.
    assert PIP_TRAIN_EXTRA in TRAIN_EXTRA_INSTALL and CLONE_TRAIN_EXTRA in TRAIN_EXTRA_INSTALL
    for page in ("README.md", "docs/training.md"):
        text = " ".join((ROOT / page).read_text().split())
        assert f"`{PIP_TRAIN_EXTRA}`" in text and f"`{CLONE_TRAIN_EXTRA}`" in text, page


def test_only_a_missing_tensorflow_or_keras_counts_as_the_missing_extra():
    assert missing_tensorflow(ModuleNotFoundError("No module named 'keras'", name="keras"))
    assert missing_tensorflow(ModuleNotFoundError("No module named 'tensorflow.lite'", name="tensorflow.lite"))
    assert not missing_tensorflow(ModuleNotFoundError("No module named 'cv2'", name="cv2"))
    assert not missing_tensorflow(ImportError("cannot import name 'x'"))


# ---------------------------------------------------------------- the fallback where LiteRT has no wheel

@pytest.mark.train  # it loads TensorFlow, in this process and in a child (make check leaves such tests out)
@pytest.mark.timeout(180)
def test_without_litert_tensorflows_interpreter_gives_the_same_scores():
    pytest.importorskip("tensorflow", reason="the fallback needs TensorFlow: pip install -e .[train]")
    from fakeblock.classify.model_runtime import EmotionModel

    faces = np.random.default_rng(5).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    code = (
        "import json\n"
        "import numpy as np\n"
        "from fakeblock.classify.model_runtime import EmotionModel\n"
        "faces = np.random.default_rng(5).integers(0, 256, (5, 48, 48), dtype=np.uint8)\n"
        "scores = EmotionModel().scores(faces)\n"
        "print(json.dumps({'scores': scores.tolist(), 'litert': 'ai_edge_litert' in sys.modules}))\n"
    )
    completed = run_blocked(code, "ai_edge_litert")
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(completed.stdout.splitlines()[-1])
    assert report["litert"] is False
    assert np.allclose(report["scores"], EmotionModel().scores(faces), atol=1e-5)


@pytest.mark.timeout(120)
def test_with_neither_litert_nor_tensorflow_a_tflite_model_says_what_to_install():
    code = ("from fakeblock.classify.model_runtime import EmotionModel, ModelError\n"
            "try:\n"
            "    EmotionModel()\n"
            "except ModelError as error:\n"
            "    print(error)\n")
    completed = run_blocked(code, "ai_edge_litert", *TENSORFLOW_FREE)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "needs LiteRT (pip install ai-edge-litert)" in completed.stdout


# ---------------------------------------------------------------- the dependency markers

PLATFORMS = {  # (sys_platform, platform_machine) -> LiteRT has a wheel the base can use
    ("linux", "x86_64"): True,
    ("linux", "aarch64"): True,
    ("linux", "ppc64le"): False,
    ("darwin", "arm64"): False,
    ("darwin", "x86_64"): False,
    ("win32", "AMD64"): False,
}


def requirements_for(requirements: list[str], sys_platform: str, machine: str) -> set[str]:
    """The names of the requirements that apply on this platform."""
    environment = {"sys_platform": sys_platform, "platform_machine": machine}
    parsed = [Requirement(text) for text in requirements]
    return {requirement.name for requirement in parsed
            if requirement.marker is None or Marker(str(requirement.marker)).evaluate(environment)}


@pytest.mark.parametrize(("sys_platform", "machine"), list(PLATFORMS))
def test_the_base_needs_tensorflow_exactly_where_litert_has_no_wheel(sys_platform, machine):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = requirements_for(project["dependencies"], sys_platform, machine)
    train = requirements_for(project["optional-dependencies"]["train"], sys_platform, machine)
    tensorflow = {"tensorflow", "tensorflow-cpu"}
    if PLATFORMS[sys_platform, machine]:
        assert "ai-edge-litert" in base and not base & tensorflow
    else:
        assert "ai-edge-litert" not in base and base & tensorflow == {"tensorflow"}
    assert len(train & tensorflow) == 1, "the train extra brings one TensorFlow wheel"
    assert not (base & tensorflow) - train, "where the base has TensorFlow the extra names the same one"


def test_the_demo_photo_and_its_licence_note_are_package_data_and_scikit_image_no_requirement():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = project["tool"]["setuptools"]["package-data"]["fakeblock.capture"]
    assert sorted(shipped) == ["astronaut.jpg", "astronaut.txt"]
    assert all((ROOT / "capture" / name).is_file() for name in shipped)
    assert "public domain" in (ROOT / "capture" / "astronaut.txt").read_text()
    assert (ROOT / "capture" / "astronaut.jpg").stat().st_size < 100_000, "a small JPEG, not the PNG"
    extras = project["project"]["optional-dependencies"].values()
    every_requirement = [*project["project"]["dependencies"], *(text for extra in extras for text in extra)]
    assert not {Requirement(text).name for text in every_requirement} & {"scikit-image", "scipy"}


def test_make_test_installs_the_train_extra_and_make_up_and_docker_the_base():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*-e '\.\[test,train\]'", makefile)
    assert re.search(r"pip install --quiet -e \.$", makefile, re.MULTILINE)
    assert re.search(r"^RUN pip install --no-cache-dir /src$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
