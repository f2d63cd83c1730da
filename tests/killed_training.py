"""``fakeblock train`` that SIGKILLs itself at a chosen moment, for the resume tests.

``python -m tests.killed_training WHEN -- <train options>`` runs the real CLI; ``WHEN`` is
``never``, ``batch:E:B`` (after batch B of epoch E, both from 0: mid-epoch) or
``unsaved:E`` (after epoch E's history row is written, before its checkpoint is).
Nothing is caught: the process dies as a power cut or the OOM killer would end it.
"""

from __future__ import annotations

import os
import signal
import sys

from fakeblock.train import resume, run


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(when: str) -> None:
    """Patch the training callbacks so the run dies at ``when``."""
    kind, *numbers = when.split(":")
    if kind == "batch":
        kill_epoch, kill_batch = map(int, numbers)
        progress = run.RichProgress

        class DyingProgress(progress):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch
                super().on_epoch_begin(epoch, logs)

            def on_train_batch_end(self, batch, logs=None):
                super().on_train_batch_end(batch, logs)
                if (self.epoch, batch) == (kill_epoch, kill_batch):
                    _die()

        run.RichProgress = DyingProgress
    elif kind == "unsaved":
        kill_epoch = int(numbers[0])
        save = resume.ResumePoint.on_epoch_end

        def dying_save(self, epoch, logs=None):
            if epoch == kill_epoch:
                _die()
            save(self, epoch, logs)

        resume.ResumePoint.on_epoch_end = dying_save
    elif kind != "never":
        raise SystemExit(f"unknown moment {when!r}")


if __name__ == "__main__":
    arm(sys.argv[1])
    from fakeblock.control.cli.entry import main

    sys.argv = ["fakeblock", "train", *sys.argv[3:]]
    main()
