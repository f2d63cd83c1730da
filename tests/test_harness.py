"""The test plumbing itself: leaked sockets fail by name, pairs deliver, waits fail fast and clearly."""

from __future__ import annotations

import subprocess
import time

import pytest
import zmq

from fakeblock.common import wire
from tests.harness import ContextTermTimeout, TrackedContext, receive
from tests.helpers import (
    decode_hostile,
    fuzz_generator,
    orphans_of,
    reproduce_with,
    seed_on_failure,
    wait_for_no_orphans,
    wait_until,
)
from tests.selection import deselects_every_train_test, marked_train_as_a_whole

pytestmark = pytest.mark.timeout(30)
SHORT_TERM_TIMEOUT_S = 0.3


def exited_process() -> subprocess.Popen:
    """A process that has already exited with code 3."""
    process = subprocess.Popen(["sh", "-c", "exit 3"])
    process.wait(10)
    return process


def test_a_socket_left_open_fails_the_teardown_by_name_instead_of_hanging(run_directory):
    context = TrackedContext(term_timeout_s=SHORT_TERM_TIMEOUT_S)
    context.socket(zmq.PULL, bind=f"ipc://{run_directory}/closed-by-the-harness")
    leaked = context.context.socket(zmq.PUSH)  # made outside the harness and never closed
    leaked.connect(f"ipc://{run_directory}/leaked")
    started_s = time.monotonic()
    with pytest.raises(ContextTermTimeout, match=r"1 socket\(s\) left open: PUSH ipc://.*/leaked"):
        context.close()
    assert time.monotonic() - started_s < 5 * SHORT_TERM_TIMEOUT_S
    assert leaked.closed, "the leaked socket is closed so the context could still end"


@pytest.mark.parametrize("pattern", ["push_pull", "pub_sub"])
@pytest.mark.parametrize("transport", ["inproc", "ipc"])
def test_a_pair_delivers_its_first_message(socket_pair, pattern, transport):
    pair = socket_pair(pattern, transport)
    assert pair.endpoint.startswith(f"{transport}://")
    pair.send(wire.Control("stop"))
    assert pair.receive(timeout_s=5) == wire.Control("stop")


def test_a_receive_with_nothing_sent_fails_naming_the_endpoint(socket_pair, zmq_context):
    pair = socket_pair()
    with pytest.raises(AssertionError, match=r"no message on inproc://.* received within 0.2 s"):
        pair.receive(timeout_s=0.2)
    bare = zmq_context.socket(zmq.PULL, bind="inproc://bare-receive", receive_timeout_ms=100)
    with pytest.raises(zmq.Again):
        bare.recv()  # even without a poll, a harness socket never waits for ever


def test_a_receive_from_a_sender_that_exited_fails_early_with_its_exit_code(socket_pair):
    pair = socket_pair()
    started_s = time.monotonic()
    with pytest.raises(AssertionError, match="exited with code 3 before sending a frame"):
        receive(pair.receiver, timeout_s=20, what="a frame", sender=exited_process())
    assert time.monotonic() - started_s < 5


def test_the_fake_supervisor_binds_the_control_and_status_links(fake_supervisor, stage_endpoints, zmq_context):
    stage_status = zmq_context.socket(zmq.PUSH, connect=stage_endpoints.status)
    stage_status.send_multipart(wire.encode(wire.Status("display", 0, 1, {"frames_in": 2.0})))
    assert fake_supervisor.read_status("display", lambda counters: counters["frames_in"] == 2.0) == {"frames_in": 2.0}
    with pytest.raises(AssertionError, match=r"no display heartbeat matched within 0.3 s; last: \{'frames_in': 2.0\}"):
        fake_supervisor.read_status("display", lambda counters: False, timeout_s=0.3)


def test_wait_until_returns_the_value_and_fails_naming_what_it_waited_for():
    assert wait_until(lambda: 42, 1, "the answer") == 42
    with pytest.raises(AssertionError, match="timed out after 0.2 s waiting for the sky to fall"):
        wait_until(lambda: False, 0.2, "the sky to fall")


def test_wait_until_fails_at_once_when_the_process_that_should_do_it_has_exited():
    started_s = time.monotonic()
    with pytest.raises(AssertionError, match=r"exited with code 3 while waiting for results: its log"):
        wait_until(lambda: False, 60, "results", exited_process(), describe=lambda _process: "its log")
    assert time.monotonic() - started_s < 5


def test_a_fuzz_seed_comes_from_the_environment_and_failures_name_it(monkeypatch):
    assert fuzz_generator(7)[1] == 7
    monkeypatch.setenv("FAKEBLOCK_FUZZ_SEED", "1234")
    generator, seed = fuzz_generator(7)
    assert seed == 1234 and generator.bytes(8) == fuzz_generator(7)[0].bytes(8)
    with pytest.raises(AssertionError, match="FAKEBLOCK_FUZZ_SEED=1234"), seed_on_failure(seed):
        raise AssertionError("a hostile input got through")
    assert reproduce_with(5) == "FAKEBLOCK_FUZZ_SEED=5"


def test_a_decoder_crash_on_hostile_input_fails_naming_the_seed_and_the_message(monkeypatch):
    def crash(frames):
        raise TypeError("a bug")

    assert decode_hostile([b"\xc1"], seed=5, index=0) is False  # refused: ValueError
    monkeypatch.setattr(wire, "decode", crash)
    with pytest.raises(AssertionError, match=r"message 7 \(FAKEBLOCK_FUZZ_SEED=5\) raised TypeError: a bug"):
        decode_hostile([b"x"], seed=5, index=7)


def test_waiting_for_no_orphans_fails_naming_the_process_left():
    fake_supervisor_pid = 2**22 + 4321  # no such process: only its children's environment names it
    left = subprocess.Popen(["sleep", "30"], env={"FAKEBLOCK_SUPERVISOR_PID": str(fake_supervisor_pid)})
    try:
        # Until it has exec'd, the child still has this process's environment.
        wait_until(lambda: orphans_of(fake_supervisor_pid) == [left.pid], 10, "sleep to start", left)
        with pytest.raises(AssertionError, match=rf"still running: \[{left.pid}\]"):
            wait_for_no_orphans(fake_supervisor_pid, timeout_s=0.3)
    finally:
        left.kill()
        left.wait(10)
    wait_for_no_orphans(fake_supervisor_pid, timeout_s=5)


def test_train_modules_are_left_uncollected_only_when_minus_m_deselects_all_their_tests():
    for expression in ("not slow and not train", "not train", "slow and not train", "not (train or slow)"):
        assert deselects_every_train_test(expression), expression
    # A train test may still be selected (or nothing deselects it): every module is collected.
    for expression in ("", "train", "slow", "not slow", "not train or slow", "train and not slow", "not (train"):
        assert not deselects_every_train_test(expression), expression
    assert marked_train_as_a_whole('"""Doc."""\n\npytestmark = [pytest.mark.train, pytest.mark.timeout(300)]\n')
    assert marked_train_as_a_whole("pytestmark = pytest.mark.train\n")
    assert not marked_train_as_a_whole("pytestmark = pytest.mark.timeout(30)\n\n@pytest.mark.train\ndef test_one():\n")
