"""CurveZMQ key files: where they are, how they are written, read and checked.

Key directory layout (``fakeblock keys generate DIR`` creates it)::

    DIR/
      server.key             public key of the site's server pair
      server.key_secret      its secret key (mode 0600: readable by the owner only)
      client.key             public key of a client pair
      client.key_secret      its secret key (mode 0600)
      authorized_clients/
        client.key           one public key file per client allowed to connect
      metrics.token          a random bearer token for ``--metrics-token-file`` (mode 0600)

Every binding stage (capture, queue, display, each host's supervisor) uses the site's
*server* key pair.  Every connecting stage uses a *client* key pair (``client`` unless
configured) and the server's public key.  A server accepts only clients whose public key
file is in ``authorized_clients/``; it reads that folder when it starts, so to revoke a
client delete its file there and restart the servers.  Every host's supervisor listens
too (its control and status links, and its status service), so every host needs the
server pair and the allow-list as well as its own ``<client>.key_secret``: copy the whole
folder to every host.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
import time
from pathlib import Path
from typing import Literal, overload

import zmq
import zmq.auth

from fakeblock.common.errors import UserError

SERVER_KEY_NAME = "server"
DEFAULT_CLIENT_KEY_NAME = "client"
DEFAULT_KEY_NAMES = (SERVER_KEY_NAME, DEFAULT_CLIENT_KEY_NAME)
AUTHORIZED_CLIENTS_FOLDER = "authorized_clients"
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
SECRET_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644
PRIVATE_FOLDER_MODE = 0o700
Z85_KEY_LENGTH = 40
METRICS_TOKEN_NAME = "metrics.token"
METRICS_TOKEN_BYTES = 32  # 43 URL-safe characters
LOGGER = logging.getLogger(__name__)
KEY_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")



def public_key_path(directory: str | Path, name: str) -> Path:
    """``DIR/<name>.key``."""
    return Path(directory).expanduser() / f"{name}{PUBLIC_SUFFIX}"


def secret_key_path(directory: str | Path, name: str) -> Path:
    """``DIR/<name>.key_secret``."""
    return Path(directory).expanduser() / f"{name}{SECRET_SUFFIX}"


def authorized_clients_path(directory: str | Path) -> Path:
    """``DIR/authorized_clients``: the allow-list of client public keys."""
    return Path(directory).expanduser() / AUTHORIZED_CLIENTS_FOLDER


def _key_file_text(name: str, public_key: bytes, secret_key: bytes | None) -> str:
    """A czmq-style certificate (the format ``zmq.auth.load_certificate`` reads)."""
    kind = "secret" if secret_key is not None else "public"
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    lines = [f"#   fakeblock CurveZMQ {kind} key {name!r}, created {created}"]
    if secret_key is not None:
        lines.append("#   Keep this file private: whoever holds it can act as this key's owner.")
    lines += ["", "metadata", f'    name = "{name}"', "curve", f'    public-key = "{public_key.decode("ascii")}"']
    if secret_key is not None:
        lines.append(f'    secret-key = "{secret_key.decode("ascii")}"')
    return "\n".join(lines) + "\n"


def _write_new_file(path: Path, text: str, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start, so a secret is never readable by others."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(text)


def _planned_files(directory: Path, names: tuple[str, ...]) -> list[Path]:
    files = []
    for name in names:
        files += [public_key_path(directory, name), secret_key_path(directory, name)]
        if name != SERVER_KEY_NAME:
            files.append(public_key_path(authorized_clients_path(directory), name))
    return files


def _checked_names(names) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(names))
    if not names:
        raise UserError("no key names given")
    for name in names:
        if not KEY_NAME_PATTERN.match(name):
            raise UserError(f"bad key name {name!r}: use letters, digits, '.', '_' and '-' only")
    return names


def generate_keys(directory: str | Path, names=DEFAULT_KEY_NAMES, force: bool = False) -> list[Path]:
    """Create a CurveZMQ key pair per name in ``directory``; return the files written.

    ``server`` is the site's server pair; every other name is a client whose public key is
    also copied into ``authorized_clients/``; ``metrics.token`` is written when missing.
    Existing keys are kept unless ``force``.
    """
    directory, names = Path(directory).expanduser(), _checked_names(names)
    planned = _planned_files(directory, names)
    existing = [path for path in planned if path.exists()]
    if existing and not force:
        raise UserError(f"{existing[0]} already exists; keep the existing keys or pass --force to replace them")
    try:
        authorized_clients_path(directory).mkdir(parents=True, exist_ok=True)
        # Private whatever the umask: others may neither read secrets nor add clients.
        for folder in (directory, authorized_clients_path(directory)):
            folder.chmod(PRIVATE_FOLDER_MODE)
        for name in names:
            public_key, secret_key = zmq.curve_keypair()
            _write_new_file(public_key_path(directory, name), _key_file_text(name, public_key, None),
                            PUBLIC_FILE_MODE)
            _write_new_file(secret_key_path(directory, name), _key_file_text(name, public_key, secret_key),
                            SECRET_FILE_MODE)
            if name != SERVER_KEY_NAME:
                _write_new_file(public_key_path(authorized_clients_path(directory), name),
                                _key_file_text(name, public_key, None), PUBLIC_FILE_MODE)
        planned += write_metrics_token(directory, force)
    except OSError as error:
        raise UserError(f"cannot write keys in {directory}: {error.strerror or error}") from None
    LOGGER.info("wrote %d key files in %s", len(planned), directory)
    return planned


def write_metrics_token(directory: Path, force: bool = False) -> list[Path]:
    """``DIR/metrics.token``: a random bearer token for the metrics server, readable by its owner only.

    An existing token is kept unless ``force`` (adding a client key to a folder must not
    change what Prometheus sends); returns the file when written.
    """
    path = directory / METRICS_TOKEN_NAME
    if path.exists() and not force:
        return []
    _write_new_file(path, secrets.token_urlsafe(METRICS_TOKEN_BYTES) + "\n", SECRET_FILE_MODE)
    return [path]


def check_private(directory: str | Path) -> None:
    """Refuse, in one line, a key folder or allow-list that another user could change.

    As ssh does with ``~/.ssh``: the key folder, ``authorized_clients/`` and every file in
    them must belong to this user (or root) and be writable by nobody else, or anyone who
    can write there could add their own client key or swap the server's.
    """
    directory = Path(directory).expanduser()
    allow_list = authorized_clients_path(directory)
    paths = [directory, *directory.glob("*"), *([allow_list, *allow_list.glob("*")] if allow_list.is_dir() else [])]
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            continue  # a missing file is reported, clearly, where it is needed
        if info.st_uid not in (os.getuid(), 0):
            raise UserError(f"{path} belongs to another user (uid {info.st_uid}); keys must be your own")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise UserError(f"{path} can be written by other users (mode {stat.filemode(info.st_mode)}); "
                            f"run `chmod go-w {path}`")


@overload
def _read_key_file(path: Path, need_secret: Literal[True]) -> tuple[bytes, bytes]: ...


@overload
def _read_key_file(path: Path, need_secret: Literal[False]) -> tuple[bytes, bytes | None]: ...


def _read_key_file(path: Path, need_secret: bool) -> tuple[bytes, bytes | None]:
    """(public, secret) from a key file, or one clear ``UserError``; with ``need_secret`` the
    secret is never None (the overloads tell the type checker so)."""
    hint = "create keys with `fakeblock keys generate DIR`"
    try:
        public_key, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise UserError(f"cannot read CurveZMQ key file {path}: {reason}; {hint}") from None
    if need_secret and secret_key is None:
        raise UserError(f"{path} holds no secret key; {hint}")
    for key in (public_key, secret_key):
        if key is not None and len(key) != Z85_KEY_LENGTH:
            raise UserError(f"{path} holds a malformed key (expected {Z85_KEY_LENGTH} Z85 characters); {hint}")
    if secret_key is not None and _public_of(secret_key) != public_key:
        raise UserError(f"{path}: its public and secret keys do not belong together; {hint}")
    return public_key, secret_key


def _public_of(secret_key: bytes) -> bytes | None:
    """The public key of ``secret_key``, or None when it is not valid Z85."""
    try:
        return zmq.curve_public(secret_key)
    except (zmq.ZMQError, ValueError):
        return None


def load_key_pair(directory: str | Path, name: str) -> tuple[bytes, bytes]:
    """(public, secret) of ``DIR/<name>.key_secret``; warns when others may read the secret."""
    path = secret_key_path(directory, name)
    public_key, secret_key = _read_key_file(path, need_secret=True)
    if path.stat().st_mode & 0o077:
        LOGGER.warning("%s is readable by other users; run: chmod 600 %s", path, path)
    return public_key, secret_key


def load_public_key(directory: str | Path, name: str) -> bytes:
    """The public key in ``DIR/<name>.key``."""
    return _read_key_file(public_key_path(directory, name), need_secret=False)[0]
