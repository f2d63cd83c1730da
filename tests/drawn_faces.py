"""Faces drawn from a few shapes, for the identity tests: one person differs from another the way
real faces do (the same layout: a lit oval, dark eyes and brows, a mouth, hair above),
so two people aligned on their boxes still correlate, as two real faces do."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Person:
    """What tells one drawn person from another."""

    skin: int  # grey level of the face
    hair: int  # grey level of the hair
    hair_share: float  # how far down the hair comes, as a share of the box
    eye_gap: float  # distance between the eyes, as a share of the box
    face_width: float  # the oval's width, as a share of the box
    brow_tilt: float  # brows slanting (pixels per side, as a share of the box)


PEOPLE = (
    Person(skin=190, hair=40, hair_share=0.22, eye_gap=0.36, face_width=0.78, brow_tilt=0.0),
    Person(skin=160, hair=110, hair_share=0.15, eye_gap=0.48, face_width=0.95, brow_tilt=0.06),
    Person(skin=170, hair=220, hair_share=0.08, eye_gap=0.30, face_width=0.70, brow_tilt=-0.04),
    Person(skin=120, hair=160, hair_share=0.18, eye_gap=0.40, face_width=0.82, brow_tilt=0.02),
)


def draw_face(image: np.ndarray, box: tuple[int, int, int, int], person: Person, yaw: float = 0.0,
              smile: float = 0.0) -> None:
    """Draw ``person`` into ``image`` (grey) filling ``box``; ``yaw`` in [-1, 1] turns the head
    (the features slide sideways and the far side narrows), ``smile`` in [0, 1] opens the mouth."""
    x, y, side, _ = box

    def point(u: float, v: float) -> tuple[int, int]:
        return round(x + u * side), round(y + v * side)

    image[y:y + side, x:x + side] = (person.skin + 60) // 2  # the background close around the head
    centre_u = 0.5 + 0.12 * yaw
    cv2.ellipse(image, point(centre_u, 0.55), (round(side * person.face_width / 2 * (1 - 0.25 * abs(yaw))),
                                                round(side * 0.46)), 0, 0, 360, person.skin, -1)
    cv2.rectangle(image, point(0.1, 0.0), point(0.9, person.hair_share), person.hair, -1)
    feature_u = 0.5 + 0.2 * yaw
    for side_sign in (-1, 1):
        eye_u = feature_u + side_sign * person.eye_gap / 2 * (1 - 0.3 * abs(yaw))
        cv2.ellipse(image, point(eye_u, 0.45), (max(1, round(side * 0.06)), max(1, round(side * 0.035))), 0, 0, 360,
                    30, -1)
        tilt = side_sign * person.brow_tilt
        cv2.line(image, point(eye_u - 0.07, 0.37 + tilt), point(eye_u + 0.07, 0.37 - tilt), 50, max(1, side // 30))
    cv2.line(image, point(feature_u, 0.5), point(feature_u + 0.03, 0.64), int(person.skin * 0.7), max(1, side // 40))
    mouth_half = round(side * (0.12 + 0.04 * smile))
    cv2.ellipse(image, point(feature_u, 0.76), (mouth_half, max(1, round(side * (0.015 + 0.06 * smile)))), 0, 0, 360,
                60, -1)


def scene(faces: list[tuple[tuple[int, int, int, int], Person, float, float]], width_px: int = 320,
          height_px: int = 240, background: int = 100) -> np.ndarray:
    """A grey frame with each ``(box, person, yaw, smile)`` drawn in order (later ones in front)."""
    image = np.full((height_px, width_px), background, np.uint8)
    for box, person, yaw, smile in faces:
        draw_face(image, box, person, yaw, smile)
    return cv2.GaussianBlur(image, (3, 3), 0)
