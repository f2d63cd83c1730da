"""The parts of lossless recovery that need no processes: detect's epochs and the supervisor's rewinds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from fakeblock.common import wire
from fakeblock.common.config import CaptureConfig, DetectConfig
from fakeblock.common.stages import SINK, SOURCE
from fakeblock.control.supervisor.rewinds import REWIND_ORDERS, Rewinds
from fakeblock.control.supervisor.run_config import Deployment, build_config
from fakeblock.control.supervisor.workers import Worker
from fakeblock.detect.core import StreamTrackers

IMAGE = np.full((120, 160, 3), 90, np.uint8)


def trackers() -> StreamTrackers:
    return StreamTrackers(DetectConfig(follow_epochs=True), lambda gray, job: [])


def test_a_lossless_tracker_starts_only_at_a_streams_first_frame_and_follows_one_epoch():
    tracked = trackers()
    assert tracked.detect("clip", 5, IMAGE, 8, live=False) is None, "joined mid-stream: wait for the rewind"
    assert tracked.detect("clip", 0, IMAGE, 8, live=False) is not None
    assert tracked.detect("clip", 1, IMAGE, 8, live=False) is not None
    assert tracked.detect("clip", 1, IMAGE, 8, live=False) is None, "a frame twice in one epoch"
    assert tracked.detect("clip", 7, IMAGE, 8, epoch=1, live=False) is None, "a new epoch starts at frame 0"
    assert tracked.detect("clip", 2, IMAGE, 8, live=False) is not None, "the old epoch goes on meanwhile"
    assert tracked.detect("clip", 0, IMAGE, 8, epoch=1, live=False) is not None
    assert tracked.detect("clip", 3, IMAGE, 8, epoch=0, live=False) is None, "the old epoch is over"


def test_a_live_tracker_takes_every_frame_and_starts_afresh_when_numbers_go_back():
    tracked = trackers()
    for number in (5, 6, 2, 3):
        assert tracked.detect("camera0", number, IMAGE, 8) is not None


def lossless_config(tmp_path):
    config = build_config(Deployment(), {"source": "clip.mp4"}, show_status=False)
    return replace(config, capture=replace(config.capture, live=False))


def test_a_restart_in_a_lossless_run_orders_every_running_source_to_start_again(tmp_path):
    config = lossless_config(tmp_path)
    capture = Worker("capture", 0, config.capture, role=SOURCE)
    capture.process = object()  # running
    display = Worker("display", 0, config.display, role=SINK)
    rewinds = Rewinds(config)
    assert rewinds.lossless
    assert rewinds.after_restart(display, [capture, display], now_s=10.0) == []
    orders = [rewinds.order_due(10.0 + 0.5 * step) for step in range(REWIND_ORDERS + 2)]
    assert orders[:REWIND_ORDERS] == [wire.Control(wire.REWIND, "", 1)] * REWIND_ORDERS
    assert orders[REWIND_ORDERS:] == [None, None]


def test_a_finished_or_crashed_source_is_started_again_in_the_new_epoch(tmp_path):
    config = lossless_config(tmp_path)
    finished = Worker("capture", 0, config.capture, role=SOURCE, finished=True, exit_code=0)
    crashed = Worker("capture", 1, config.capture, role=SOURCE, exit_code=-9)
    rewinds = Rewinds(config)
    assert rewinds.after_restart(crashed, [finished, crashed], now_s=0.0) == [finished]
    assert finished.config.epoch == crashed.config.epoch == 1 and not finished.finished
    assert rewinds.order_due(0.0) is None, "nothing left running to order"


def test_a_live_run_is_never_rewound(tmp_path):
    config = lossless_config(tmp_path)
    config = replace(config, capture=CaptureConfig(source="0", live=True))
    rewinds = Rewinds(config)
    assert not rewinds.lossless
    assert rewinds.after_restart(Worker("detect", 0, None), [], now_s=0.0) == []


def test_without_rewinds_a_restarted_detect_tracks_a_stream_from_wherever_it_joins():
    tracked = StreamTrackers(DetectConfig(), lambda gray, job: [])  # a worker host: its sources are elsewhere
    assert tracked.detect("clip", 5, IMAGE, 8, live=False) is not None
    assert tracked.detect("clip", 6, IMAGE, 8, live=False) is not None
