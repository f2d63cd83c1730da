"""CurveZMQ security: libzmq checks, key files, and who may listen where.

Secure by default.  With no configuration every stage listens on ``ipc://`` sockets in a
folder only its user may enter (:func:`make_private_folder`).  Listening on any address
beyond loopback needs CurveZMQ keys with a client allow-list, or an explicit
``--insecure`` that logs a warning every time such a socket binds.

Key files and their layout: :mod:`fakeblock.common.security.keys`.

With keys configured every socket uses CURVE, loopback and ``ipc://`` included, so no
process has to know whether its peer is on the same machine.  The files are czmq/pyzmq
certificates, so ``zmq.auth.load_certificate`` and other ZeroMQ tools read them too.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from fakeblock.common.errors import UserError
from fakeblock.common.security.keys import (
    DEFAULT_CLIENT_KEY_NAME,
    PRIVATE_FOLDER_MODE,
    PUBLIC_SUFFIX,
    SERVER_KEY_NAME,
    authorized_clients_path,
    check_private,
    load_key_pair,
    load_public_key,
)

LOGGER = logging.getLogger(__name__)
MINIMUM_LIBZMQ_VERSION = (4, 3, 2)
DENIAL_LOG_EVERY = 100
ALWAYS_LOCAL_TRANSPORTS = ("ipc", "inproc")
HOST_PORT_TRANSPORTS = ("tcp", "ws", "wss")


def check_libzmq(version_info: tuple[int, ...] | None = None, curve_available: bool | None = None) -> None:
    """Raise ``UserError`` unless libzmq is at least 4.3.2 and supports CURVE.

    The arguments exist for tests; by default the running libzmq is asked.
    """
    version_info = tuple(zmq.zmq_version_info()) if version_info is None else tuple(version_info)
    curve_available = zmq.has("curve") if curve_available is None else curve_available
    if version_info < MINIMUM_LIBZMQ_VERSION:
        found = ".".join(str(part) for part in version_info)
        needed = ".".join(str(part) for part in MINIMUM_LIBZMQ_VERSION)
        raise UserError(f"libzmq {found} is too old: fakeblock needs {needed} or newer "
                        f"(pip install --upgrade pyzmq brings a recent one)")
    if not curve_available:
        raise UserError("this libzmq was built without CURVE security; install the pyzmq wheel "
                        "(it bundles libzmq with CURVE) or rebuild libzmq with libsodium")


# ---------------------------------------------------------------------------------------
# Per-process security
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SecurityConfig:
    """Where the keys are (None: no CURVE) and whether non-loopback binds without keys are allowed."""

    keys_directory: str | None = None
    insecure: bool = False
    client_key_name: str = DEFAULT_CLIENT_KEY_NAME


class DenialLogger(logging.LoggerAdapter):
    """The authenticator's log, with every refused client raised to a warning.

    pyzmq logs its ZAP decisions at debug level; a client refused for an unknown key is
    worth a line by default (every ``DENIAL_LOG_EVERY``-th after the first, so a flood of
    attempts cannot flood the log).
    """

    denials = 0

    def debug(self, msg, *args, **kwargs) -> None:  # noqa: D102 - LoggerAdapter's signature
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):  # never let logging break the authenticator's thread
            text = str(msg)
        if text.startswith("DENIED"):
            DenialLogger.denials += 1
            if DenialLogger.denials % DENIAL_LOG_EVERY == 1:
                self.logger.warning("refused a CURVE client (%d so far): %s", DenialLogger.denials, text)
            return
        super().debug(msg, *args, **kwargs)


class Security:
    """CURVE for one process's context: an allow-list authenticator and per-socket keys.

    With no keys configured every method is a no-op, so stages call them unconditionally.
    """

    def __init__(self, config: SecurityConfig | None = None):
        self.config = config or SecurityConfig()
        self._context: zmq.Context | None = None
        self._authenticator: ThreadAuthenticator | None = None
        self._server_keys: tuple[bytes, bytes] | None = None
        self._client_keys: tuple[bytes, bytes, bytes] | None = None

    @property
    def enabled(self) -> bool:
        """True when keys are configured (every socket then uses CURVE)."""
        # The methods below test config.keys_directory itself rather than this property, so
        # that the type checker knows the folder is set past that test.
        return self.config.keys_directory is not None

    def start(self, context: zmq.Context) -> None:
        """Start the ZAP authenticator of ``context``: only allow-listed clients get in.

        A host that only connects may have no allow-list; then nothing starts and
        :meth:`server` refuses to make a server socket.
        """
        keys_directory = self.config.keys_directory
        if keys_directory is None or self._context is not None:  # not enabled, or started already
            return
        self._context = context
        check_private(keys_directory)
        folder = authorized_clients_path(keys_directory)
        if not folder.is_dir():
            LOGGER.debug("no allow-list at %s: this process can connect but not listen", folder)
            return
        if not any(folder.glob(f"*{PUBLIC_SUFFIX}")):
            LOGGER.warning("%s is empty: no client will be allowed to connect", folder)
        authenticator = ThreadAuthenticator(context, log=DenialLogger(logging.getLogger(f"{__name__}.auth"), {}))
        authenticator.start()
        authenticator.configure_curve(domain="*", location=str(folder))
        self._authenticator = authenticator

    def server(self, socket: zmq.Socket) -> None:
        """Make ``socket`` a CURVE server with the site's server keys (call before bind)."""
        keys_directory = self.config.keys_directory
        if keys_directory is None:  # not enabled
            return
        # Without a running ZAP handler libzmq would let in any client that knows the
        # server's public key, so a server socket on an unguarded context is a bug.
        if self._context is None or socket.context is not self._context:
            raise RuntimeError("Security.start(context) must run on this socket's context before server()")
        if self._authenticator is None:
            raise UserError(f"no client allow-list at {authorized_clients_path(keys_directory)}; "
                            f"a stage that listens needs it (see `fakeblock keys generate DIR`)")
        if self._server_keys is None:
            self._server_keys = load_key_pair(keys_directory, SERVER_KEY_NAME)
        public_key, secret_key = self._server_keys
        socket.curve_secretkey = secret_key
        socket.curve_publickey = public_key
        socket.curve_server = True

    def client(self, socket: zmq.Socket) -> None:
        """Give ``socket`` this host's client keys and the server's public key (call before connect)."""
        keys_directory = self.config.keys_directory
        if keys_directory is None:  # not enabled
            return
        if self._client_keys is None:
            public_key, secret_key = load_key_pair(keys_directory, self.config.client_key_name)
            self._client_keys = (public_key, secret_key, load_public_key(keys_directory, SERVER_KEY_NAME))
        public_key, secret_key, server_key = self._client_keys
        socket.curve_serverkey = server_key
        socket.curve_publickey = public_key
        socket.curve_secretkey = secret_key

    def check_keys(self, server: bool, client: bool) -> None:
        """Load the key files a process will need now, so a missing one fails before any start."""
        keys_directory = self.config.keys_directory
        if keys_directory is None:  # not enabled
            return
        check_private(keys_directory)
        if server:
            load_key_pair(keys_directory, SERVER_KEY_NAME)
            if not authorized_clients_path(keys_directory).is_dir():
                raise UserError(f"no client allow-list at {authorized_clients_path(keys_directory)}")
        if client:
            load_key_pair(keys_directory, self.config.client_key_name)
            load_public_key(keys_directory, SERVER_KEY_NAME)

    def stop(self) -> None:
        """Stop the authenticator (before the context terminates: its thread owns a socket)."""
        if self._authenticator is not None:
            self._authenticator.stop()
        self._authenticator, self._context = None, None


# ---------------------------------------------------------------------------------------
# Who may listen where
# ---------------------------------------------------------------------------------------

def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (names other than localhost count as remote)."""
    host = host.strip("[]").split("%", 1)[0]
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def is_local_endpoint(endpoint: str) -> bool:
    """True when only this machine can reach ``endpoint`` (ipc, inproc or a loopback address)."""
    transport, separator, address = endpoint.partition("://")
    if not separator:
        return False
    if transport in ALWAYS_LOCAL_TRANSPORTS:
        return True
    if transport not in HOST_PORT_TRANSPORTS:
        return False
    host = address.split("/", 1)[0].rpartition(":")[0]
    return bool(host) and is_loopback_host(host)


def check_bind_allowed(endpoint: str, security_config: SecurityConfig) -> None:
    """Raise ``UserError`` for a non-local bind without keys, unless ``insecure`` (then warn)."""
    if is_local_endpoint(endpoint) or security_config.keys_directory is not None:
        return
    if security_config.insecure:
        LOGGER.warning("INSECURE: listening on %s without encryption or authentication; anyone who can "
                       "reach it can read and inject messages", endpoint)
        return
    raise UserError(f"refusing to listen on {endpoint} without CurveZMQ keys; run `fakeblock keys generate DIR` "
                    f"and pass --keys DIR, or --insecure")


def make_private_folder(folder: str | Path) -> Path:
    """``folder``, made ``0700`` when missing; refused in one line unless it is this user's own
    folder (not a link) that no other user may enter.

    Connecting to a Unix socket needs search permission on its folder, so the sockets in
    such a folder are this user's alone, whatever modes the umask gives the socket files.
    """
    folder = Path(folder)
    try:
        folder.mkdir(mode=PRIVATE_FOLDER_MODE, exist_ok=True)
        info = folder.lstat()
    except OSError as error:
        raise UserError(f"cannot make the private socket folder {folder}: {error.strerror or error}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise UserError(f"{folder} is not a folder (a link?); remove it and start again")
    if info.st_uid != os.getuid():
        raise UserError(f"{folder} belongs to another user (uid {info.st_uid}); its sockets must be your own: "
                        f"remove it, or set XDG_RUNTIME_DIR to a folder of yours")
    if info.st_mode & 0o077:
        raise UserError(f"{folder} is open to other users (mode {stat.filemode(info.st_mode)}); "
                        f"run `chmod 700 {folder}`")
    return folder
