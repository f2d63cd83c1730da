"""CurveZMQ security: libzmq checks, key files, and who may listen where.

Secure by default.  With no configuration every stage listens on loopback (or ``ipc://``)
only.  Listening on any other address needs CurveZMQ keys with a client allow-list, or an
explicit ``--insecure`` that logs a warning every time such a socket binds.

Key directory layout (``fakeblock keys generate DIR`` creates it)::

    DIR/
      server.key             public key of the site's server pair
      server.key_secret      its secret key (mode 0600: readable by the owner only)
      client.key             public key of a client pair
      client.key_secret      its secret key (mode 0600)
      authorized_clients/
        client.key           one public key file per client allowed to connect

Every binding stage (capture, queue, display, each host's supervisor) uses the site's
*server* key pair.  Every connecting stage uses a *client* key pair (``client`` unless
configured) and the server's public key.  A server accepts only clients whose public key
file is in ``authorized_clients/``; it reads that folder when it starts, so to revoke a
client delete its file there and restart the servers.  Every host's supervisor listens
too (its control and status links, and its status service), so every host needs the
server pair and the allow-list as well as its own ``<client>.key_secret``: copy the whole
folder to every host.

With keys configured every socket uses CURVE, loopback and ``ipc://`` included, so no
process has to know whether its peer is on the same machine.  The files are czmq/pyzmq
certificates, so ``zmq.auth.load_certificate`` and other ZeroMQ tools read them too.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from fakeblock.common.errors import UserError

LOGGER = logging.getLogger(__name__)
MINIMUM_LIBZMQ_VERSION = (4, 3, 2)
SERVER_KEY_NAME = "server"
DEFAULT_CLIENT_KEY_NAME = "client"
DEFAULT_KEY_NAMES = (SERVER_KEY_NAME, DEFAULT_CLIENT_KEY_NAME)
AUTHORIZED_CLIENTS_FOLDER = "authorized_clients"
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
SECRET_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644
PRIVATE_FOLDER_MODE = 0o700
DENIAL_LOG_EVERY = 100
Z85_KEY_LENGTH = 40
KEY_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
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
# Key files
# ---------------------------------------------------------------------------------------

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
    also copied into ``authorized_clients/``.  Existing keys are kept unless ``force``.
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
    except OSError as error:
        raise UserError(f"cannot write keys in {directory}: {error.strerror or error}") from None
    LOGGER.info("wrote %d key files in %s", len(planned), directory)
    return planned


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


def _read_key_file(path: Path, need_secret: bool) -> tuple[bytes, bytes | None]:
    """(public, secret) from a key file, or one clear ``UserError``."""
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
        return self.config.keys_directory is not None

    def start(self, context: zmq.Context) -> None:
        """Start the ZAP authenticator of ``context``: only allow-listed clients get in.

        A host that only connects may have no allow-list; then nothing starts and
        :meth:`server` refuses to make a server socket.
        """
        if not self.enabled or self._context is not None:
            return
        self._context = context
        check_private(self.config.keys_directory)
        folder = authorized_clients_path(self.config.keys_directory)
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
        if not self.enabled:
            return
        # Without a running ZAP handler libzmq would let in any client that knows the
        # server's public key, so a server socket on an unguarded context is a bug.
        if self._context is None or socket.context is not self._context:
            raise RuntimeError("Security.start(context) must run on this socket's context before server()")
        if self._authenticator is None:
            raise UserError(f"no client allow-list at {authorized_clients_path(self.config.keys_directory)}; "
                            f"a stage that listens needs it (see `fakeblock keys generate DIR`)")
        if self._server_keys is None:
            self._server_keys = load_key_pair(self.config.keys_directory, SERVER_KEY_NAME)
        public_key, secret_key = self._server_keys
        socket.curve_secretkey = secret_key
        socket.curve_publickey = public_key
        socket.curve_server = True

    def client(self, socket: zmq.Socket) -> None:
        """Give ``socket`` this host's client keys and the server's public key (call before connect)."""
        if not self.enabled:
            return
        if self._client_keys is None:
            public_key, secret_key = load_key_pair(self.config.keys_directory, self.config.client_key_name)
            self._client_keys = (public_key, secret_key, load_public_key(self.config.keys_directory, SERVER_KEY_NAME))
        public_key, secret_key, server_key = self._client_keys
        socket.curve_serverkey = server_key
        socket.curve_publickey = public_key
        socket.curve_secretkey = secret_key

    def check_keys(self, server: bool, client: bool) -> None:
        """Load the key files a process will need now, so a missing one fails before any start."""
        if not self.enabled:
            return
        check_private(self.config.keys_directory)
        if server:
            load_key_pair(self.config.keys_directory, SERVER_KEY_NAME)
            if not authorized_clients_path(self.config.keys_directory).is_dir():
                raise UserError(f"no client allow-list at {authorized_clients_path(self.config.keys_directory)}")
        if client:
            load_key_pair(self.config.keys_directory, self.config.client_key_name)
            load_public_key(self.config.keys_directory, SERVER_KEY_NAME)

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


# ---------------------------------------------------------------------------------------
# Process-wide setting (set once in a stage process, before its runtime starts)
# ---------------------------------------------------------------------------------------

_process_security_config = SecurityConfig()


def set_process_security(config: SecurityConfig) -> None:
    """Record this process's security settings (``child_main`` calls it before the stage runs)."""
    global _process_security_config
    _process_security_config = config


def process_security() -> SecurityConfig:
    """This process's security settings; the secure default (no keys, loopback only) if never set."""
    return _process_security_config
