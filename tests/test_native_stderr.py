"""What C libraries print on the raw stderr descriptor is logged, not shown, and never lost."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from fakeblock.common.native_stderr import logged_native_stderr


def test_native_notices_are_logged_at_debug_and_errors_as_warnings(capfd, caplog):
    logger = logging.getLogger("test.native")
    with caplog.at_level(logging.DEBUG, logger="test.native"), logged_native_stderr(logger):
        os.write(2, b"INFO: Created a delegate.\nE0101 something broke\n\n")
    assert "delegate" not in capfd.readouterr().err
    levels = {record.getMessage(): record.levelno for record in caplog.records}
    assert levels == {"INFO: Created a delegate.": logging.DEBUG, "E0101 something broke": logging.WARNING}


def test_stderr_is_restored_after_an_error_in_the_body(capfd):
    logger = logging.getLogger("test.native")
    try:
        with logged_native_stderr(logger):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    os.write(2, b"after\n")
    assert "after" in capfd.readouterr().err


def test_loading_the_shipped_model_prints_nothing_on_stderr():
    code = ("import numpy as np; from fakeblock.classify.model_runtime import EmotionModel; "
            "print(EmotionModel(threads=1).scores(np.zeros((2, 48, 48), np.uint8)).shape)")
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "(2, 7)"
    assert "XNNPACK" not in finished.stderr
