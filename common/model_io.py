"""What the emotion model takes and gives: square grey faces in, one score per emotion out.

The wire checks messages against these, preprocessing makes faces of this size, and the
classify runtime and training build and check models with them.  No imports: the wire
and the control plane use this module, and neither may pull in OpenCV or TensorFlow.
"""

from __future__ import annotations

# The model's classes, in the order of its scores (and of every ``Result`` row).
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
EMOTION_COUNT = len(EMOTIONS)
# The side of a face crop, as the model reads it (and as detect sends it).
FACE_SIZE_PX = 48
# One face as the model's input row holds it: height, width and one grey channel.
FACE_INPUT_SHAPE = (FACE_SIZE_PX, FACE_SIZE_PX, 1)
