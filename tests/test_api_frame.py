"""``fakeblock.results_frame``: an analyzer's results as a pandas DataFrame, one row per face, and
the one line it gives where the ``pandas`` extra is not installed."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest
from packaging.requirements import Requirement

import fakeblock
from fakeblock.api.results_table import PANDAS_EXTRA_INSTALL
from fakeblock.common.errors import UserError
from fakeblock.common.model_io import EMOTIONS

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[1]
DEMO_FRAMES = 8
BOX_COLUMNS = ["x", "y", "width", "height"]
FACE_COLUMNS = [*BOX_COLUMNS, "emotion", *EMOTIONS]
GREY_LEVEL = 128  # a blank frame: no face in it


@pytest.fixture
def pandas():
    return pytest.importorskip("pandas", reason=f"the DataFrame needs the pandas extra: {PANDAS_EXTRA_INSTALL}")


@pytest.fixture(scope="module")
def demo_frames():
    """The demo clip's first frames, tracked: one face in each."""
    return fakeblock.analyze("demo", max_frames=DEMO_FRAMES)


def test_a_tracked_video_has_a_row_per_face_with_its_frame_track_box_emotion_and_scores(pandas, demo_frames):
    table = fakeblock.results_frame(demo_frames)
    faces = [(frame, face) for frame in demo_frames for face in frame.faces]
    assert len(table) == len(faces) == DEMO_FRAMES
    assert list(table.columns) == ["stream", "frame", "time_s", "track", *FACE_COLUMNS]
    for row, (frame, face) in zip(table.itertuples(index=False), faces, strict=True):
        assert (row.stream, row.frame, row.time_s, row.track) == (frame.stream, frame.frame, frame.time_s, face.track)
        assert (row.x, row.y, row.width, row.height) == face.box
        assert row.emotion == face.emotion
        assert [getattr(row, emotion) for emotion in EMOTIONS] == [face.scores[emotion] for emotion in EMOTIONS]
    assert table["frame"].tolist() == list(range(DEMO_FRAMES)) and set(table["track"]) == {1}
    assert table["emotion"].tolist() == table[list(EMOTIONS)].idxmax(axis=1).tolist()
    assert all(table[column].dtype.kind == "i" for column in ["frame", *BOX_COLUMNS])


def test_untracked_faces_have_no_track_column(pandas):
    table = fakeblock.results_frame(fakeblock.analyze("demo", max_frames=3, tracking=False))
    assert list(table.columns) == ["stream", "frame", "time_s", *FACE_COLUMNS] and len(table) == 3


def test_a_frame_without_a_face_has_no_row_and_the_others_keep_their_numbers(pandas, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    photo = fakeblock.astronaut_photo()
    for name, pixels in (("1.png", photo), ("2.png", np.full_like(photo, GREY_LEVEL)), ("3.png", photo)):
        cv2.imwrite(str(folder / name), pixels)
    frames = fakeblock.analyze(folder, tracking=False)
    assert [len(frame.faces) for frame in frames] == [1, 0, 1]
    table = fakeblock.results_frame(frames)
    assert table["frame"].tolist() == [0, 2]
    assert table["stream"].tolist() == ["frames", "frames"]


def test_a_photos_faces_are_frame_0_of_the_image_stream_and_no_face_is_an_empty_table(pandas):
    photo = fakeblock.astronaut_photo()
    (face,) = fakeblock.analyze(photo)
    table = fakeblock.results_frame([face])
    assert table.loc[0, ["stream", "frame", "time_s", *BOX_COLUMNS, "emotion"]].tolist() == \
        ["image", 0, 0.0, *face.box, face.emotion]
    assert table.loc[0, list(EMOTIONS)].tolist() == [face.scores[emotion] for emotion in EMOTIONS]
    empty = fakeblock.results_frame(fakeblock.analyze(np.full_like(photo, GREY_LEVEL)))
    assert empty.empty and list(empty.columns) == ["stream", "frame", "time_s", *FACE_COLUMNS]
    assert empty["happy"].dtype.kind == "f"


def test_what_is_neither_faces_nor_frame_results_is_refused_naming_it(pandas, demo_frames):
    with pytest.raises(TypeError, match="faces or frame results, not dict"):
        fakeblock.results_frame([frame.to_dict() for frame in demo_frames])


def test_without_pandas_the_frame_is_one_line_saying_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` then fails as if it were not installed
    with pytest.raises(UserError) as caught:
        fakeblock.results_frame([])
    assert str(caught.value) == ("results_frame() needs pandas, which the base install leaves out: "
                                 "pip install 'fakeblock[pandas]'")
    # No "During handling of the above exception" chain under the line.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_the_install_line_names_the_extra_that_brings_pandas_which_the_base_leaves_out():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (extra,) = Requirement(PANDAS_EXTRA_INSTALL.split()[-1].strip("'")).extras
    assert {Requirement(text).name for text in project["optional-dependencies"][extra]} == {"pandas"}
    assert "pandas" not in {Requirement(text).name for text in project["dependencies"]}
