"""The stage registry: a stage added there (and in its own module) is run by the supervisor."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from fakeblock.common.runtime import SUPERVISOR_PID_VARIABLE
from fakeblock.common.stages import STAGE_NAMES, STAGES, bound_links, insert_stage, stage_spec
from fakeblock.control.supervisor.preflight import run
from fakeblock.control.supervisor.run_config import Deployment, build_config
from tests.helpers import MEDIA, orphans_of, read_results, shared_file
from tests.passthrough_stage import PASSTHROUGH, TAPPED_FACES_LINK

FRAMES = 60


def test_the_registry_names_each_stage_once_with_what_it_binds():
    assert STAGE_NAMES == ("capture", "detect", "queue", "classify", "display")
    assert len(set(STAGE_NAMES)) == len(STAGES)
    bound = [link for links in bound_links().values() for link in links]
    assert len(bound) == len(set(bound)), "two stages bind the same link"
    with pytest.raises(KeyError):
        stage_spec("nonexistent")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_stage_added_to_the_registry_is_supervised_and_the_results_survive(tmp_path, monkeypatch):
    # The supervisor runs in this process and names itself to its children in the environment.
    for variable in (SUPERVISOR_PID_VARIABLE, "FAKEBLOCK_STAGE"):
        monkeypatch.delenv(variable, raising=False)
    video = shared_file(MEDIA / "office-woman.mp4")
    results, stats = tmp_path / "results.jsonl", tmp_path / "stats.json"
    stages = insert_stage(PASSTHROUGH, after="detect", detect={"faces_in": TAPPED_FACES_LINK})
    assert [spec.name for spec in stages] == ["capture", "detect", "passthrough", "queue", "classify", "display"]
    options = {"source": str(video), "max_frames": FRAMES, "outputs": ("none",), "results": str(results)}
    config = build_config(Deployment(), options, stats=str(stats), show_status=False)
    config = replace(config, stages=tuple(spec.name for spec in stages))

    code = run(config, say=lambda line: None, stages=stages)

    assert code == 0
    lines = read_results(results)
    assert [line["frame"] for line in lines] == list(range(FRAMES))
    assert sum(1 for line in lines if line["faces"]) >= FRAMES - 2  # one face in (nearly) every frame
    summary = json.loads(stats.read_text())
    # Every frame's faces went through the new stage: detect sends one Faces message per frame.
    assert summary["stages"]["passthrough/0"]["frames_in"] == FRAMES
    assert summary["stages"]["passthrough/0"]["frames_out"] == FRAMES
    assert summary["exit_codes"]["passthrough/0"] == 0
    # (multiprocessing's resource tracker belongs to this process, not to the pipeline)
    assert not [pid for pid in orphans_of(os.getpid()) if b"resource_tracker" not in _command_line(pid)]


def _command_line(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read()
    except OSError:
        return b""
