"""fakeblock.train: training, evaluation and export of the emotion model.

Most of its modules import TensorFlow, so its log level is set here, once, before any of
them can load it.
"""

from fakeblock.common.tensorflow_setup import quiet_tensorflow

quiet_tensorflow()
