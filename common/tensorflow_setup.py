"""TensorFlow's process settings, set in one place before it is first imported.

TensorFlow reads its C++ log level from the environment once, when it loads, so this
must run before ``import tensorflow`` or ``import keras``.  It imports neither itself:
callers that may never need TensorFlow (the classify runtime with LiteRT) stay free of it.
"""

from __future__ import annotations

import os

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# "2": errors only.  Without it every process that loads TensorFlow prints lines of
# start-up information and warnings about CPU features that say nothing to a user.
QUIET_LOG_LEVEL = "2"


def quiet_tensorflow() -> None:
    """Keep TensorFlow's start-up chatter off stderr, unless the user chose a log level."""
    os.environ.setdefault(LOG_LEVEL_VARIABLE, QUIET_LOG_LEVEL)
