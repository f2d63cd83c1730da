"""The stage registry: every stage of the pipeline, once.

The supervisor, the CLI, the endpoints and the site-file schema all read :data:`STAGES`;
adding a stage means adding a :class:`StageSpec` here and writing its folder.  Entry
points are ``module:function`` strings, imported only in the stage's own process, so the
control plane never loads TensorFlow or OpenCV for stages it merely supervises.

A stage's entry point is called as ``run(config, endpoints, worker, security)``: its
config (None for a stage without settings), the :class:`~fakeblock.common.endpoints.Endpoints`
it uses, its worker number and the :class:`~fakeblock.common.security.access.SecurityConfig` of
its sockets.  It returns the process's exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

SOURCE, SINK = "source", "sink"  # drain roles: ends streams / writes every result


@dataclass(frozen=True)
class StageSpec:
    """One stage: how to run it and what it owns.

    ``config_field`` names its settings on ``PipelineConfig`` (None: it has none) and
    ``workers_field`` the number of its workers there (None: always one, up to
    ``worker_limit``).  ``binds`` are the data links it listens on (stable ends bind,
    scalable workers connect).  ``drain`` is its part in an orderly stop: a ``SOURCE``
    ends its streams, a ``SINK`` writes what is in flight; the supervisor waits for both.
    ``links`` are links only this stage introduces (a stage beyond the standard five);
    ``rewire`` points a field of this stage's endpoints at another link (for example a
    stage inserted downstream of detect makes detect's ``faces_in`` its own link).
    ``per_capture`` runs one instance per capture of the site instead of numbered
    workers.
    """

    name: str
    entry: str
    config_field: str | None = None
    workers_field: str | None = None
    worker_limit: int = 1
    binds: tuple[str, ...] = ()
    drain: str | None = None
    links: tuple[str, ...] = ()
    rewire: Mapping[str, str] = field(default_factory=dict)
    per_capture: bool = False


# Upstream first: a frame's path.  The supervisor starts them in the reverse order, so
# every link is listened on before anything is sent into it.
STAGES: tuple[StageSpec, ...] = (
    StageSpec("capture", "fakeblock.capture.stage:run_capture", config_field="capture", binds=("frames",),
              drain=SOURCE, per_capture=True),
    StageSpec("detect", "fakeblock.detect.stage:run_detect", config_field="detect", workers_field="detect_workers",
              worker_limit=16),
    # The queue balances faces over the classify workers; it lives beside them in classify/.
    StageSpec("queue", "fakeblock.classify.queue:run_queue", binds=("faces_in", "faces_out")),
    StageSpec("classify", "fakeblock.classify.stage:run_classify", config_field="classify",
              workers_field="classify_workers", worker_limit=8),
    StageSpec("display", "fakeblock.display.stage:run_display", config_field="display",
              binds=("results", "display_frames"), drain=SINK),
)
STAGE_NAMES = tuple(spec.name for spec in STAGES)


def stage_spec(name: str, stages: tuple[StageSpec, ...] = STAGES) -> StageSpec:
    """The spec of stage ``name``; ``KeyError`` for a name no stage has."""
    for spec in stages:
        if spec.name == name:
            return spec
    raise KeyError(name)


def bound_links(stages: tuple[StageSpec, ...] = STAGES) -> dict[str, tuple[str, ...]]:
    """Stage name -> the data links it binds, for the stages that bind any."""
    return {spec.name: spec.binds for spec in stages if spec.binds}


def insert_stage(new: StageSpec, after: str, stages: tuple[StageSpec, ...] = STAGES,
                 **changes: Mapping[str, str]) -> tuple[StageSpec, ...]:
    """``stages`` with ``new`` placed after stage ``after``; ``changes`` maps a stage name to
    the ``rewire`` it gets (how an existing stage's output is pointed at the new stage)."""
    result = []
    for spec in stages:
        result.append(replace(spec, rewire={**spec.rewire, **changes[spec.name]}) if spec.name in changes else spec)
        if spec.name == after:
            result.append(new)
    return tuple(result)
