"""Which test modules ``-m`` makes it pointless to import: those marked ``train`` as a whole.

A module marked ``train`` at its top imports TensorFlow and Keras as it is collected (about
5 s), only for every one of its tests to be deselected by ``make check``'s
``-m "not slow and not train"``.  ``conftest.py`` leaves such a module uncollected when the
expression given to ``-m`` selects no test marked ``train``, whatever the test's other marks.
"""

from __future__ import annotations

import itertools
import re

TRAIN_MODULE_MARK = re.compile(r"^pytestmark = \[?pytest\.mark\.train\b", re.MULTILINE)
MARK_EXPRESSION_WORDS = frozenset({"and", "or", "not"})
MAX_MARK_NAMES = 8


def deselects_every_train_test(mark_expression: str) -> bool:
    """True when ``-m mark_expression`` selects no test marked ``train``, whatever its other marks.

    Every combination of the other marks the expression names is tried with ``train`` set;
    an expression this cannot decide (none, too many names, or one pytest cannot read) is
    False: the modules are then collected as usual.
    """
    try:
        from _pytest.mark.expression import Expression  # pytest's own reader of -m (a private module)
    except ImportError:
        return False  # another pytest: collect everything, as without this shortcut
    names = sorted(set(re.findall(r"[A-Za-z_][\w.]*", mark_expression)) - MARK_EXPRESSION_WORDS - {"train"})
    if not mark_expression.strip() or len(names) > MAX_MARK_NAMES:
        return False
    try:
        expression = Expression.compile(mark_expression)
        for values in itertools.product((False, True), repeat=len(names)):
            marks = {"train", *(name for name, value in zip(names, values, strict=True) if value)}
            if expression.evaluate(marks_matcher(marks)):
                return False
    except SyntaxError:
        return False
    return True


def marks_matcher(marks: set[str]):
    """The -m matcher of a test carrying ``marks`` (whatever a mark's arguments)."""
    return lambda name, /, **_arguments: name in marks


def marked_train_as_a_whole(source: str) -> bool:
    """True when a test module's text marks the whole module ``train`` (``pytestmark = [pytest.mark.train, ...]``)."""
    return TRAIN_MODULE_MARK.search(source) is not None
