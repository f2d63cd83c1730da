"""TensorFlow's process settings, set in one place before it is first imported.

TensorFlow reads its C++ log level from the environment once, when it loads, so this
must run before ``import tensorflow`` or ``import keras``.  It imports neither itself:
callers that may never need TensorFlow (the classify runtime with LiteRT) stay free of it.

TensorFlow is not in the base install (LiteRT runs the model); the ``train`` extra brings
it.  :func:`missing_tensorflow` tells an import that failed for want of it from any other,
so a caller can name the extra in one line instead of a traceback.
"""

from __future__ import annotations

import os

# The top-level modules the ``train`` extra installs (Keras comes with TensorFlow).
TENSORFLOW_MODULES = ("tensorflow", "keras")
# Both ways in: a package installed with pip, and a clone installed in place (as the README does).
PIP_TRAIN_EXTRA = "pip install 'fakeblock[train]'"
CLONE_TRAIN_EXTRA = "pip install -e '.[train]'"
TRAIN_EXTRA_INSTALL = f"{PIP_TRAIN_EXTRA}, or in a clone {CLONE_TRAIN_EXTRA}"
LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# "2": errors only.  Without it every process that loads TensorFlow prints lines of
# start-up information and warnings about CPU features that say nothing to a user.
QUIET_LOG_LEVEL = "2"


def quiet_tensorflow() -> None:
    """Keep TensorFlow's start-up chatter off stderr, unless the user chose a log level."""
    os.environ.setdefault(LOG_LEVEL_VARIABLE, QUIET_LOG_LEVEL)


def missing_tensorflow(error: ImportError) -> bool:
    """True when ``error`` says TensorFlow or Keras is not installed (not some other import)."""
    name = error.name or ""
    return name.split(".")[0] in TENSORFLOW_MODULES


def needs_tensorflow_message(what: str) -> str:
    """One line for a user without the ``train`` extra: what needs TensorFlow and how to get it."""
    return f"{what} needs TensorFlow, which the base install leaves out: {TRAIN_EXTRA_INSTALL}"
