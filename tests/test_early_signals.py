"""A Ctrl-C or SIGTERM in the first second of ``fakeblock up``, before the supervisor's own
handlers are in place: one line, exit code 128 + the signal, no traceback, no stage left."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

from tests.helpers import fakeblock, kill_if_running, orphans_of

DELAYS_S = (0.05, 0.25, 0.6)  # during the imports, the command's start, the supervisor's set-up
EXIT_TIMEOUT_S = 60


@pytest.mark.slow  # starts `fakeblock up` three times per signal
@pytest.mark.timeout(300)
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_command_starts_is_one_line_and_its_exit_code(signal_number):
    for delay_s in DELAYS_S:
        process = subprocess.Popen(fakeblock("up", "--source", "demo", "--display", "none", "--results", os.devnull,
                                             "--no-status"),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        try:
            time.sleep(delay_s)
            process.send_signal(signal_number)
            output, _ = process.communicate(timeout=EXIT_TIMEOUT_S)
        finally:
            kill_if_running(process)
        name = signal.Signals(signal_number).name
        assert process.returncode == 128 + signal_number, (delay_s, process.returncode, output[-2000:])
        assert "Traceback" not in output, (delay_s, output[-3000:])
        last = output.strip().splitlines()[-1]
        assert last == f"interrupted ({name})" or re.search(r"interrupted at frame \d+", last), (delay_s, output)
        assert not orphans_of(process.pid)
