"""The commands in the README and in docs/ work as written, or say why they are not run here.

Every fenced block of shell (``bash``, ``sh``, ``console``, ``shell``) or Python in
``README.md`` and ``docs/*.md`` is preceded, on the nearest non-blank line above it, by one
of two markers:

- ``<!-- run -->``: this test runs the block, line by line (a line ending in ``\\`` goes on
  on the next), in a fresh folder that holds the stand-ins the pages name: ``clip.mp4``
  (the first 90 frames of ``../shared/media/office-woman.mp4``), ``photo.jpg`` and
  ``folder/`` (the shared photos). Each command must exit 0 within its timeout. A Python
  block is run as one script.
- ``<!-- not run: why -->``: the reason it cannot run on CI (a camera, a cluster, Docker,
  several machines, hours of training).

A block with neither marker fails the test, so a page cannot gain a command that nobody runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import MEDIA, shared_file

REPOSITORY = Path(__file__).resolve().parent.parent
PAGES = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"bash", "sh", "console", "shell"}
RUN_MARKER = "<!-- run -->"
NOT_RUN_MARKER = re.compile(r"<!-- not run: \S.*-->")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
CLIP_FRAMES = 90
COMMAND_TIMEOUT_S = 120


def _blocks(page: Path) -> list[tuple[int, str, str, str]]:
    """(line number, language, marker line, body) of every shell or Python block of ``page``."""
    lines = page.read_text().splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, language = opening.groups()
        end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
        if language in SHELL_LANGUAGES | {"python"}:
            above = next((lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            body = "\n".join(line[len(indent):] for line in lines[index + 1:end])
            blocks.append((index + 1, language, above, body))
        index = end + 1
    return blocks


def _commands(body: str) -> list[str]:
    """The block's commands: continuation lines joined, blank and comment-only lines left out."""
    commands, current = [], ""
    for line in body.splitlines():
        current += line[:-1] + " " if line.endswith("\\") else line
        if line.endswith("\\"):
            continue
        if current.strip() and not current.strip().startswith("#"):
            commands.append(current.strip())
        current = ""
    return commands


ALL_BLOCKS = [(page, *block) for page in PAGES for block in _blocks(page)]
RUN_BLOCKS = [block for block in ALL_BLOCKS if block[3] == RUN_MARKER]


def test_every_block_is_run_or_says_why_not():
    unmarked = [f"{page.relative_to(REPOSITORY)}:{line}" for page, line, _, marker, _ in ALL_BLOCKS
                if marker != RUN_MARKER and not NOT_RUN_MARKER.fullmatch(marker)]
    assert not unmarked, f"blocks neither run nor marked '<!-- not run: why -->': {unmarked}"
    assert RUN_BLOCKS, "no page has a block this test runs"


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> Path:
    """A folder with the files the pages' commands name."""
    import cv2

    folder = tmp_path_factory.mktemp("docs")
    video = cv2.VideoCapture(str(shared_file(MEDIA / "office-woman.mp4")))
    ok, frame = video.read()
    writer = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 29.97,
                             (frame.shape[1], frame.shape[0]))
    for _ in range(CLIP_FRAMES):
        if not ok:
            break
        writer.write(frame)
        ok, frame = video.read()
    writer.release()
    video.release()
    shutil.copy(shared_file(MEDIA / "justin.jpg"), folder / "photo.jpg")
    (folder / "folder").mkdir()
    for name in ("justin.jpg", "no-faces.jpg"):
        shutil.copy(shared_file(MEDIA / name), folder / "folder" / name)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("block", RUN_BLOCKS, ids=[f"{page.name}:{line}" for page, line, *_ in RUN_BLOCKS])
def test_the_block_runs_as_written(block, stand_ins, tmp_path):
    page, line, language, _, body = block
    work = tmp_path / "work"
    shutil.copytree(stand_ins, work)
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if language == "python":
        commands = [[sys.executable, "-c", body]]
    else:
        commands = [["bash", "-o", "pipefail", "-c", command] for command in _commands(body)]
    for command in commands:
        try:
            done = subprocess.run(command, cwd=work, env=environment, capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{page.name}:{line}: {command[-1]!r} ran over {COMMAND_TIMEOUT_S} s")
        where = f"{page.name}:{line}: {command[-1]!r}"
        assert done.returncode == 0, f"{where} exited {done.returncode}:\n{done.stderr[-2000:]}"
