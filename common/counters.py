"""The names of the counters stages report in their heartbeats, each defined once.

A stage adds to these through :meth:`fakeblock.common.runtime.StageRuntime.count` (or sets
them in ``StageRuntime.counters``); the supervisor's status board, ``fakeblock status``,
``--stats`` and the "interrupted" line read them back by the same names.  They travel as
the keys of a :class:`fakeblock.common.wire.Status` map, so they are part of the wire:
renaming one breaks every reader of older heartbeats.  The stage that reports a counter
is named in brackets where only some do.
"""

from __future__ import annotations

# Flow through a stage: every stage reports both.
FRAMES_IN = "frames_in"  # messages taken in for work (a source: frames read from it)
FRAMES_OUT = "frames_out"  # messages sent on downstream (display: frames handed to the outputs)

# Losses and refusals.
MALFORMED = "malformed"  # messages that failed to decode, dropped (every stage)
UNEXPECTED = "unexpected"  # well-formed messages of a kind this link never carries, dropped
DROPPED = "dropped"  # frames given up: no room downstream (capture, queue), unmatched or discarded (display)
DISPLAY_DROPPED = "display_dropped"  # frames the display link had no room for, live (capture)
REFUSED = "refused"  # messages no honest peer sends: far-future frames, too many streams (display)

# Capture.
FRAMES_TOTAL = "frames_total"  # frames the source holds, when it knows (a file): for progress
FPS = "fps"  # frames sent per second, recently
LEASES = "leases"  # times the stream was leased to a detect worker: 1, plus one per move (capture)
PEERS = "peers"  # detect workers that said they are ready within the lease timeout (capture)
PEERS_REFUSED = "peers_refused"  # ready messages of new workers refused: the peer table was full (capture)

# Detect and classify.
STALE = "stale"  # lossless frames detect could not track exactly (an older epoch, or joined mid-stream): sent again
HURRIED = "hurried"  # live frames only searched near known tracks, since another frame waited (detect)
FACES = "faces"  # faces found (detect) or scored (classify)
BATCHES = "batches"  # model calls (classify)
BATCH_SIZE = "batch_size"  # faces in the latest model call (classify)

# Display.
RESULTS_IN = "results_in"  # results received from classify
RESULTS_WRITTEN = "results_written"  # results handed to the outputs, in frame order
FRAMES_IGNORED = "frames_ignored"  # frames received while no output draws, dropped at once
SKIPPED = "skipped"  # frame numbers that got no result line (live holes)
UNMATCHED = "unmatched"  # frames dropped because their result never came (live)
MISSING_PIXELS = "missing_pixels"  # results released without their frame although pixels were wanted
PENDING = "pending"  # held: frames and results waiting for partner or turn (display), frames for a batch (classify)
COMPLETE = "complete"  # 1 once every stream has ended and all of its frames are written (lossless)
LATENCY_P50_MS = "latency_p50_ms"  # median capture-to-display time of recent results, milliseconds
LATENCY_P95_MS = "latency_p95_ms"  # its 95th percentile
LATENCY_P99_MS = "latency_p99_ms"  # its 99th percentile
# The latency counters by the percentile name ``latency_percentiles`` gives them.
LATENCY_BY_PERCENTILE = {"p50": LATENCY_P50_MS, "p95": LATENCY_P95_MS, "p99": LATENCY_P99_MS}
# The capture-to-display latency as a histogram since the display started (``fakeblock up
# --metrics-port`` serves it as fakeblock_result_latency_seconds): each bucket counts the
# results whose latency was at most its upper bound, in seconds (cumulative, as Prometheus's).
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Bound in seconds -> its counter: latency_le_10_ms, latency_le_25_ms, ..., latency_le_10000_ms.
LATENCY_BUCKET_COUNTERS = {bound_s: f"latency_le_{round(bound_s * 1000)}_ms" for bound_s in LATENCY_BUCKETS_S}
LATENCY_COUNT = "latency_count"  # results measured (the histogram's +Inf bucket)
LATENCY_SUM_S = "latency_sum_s"  # their latencies added up, seconds

# The supervisor's own, in its status report and the --stats file (not in any heartbeat).
MALFORMED_HEARTBEATS = "malformed_heartbeats"  # messages on its status link that failed to decode, dropped
MALFORMED_REQUESTS = "malformed_requests"  # requests to its status service that were not a status request

# Added to every heartbeat by the runtime.
UPTIME_S = "uptime_s"  # seconds since the stage's runtime started
IDLE_S = "idle_s"  # seconds since input last arrived (a source is never idle)
