"""Several supervisors, one site file: `fakeblock up --config ... --only ...` end to end over loopback TCP.

Two loopback addresses play two machines (tests/sites.py): 127.0.0.1 runs capture and
display, 127.0.0.2 runs detect, queue and classify, each under its own supervisor, with
ports chosen free at test time.  Every wait has a timeout and fails early when a supervisor
exits; every process group a test starts is killed at the end if it is still there.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from fakeblock.common.security.keys import generate_keys
from tests.helpers import (
    MEDIA,
    OFFICE_FRAMES,
    assert_running,
    line_count,
    read_results,
    shared_file,
    wait_for_no_orphans,
    wait_until,
)
from tests.sites import FRONT_HOST, WORKER_HOST, Site, free_port, log_of, stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
PHONE_FRAMES = 115
FRONT_STAGES, WORKER_STAGES = ("capture", "display"), ("detect", "queue", "classify")
RUN_TIMEOUT_S = 400


def site_text(results: Path, sources: list[tuple[str, Path]], keys: Path | None = None) -> str:
    """A site file: capture(s) and display on FRONT_HOST, detect, queue and classify on WORKER_HOST."""
    lines = [f'[site]\nkeys = "{keys}"\n' if keys else "", f"[supervisor]\nport = {free_port()}\n"]
    for stream, video in sources:
        lines.append(f'[[stages.capture]]\nhost = "{FRONT_HOST}"\nport = {free_port()}\nsource = "{video}"\n'
                     f'stream = "{stream}"\n')
    lines.append(f'[stages.detect]\nhost = "{WORKER_HOST}"\nworkers = 2\n')
    lines.append(f'[stages.queue]\nhost = "{WORKER_HOST}"\nports = [{free_port()}, {free_port()}]\n')
    lines.append(f'[stages.classify]\nhost = "{WORKER_HOST}"\n')
    lines.append(f'[stages.display]\nhost = "{FRONT_HOST}"\nports = [{free_port()}, {free_port()}]\n'
                 f'outputs = ["none"]\nresults = "{results}"\n')
    return "\n".join(lines)


def wait_for_lines(path: Path, count: int, processes: list[subprocess.Popen], timeout_s: float = 200) -> None:
    """Wait until ``path`` has ``count`` lines, failing early (with its log) when a supervisor exits."""
    wait_until(lambda: line_count(path) >= count, timeout_s, f"{count} results in {path}", processes,
               interval_s=0.2, describe=log_of)


def run_split(site: Site, sources: list[tuple[str, Path]], keys: Path | None = None):
    """Start the worker host and the front host; returns (front, workers, results path, site file)."""
    results = site.tmp_path / "results.jsonl"
    site_file = site.tmp_path / "site.toml"
    site_file.write_text(site_text(results, sources, keys))
    workers = site.up("workers", "--config", str(site_file), "--only", ",".join(WORKER_STAGES))
    front = site.up("front", "--config", str(site_file), "--only", ",".join(FRONT_STAGES))
    return front, workers, results, site_file


def finish(front: subprocess.Popen, workers: subprocess.Popen) -> None:
    """The front host exits by itself once every frame is written; the workers run until stopped."""
    assert front.wait(RUN_TIMEOUT_S) == 0, log_of(front)
    assert workers.poll() is None, "a host of workers serves until it is stopped"
    assert stop(workers) == 130, log_of(workers)  # Ctrl-C: 128 + SIGINT
    wait_for_no_orphans(front.pid, workers.pid)
    assert "Traceback" not in front.log_path.read_text() + workers.log_path.read_text()


def stages_by_host(document: dict) -> dict[str, dict[str, dict]]:
    return {host["host"]: {stage["stage"]: stage for stage in host.get("stages", [])} for host in document["hosts"]}


def wait_for_flowing_status(site: Site, site_file: Path, timeout_s: float = 30) -> dict:
    """`fakeblock status --config` until every stage answers alive and detect reports a rate."""
    deadline_s = time.monotonic() + timeout_s
    while True:
        code, document = site.status("--config", str(site_file))
        stages = stages_by_host(document)
        flowing = code == 0 and stages.get(WORKER_HOST, {}).get("detect", {}).get("frames_in_per_s", 0) > 0
        if flowing or time.monotonic() > deadline_s:
            return document  # the test's assertions say what is missing
        assert_running(site.processes, "every stage to answer `fakeblock status`", describe=log_of)
        time.sleep(0.5)


def test_two_hosts_replay_every_frame_and_status_shows_every_stage(site):
    video = shared_file(MEDIA / "office-woman.mp4")
    front, workers, results, site_file = run_split(site, [("office-woman", video)])
    wait_for_lines(results, 60, [front, workers])
    document = wait_for_flowing_status(site, site_file)
    stages = stages_by_host(document)
    assert set(stages) == {FRONT_HOST, WORKER_HOST}, document
    assert set(stages[FRONT_HOST]) == set(FRONT_STAGES) and set(stages[WORKER_HOST]) == set(WORKER_STAGES)
    for host_stages in stages.values():
        for stage in host_stages.values():
            assert stage["alive"] == stage["workers"] >= 1, stage
    assert stages[WORKER_HOST]["detect"]["workers"] == 2 and stages[WORKER_HOST]["detect"]["frames_in_per_s"] > 0
    assert stages[FRONT_HOST]["capture"]["uptime_s"] > 0
    code, local = site.status()  # no site file: the pipelines running on this machine
    assert code == 0 and sorted(len(host["stages"]) for host in local["hosts"]) == [2, 3], local
    finish(front, workers)
    lines = read_results(results)
    assert [line["frame"] for line in lines] == list(range(OFFICE_FRAMES))
    assert {line["stream"] for line in lines} == {"office-woman"}
    assert site.status()[0] == 1, "both supervisors are gone: nothing left to ask"


def test_with_curve_keys_the_same_replay_works_and_strangers_get_no_answer(site):
    video = shared_file(MEDIA / "office-woman.mp4")
    keys = site.tmp_path / "keys"
    generate_keys(keys)
    front, workers, results, site_file = run_split(site, [("office-woman", video)], keys=keys)
    wait_for_lines(results, 30, [front, workers])
    stages = stages_by_host(wait_for_flowing_status(site, site_file))
    assert set(stages) == {FRONT_HOST, WORKER_HOST}
    stranger_file = site.tmp_path / "no-keys.toml"
    stranger_file.write_text(site_file.read_text().replace(f'keys = "{keys}"', ""))
    code, document = site.status("--config", str(stranger_file), "--timeout", "1")
    assert code == 1 and not any(host["answered"] for host in document["hosts"])
    finish(front, workers)
    assert [line["frame"] for line in read_results(results)] == list(range(OFFICE_FRAMES))


def test_two_cameras_feed_one_set_of_workers_and_each_line_names_its_stream(site):
    office, phone = shared_file(MEDIA / "office-woman.mp4"), shared_file(MEDIA / "phone-woman.mp4")
    front, workers, results, _site_file = run_split(site, [("office", office), ("phone", phone)])
    wait_for_lines(results, 30, [front, workers])
    code, local = site.status()
    captures = [stage for host in local["hosts"] for stage in host["stages"] if stage["stage"] == "capture"]
    assert code == 0 and captures and captures[0]["workers"] == 2, local
    finish(front, workers)
    lines = read_results(results)
    assert len(lines) == OFFICE_FRAMES + PHONE_FRAMES
    for stream, count in (("office", OFFICE_FRAMES), ("phone", PHONE_FRAMES)):
        assert [line["frame"] for line in lines if line["stream"] == stream] == list(range(count))
