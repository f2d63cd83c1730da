"""The files ``fakeblock train`` and ``fakeblock ensemble`` write into their output folder.

``fakeblock ship`` copies the model and its card into the package under the same names,
and later runs (``--resume``, ``ship``) find a run's settings and history by them.
"""

from __future__ import annotations

from fakeblock.classify.model_runtime import DEFAULT_MODEL_NAME

# The export the classify stage runs: named as the package ships its model, so shipping is a copy.
TFLITE_NAME = DEFAULT_MODEL_NAME
CARD_NAME = "model.json"  # how the model was made and how well it does (beside the shipped model too)
BEST_MODEL_NAME = "model.keras"  # a training run's best checkpoint by validation accuracy
CONFIG_NAME = "train-config.json"  # the run's settings, to resume or ship it
TIMING_NAME = "timing.json"  # wall time over every session of a resumed run
HISTORY_NAME = "history.csv"  # one row of losses and accuracies per epoch
BACKUP_FOLDER_NAME = "backup"  # the last epoch's checkpoint of an unfinished run, for --resume (see resume.py)
HISTORY_PLOT_NAME = "history.png"
CONFUSION_PLOT_NAME = "confusion.png"
PLOT_NAMES = (CONFUSION_PLOT_NAME, HISTORY_PLOT_NAME)
