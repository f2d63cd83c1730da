"""Who may read ``/metrics``: the bearer token file and the rule for listening beyond loopback.

The token file must be a regular file owned by this user or by root, writable by nobody
else and readable by no "other" user; the group may read it (mode 0440 or 0640), which
is how a Kubernetes Secret volume with ``defaultMode: 0440`` and the pod's ``fsGroup``
hands a root-owned file to a non-root process.  Its content, stripped of surrounding
whitespace, is the token: at least ``MIN_TOKEN_CHARS`` visible ASCII characters.
``fakeblock keys generate DIR`` writes one (``DIR/metrics.token``, mode 0600).  The file is
read once, when ``fakeblock up`` starts: a new token takes a restart.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from fakeblock.common.config import SupervisorConfig
from fakeblock.common.errors import UserError
from fakeblock.common.security.access import is_loopback_host

MIN_TOKEN_CHARS = 16
MAX_TOKEN_BYTES = 4096
# Group write, and anything for others: whoever has these could read or replace the token.
FORBIDDEN_MODE_BITS = stat.S_IWGRP | stat.S_IRWXO


def load_token(path: str) -> str:
    """The token in ``path``, or one ``UserError`` line saying what is wrong with the file."""
    file = Path(path).expanduser()
    try:
        info = file.stat()
    except OSError as error:
        raise UserError(f"metrics token file {file}: {error.strerror or error}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"metrics token file {file} is not a regular file")
    if info.st_uid not in (os.getuid(), 0):
        raise UserError(f"metrics token file {file} belongs to another user (uid {info.st_uid}); "
                        f"it must be yours or root's")
    if info.st_mode & FORBIDDEN_MODE_BITS:
        raise UserError(f"metrics token file {file} is open to other users (mode {stat.filemode(info.st_mode)}); "
                        f"run `chmod 600 {file}` (a Kubernetes Secret volume: defaultMode 0400 or 0440)")
    try:
        with file.open("rb") as handle:
            content = handle.read(MAX_TOKEN_BYTES + 1)
    except OSError as error:
        raise UserError(f"metrics token file {file}: {error.strerror or error}") from None
    token = content.strip().decode("ascii", errors="replace")
    if len(content) > MAX_TOKEN_BYTES or not token.isascii() or not token.isprintable() or " " in token:
        raise UserError(f"metrics token file {file} must hold one token of visible ASCII characters "
                        f"(at most {MAX_TOKEN_BYTES} bytes)")
    if len(token) < MIN_TOKEN_CHARS:
        raise UserError(f"metrics token file {file} is empty or too short (at least {MIN_TOKEN_CHARS} characters); "
                        f"`fakeblock keys generate DIR` writes one")
    return token


def check_metrics_settings(config: SupervisorConfig) -> str | None:
    """The token ``/metrics`` asks for (None: no token file), after refusing a metrics server beyond
    loopback without one.  Called before any process starts."""
    if config.metrics_port is None:
        return None
    if config.metrics_token_file is None:
        if not is_loopback_host(config.metrics_host):
            raise UserError(f"refusing to serve metrics on {config.metrics_host} without a token: pass "
                            f"--metrics-token-file PATH (`fakeblock keys generate DIR` writes DIR/metrics.token), "
                            f"or keep the default loopback address")
        return None
    return load_token(config.metrics_token_file)
