"""One person per track: whether a box found in this frame shows the face a track showed in the last.

A face that moves, turns or talks changes little from one frame to the next once its
motion is taken out: the cascade's box jitters by a few per cent of the face's side and
scale, so the track's look (:mod:`fakeblock.detect.looks`) compared with the new box,
shifted and scaled by as much, finds nearly the same picture.  A face *replaced* in its
place (a cut, one person stepping in front of another, a montage) leaves the box where it
was but changes what is in it: no shift or scale explains the change.

The rule: the *unexplained change* is one minus the best similarity of the track's look to
the new box moved by up to ``MAX_SHIFT_SHARE`` of its side and scaled by up to
``MAX_SCALE_CHANGE`` (:func:`unexplained_change`).  A box continues a track when that
change is within what the track itself shows (:func:`change_allowed`): ``CHANGE_RATIO``
times the face's usual change (a running mean of its own frame-to-frame changes, so a
face in shaky, blurred or compressed footage is allowed more), never less than
``MIN_ALLOWED_CHANGE`` (far above the flicker of a still face) and never more than
``MAX_ALLOWED_CHANGE`` (two different faces aligned on their boxes still correlate,
typically 0.4-0.7: faces share their layout).
"""

from __future__ import annotations

import numpy as np

from fakeblock.detect.boxes import Box
from fakeblock.detect.looks import signature, similarity

# Between two frames the cascade's box of one face moves by up to about this share of its
# side and changes its side by up to this share: its windows step by 10 % in size and by a
# few pixels in place, and a face moves on top of that.
MAX_SHIFT_SHARE = 0.12
MAX_SCALE_CHANGE = 0.1
# A face last seen some frames ago may have moved that many frames' worth, up to this many
# (a face the cascade missed in a fast move or a blur is looked for no farther).
MAX_MOTION_FRAMES = 3
# The unexplained change allowed: this many times the face's usual change ...
CHANGE_RATIO = 5.0
# ... within these bounds.  A still face in compressed video changes by about 0.003-0.02
# from frame to frame; a moving, talking face by 0.02-0.1 (up to 0.2 in a fast move).
MIN_ALLOWED_CHANGE = 0.2
MAX_ALLOWED_CHANGE = 0.4
# The usual change of a new track (a moving face's), and how many frames its running
# mean spans: its weight halves in about 0.7 times this many frames.
FIRST_USUAL_CHANGE = MIN_ALLOWED_CHANGE / CHANGE_RATIO
# A change this small needs no better alignment: it is within what any face usually shows,
# so the search stops there (the running mean then learns no more than this from it).
USUAL_CHANGE_BOUND = MIN_ALLOWED_CHANGE / CHANGE_RATIO
USUAL_CHANGE_FRAMES = 10.0


def _moved(box: Box, shift_x: float, shift_y: float, scale: float) -> Box:
    """``box`` moved by shares of its side and scaled about its centre."""
    x, y, width, height = box
    side_x, side_y = width * scale, height * scale
    return (round(x + width / 2 - side_x / 2 + shift_x * width), round(y + height / 2 - side_y / 2 + shift_y * height),
            max(1, round(side_x)), max(1, round(side_y)))


def _position_of(seen_at: Box, box: Box, max_shift: float, max_scale_change: float) -> tuple[float, float, float]:
    """``seen_at`` as a move of ``box`` (shift in shares of its side, scale), brought within reach."""
    x, y, width, height = box
    seen_x, seen_y, seen_width, seen_height = seen_at
    shift_x = (seen_x + seen_width / 2 - x - width / 2) / width
    shift_y = (seen_y + seen_height / 2 - y - height / 2) / height
    scale = seen_width / width
    return (min(max_shift, max(-max_shift, shift_x)), min(max_shift, max(-max_shift, shift_y)),
            min(1 + max_scale_change, max(1 - max_scale_change, scale)))


def unexplained_change(look: np.ndarray | None, gray: np.ndarray, box: Box, box_look: np.ndarray | None,
                       enough: float = 0.0, frames: int = 1, seen_at: Box | None = None) -> float:
    """One minus the best similarity of ``look`` to ``box`` in ``gray`` moved and scaled as a frame's motion may.

    ``box_look`` is ``box``'s own signature (computed once by the caller); ``frames`` is how
    many frames ago ``look`` was seen (the face may have moved that many frames' worth, up to
    ``MAX_MOTION_FRAMES``); ``seen_at``, where it was seen.  The search climbs from the box
    itself, or from ``seen_at`` (within reach) where that is more alike: the cascade's box
    may sit off the face by more than one step's worth (a box a size step smaller and off to
    one side starts in a valley the climb does not leave), while the face itself usually
    moved little.  It tries a step either way in place (across, down) and size, moves
    to the best, and halves the step when none is better, from half the reach down to
    ``MAX_SHIFT_SHARE / 16``, never beyond ``MAX_SHIFT_SHARE`` and ``MAX_SCALE_CHANGE`` per frame.  It stops
    as soon as the change is at most ``enough``: the caller needs to know no more.
    """
    best = similarity(look, box_look)
    if look is None:
        return 1 - best
    reach = min(max(1, frames), MAX_MOTION_FRAMES)
    max_shift, max_scale_change = MAX_SHIFT_SHARE * reach, MAX_SCALE_CHANGE * reach
    position = (0.0, 0.0, 1.0)
    if seen_at is not None and seen_at != box and 1 - best > enough:
        start = _position_of(seen_at, box, max_shift, max_scale_change)
        there = similarity(look, signature(gray, _moved(box, *start)))
        if there > best:
            best, position = there, start
    step = max_shift / 2
    while 1 - best > enough and step >= MAX_SHIFT_SHARE / 16:
        shift_x, shift_y, scale = position
        tried = [(shift_x + step, shift_y, scale), (shift_x - step, shift_y, scale), (shift_x, shift_y + step, scale),
                 (shift_x, shift_y - step, scale), (shift_x, shift_y, scale * (1 + step)),
                 (shift_x, shift_y, scale / (1 + step))]
        scored = [(similarity(look, signature(gray, _moved(box, *candidate))), candidate) for candidate in tried
                  if abs(candidate[0]) <= max_shift + 1e-9 and abs(candidate[1]) <= max_shift + 1e-9
                  and abs(candidate[2] - 1) <= max_scale_change + 1e-9]
        top = max(scored, default=(best, position))
        if top[0] > best:
            best, position = top
        else:
            step /= 2
    return 1 - best


def change_allowed(usual_change: float) -> float:
    """The unexplained change a track whose face usually changes by ``usual_change`` may show."""
    return min(MAX_ALLOWED_CHANGE, max(MIN_ALLOWED_CHANGE, CHANGE_RATIO * usual_change))


def next_usual_change(usual_change: float, change: float) -> float:
    """The running mean of a track's changes after one more frame's ``change``."""
    keep = float(np.exp(-1.0 / USUAL_CHANGE_FRAMES))
    return keep * usual_change + (1 - keep) * change
