"""CurveZMQ security: key files, the client allow-list end to end, and who may listen where."""

from __future__ import annotations

import contextlib
import logging
import os
import stat

import pytest
import zmq
import zmq.auth

from fakeblock.common.errors import UserError
from fakeblock.common.security import access as security
from fakeblock.common.security import keys
from fakeblock.common.security.access import Security, SecurityConfig, check_bind_allowed, check_libzmq
from fakeblock.common.security.keys import check_private, generate_keys
from tests.harness import terminate_context

RECEIVE_TIMEOUT_MS = 5000
# Long enough for a CURVE handshake on loopback to finish many times over.
NOTHING_ARRIVES_MS = 1000


@pytest.fixture
def keys_directory(tmp_path):
    """A site key folder with the default server and client pairs."""
    directory = tmp_path / "keys"
    generate_keys(directory)
    return directory


@pytest.fixture
def sockets():
    """Contexts, sockets and Security objects made by a test; all closed afterwards."""
    made = {"contexts": [], "sockets": [], "securities": []}
    yield made
    for socket in made["sockets"]:
        socket.close(linger=0)
    for guard in made["securities"]:
        guard.stop()
    for context in made["contexts"]:
        terminate_context(context)  # fails naming any socket left open instead of hanging


def new_context(made) -> zmq.Context:
    context = zmq.Context()
    made["contexts"].append(context)
    return context


def new_socket(made, context: zmq.Context, socket_type: int) -> zmq.Socket:
    socket = context.socket(socket_type)
    socket.setsockopt(zmq.LINGER, 0)
    made["sockets"].append(socket)
    return socket


def curve_server(made, keys_directory) -> tuple[zmq.Socket, str]:
    """A PULL socket that takes only allow-listed clients, bound on a free loopback port."""
    context = new_context(made)
    guard = Security(SecurityConfig(keys_directory=str(keys_directory)))
    made["securities"].append(guard)
    guard.start(context)
    pull = new_socket(made, context, zmq.PULL)
    guard.server(pull)
    pull.bind("tcp://127.0.0.1:*")
    return pull, pull.getsockopt_string(zmq.LAST_ENDPOINT)


def allowed_client(made, keys_directory, endpoint: str) -> zmq.Socket:
    """A PUSH socket with the site's client keys, in its own context (as in another process)."""
    push = new_socket(made, new_context(made), zmq.PUSH)
    Security(SecurityConfig(keys_directory=str(keys_directory))).client(push)
    push.connect(endpoint)
    return push


def receive(socket: zmq.Socket, timeout_ms: int = RECEIVE_TIMEOUT_MS) -> bytes | None:
    """One message, or None when nothing arrived within the timeout."""
    if socket.poll(timeout_ms, zmq.POLLIN) == 0:
        return None
    return socket.recv(zmq.NOBLOCK)


# ---------------------------------------------------------------------------------------
# Key files
# ---------------------------------------------------------------------------------------

def test_generate_keys_writes_owner_only_secrets_and_the_allow_list(tmp_path):
    directory = tmp_path / "keys"
    written = generate_keys(directory)
    names = sorted(path.relative_to(directory).as_posix() for path in written)
    assert names == ["authorized_clients/client.key", "client.key", "client.key_secret",
                     "metrics.token", "server.key", "server.key_secret"]
    for name in ("server", "client"):
        secret_file = directory / f"{name}.key_secret"
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        public_key, secret_key = zmq.auth.load_certificate(secret_file)
        assert zmq.curve_public(secret_key) == public_key
        assert zmq.auth.load_certificate(directory / f"{name}.key") == (public_key, None)
    allowed = zmq.auth.load_certificates(directory / "authorized_clients")
    assert set(allowed) == {zmq.auth.load_certificate(directory / "client.key")[0]}


def test_generate_keys_refuses_to_overwrite_without_force(keys_directory):
    before = (keys_directory / "server.key_secret").read_text()
    with pytest.raises(UserError, match="already exists.*--force"):
        generate_keys(keys_directory)
    assert (keys_directory / "server.key_secret").read_text() == before
    generate_keys(keys_directory, force=True)
    assert (keys_directory / "server.key_secret").read_text() != before
    assert stat.S_IMODE((keys_directory / "server.key_secret").stat().st_mode) == 0o600


def test_generate_keys_adds_a_client_to_the_allow_list(keys_directory):
    generate_keys(keys_directory, names=("laptop",))
    assert sorted(path.name for path in (keys_directory / "authorized_clients").iterdir()) == ["client.key",
                                                                                              "laptop.key"]


@pytest.mark.parametrize("name", ["../escape", "", "a b", "x/y"])
def test_generate_keys_refuses_bad_names(tmp_path, name):
    with pytest.raises(UserError, match="bad key name"):
        generate_keys(tmp_path, names=(name,))


def test_missing_key_files_are_one_clear_line(tmp_path, sockets):
    guard = Security(SecurityConfig(keys_directory=str(tmp_path)))
    sockets["securities"].append(guard)
    with pytest.raises(UserError, match=r"cannot read CurveZMQ key file .*server\.key_secret.*fakeblock keys generate"):
        guard.check_keys(server=True, client=False)
    context = new_context(sockets)
    guard.start(context)  # a host that only connects needs no allow-list...
    with pytest.raises(UserError, match="no client allow-list"):
        guard.server(new_socket(sockets, context, zmq.PULL))  # ...but one that listens does
    with pytest.raises(UserError, match=r"cannot read CurveZMQ key file .*client\.key_secret"):
        guard.client(new_socket(sockets, context, zmq.PUSH))


def test_malformed_and_unreadable_key_files_are_user_errors(keys_directory):
    secret_file = keys_directory / "client.key_secret"
    secret_file.write_text('curve\n    public-key = "short"\n    secret-key = "short"\n')
    guard = Security(SecurityConfig(keys_directory=str(keys_directory)))
    with pytest.raises(UserError, match="malformed key"):
        guard.check_keys(server=False, client=True)
    (keys_directory / "server.key").unlink()
    (keys_directory / "server.key").mkdir()
    with pytest.raises(UserError, match=r"cannot read CurveZMQ key file .*server\.key"):
        keys.load_public_key(keys_directory, "server")


def test_a_secret_readable_by_others_is_warned_about(keys_directory, caplog):
    (keys_directory / "client.key_secret").chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="fakeblock.common.security.access"):
        keys.load_key_pair(keys_directory, "client")
    assert "readable by other users" in caplog.text


# ---------------------------------------------------------------------------------------
# CURVE end to end over loopback
# ---------------------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_an_allowed_client_reaches_the_server(sockets, keys_directory):
    pull, endpoint = curve_server(sockets, keys_directory)
    assert pull.curve_server
    push = allowed_client(sockets, keys_directory, endpoint)
    push.send(b"hello")
    assert receive(pull) == b"hello"


@pytest.mark.timeout(60)
def test_a_client_outside_the_allow_list_gets_nothing_while_the_allowed_one_works(sockets, keys_directory, caplog):
    caplog.set_level(logging.WARNING, logger="fakeblock.common.security.access.auth")
    security.DenialLogger.denials = 0
    pull, endpoint = curve_server(sockets, keys_directory)
    stranger = new_socket(sockets, new_context(sockets), zmq.PUSH)
    # The stranger knows the server's public key but its own key is not allow-listed.
    stranger.curve_serverkey = keys.load_public_key(keys_directory, "server")
    stranger.curve_publickey, stranger.curve_secretkey = zmq.curve_keypair()
    stranger.connect(endpoint)
    send_if_possible(stranger, b"from the stranger")
    assert receive(pull, NOTHING_ARRIVES_MS) is None
    allowed_client(sockets, keys_directory, endpoint).send(b"from the allowed client")
    assert receive(pull) == b"from the allowed client"
    assert receive(pull, NOTHING_ARRIVES_MS) is None
    # The refusal is logged as a warning, naming the refused key.
    refusals = [record.getMessage() for record in caplog.records if "refused a CURVE client" in record.getMessage()]
    assert refusals and "DENIED (CURVE)" in refusals[0] and "client_key=" in refusals[0]


def send_if_possible(socket, message: bytes) -> None:
    """Send without blocking: a PUSH whose handshake was refused has no peer, and would block."""
    with contextlib.suppress(zmq.Again):
        socket.send(message, zmq.NOBLOCK)


@pytest.mark.timeout(60)
def test_a_client_without_curve_gets_nothing(sockets, keys_directory):
    pull, endpoint = curve_server(sockets, keys_directory)
    plain = new_socket(sockets, new_context(sockets), zmq.PUSH)
    plain.connect(endpoint)
    send_if_possible(plain, b"in the clear")
    assert receive(pull, NOTHING_ARRIVES_MS) is None
    allowed_client(sockets, keys_directory, endpoint).send(b"encrypted")
    assert receive(pull) == b"encrypted"


@pytest.mark.timeout(60)
def test_without_keys_security_changes_nothing(sockets):
    context = new_context(sockets)
    guard = Security(SecurityConfig())
    sockets["securities"].append(guard)
    guard.start(context)
    pull, push = new_socket(sockets, context, zmq.PULL), new_socket(sockets, context, zmq.PUSH)
    guard.server(pull)
    guard.client(push)
    assert not guard.enabled and not pull.curve_server and push.mechanism == zmq.NULL
    pull.bind("tcp://127.0.0.1:*")
    push.connect(pull.getsockopt_string(zmq.LAST_ENDPOINT))
    push.send(b"plain")
    assert receive(pull) == b"plain"


@pytest.mark.timeout(60)
def test_a_server_socket_needs_a_started_authenticator(sockets, keys_directory):
    # Without a ZAP handler libzmq would let in any client that knows the server key.
    socket = new_socket(sockets, new_context(sockets), zmq.PULL)
    with pytest.raises(RuntimeError, match="start"):
        Security(SecurityConfig(keys_directory=str(keys_directory))).server(socket)


# ---------------------------------------------------------------------------------------
# Who may listen where
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:5550", "tcp://127.8.9.10:1", "tcp://localhost:5550",
                                      "tcp://[::1]:5550", "tcp://[::ffff:127.0.0.1]:5550", "ipc:///tmp/fakeblock/x",
                                      "inproc://frames", "ws://127.0.0.1:8000/frames"])
def test_local_binds_are_always_allowed(endpoint):
    check_bind_allowed(endpoint, SecurityConfig())


@pytest.mark.parametrize("endpoint", ["tcp://0.0.0.0:5550", "tcp://*:5550", "tcp://10.0.0.5:5550",
                                      "tcp://[::]:5550", "tcp://eth0:5550", "tcp://camera-box:5550",
                                      "ws://0.0.0.0:8000/frames", "pgm://eth0;239.192.1.1:5555"])
def test_other_binds_need_keys_or_insecure(endpoint, caplog):
    with pytest.raises(UserError, match=r"refusing to listen on .* without CurveZMQ keys"):
        check_bind_allowed(endpoint, SecurityConfig())
    check_bind_allowed(endpoint, SecurityConfig(keys_directory="/etc/fakeblock/keys"))
    with caplog.at_level(logging.WARNING, logger="fakeblock.common.security.access"):
        check_bind_allowed(endpoint, SecurityConfig(insecure=True))
    assert f"INSECURE: listening on {endpoint}" in caplog.text


def test_the_refusal_names_the_fix():
    with pytest.raises(UserError) as raised:
        check_bind_allowed("tcp://0.0.0.0:5550", SecurityConfig())
    assert str(raised.value) == ("refusing to listen on tcp://0.0.0.0:5550 without CurveZMQ keys; run "
                                 "`fakeblock keys generate DIR` and pass --keys DIR, or --insecure")


def test_insecure_warns_on_every_bind(caplog):
    with caplog.at_level(logging.WARNING, logger="fakeblock.common.security.access"):
        for _ in range(2):
            check_bind_allowed("tcp://0.0.0.0:5550", SecurityConfig(insecure=True))
    assert sum("INSECURE" in record.getMessage() for record in caplog.records) == 2


# ---------------------------------------------------------------------------------------
# libzmq and process settings
# ---------------------------------------------------------------------------------------

def test_check_libzmq_passes_here():
    check_libzmq()


def test_check_libzmq_refuses_old_or_curveless_builds():
    with pytest.raises(UserError, match=r"libzmq 4\.3\.1 is too old: fakeblock needs 4\.3\.2"):
        check_libzmq((4, 3, 1), True)
    with pytest.raises(UserError, match="without CURVE"):
        check_libzmq((4, 3, 5), False)


def test_a_stage_runtime_without_security_given_is_loopback_only(tmp_path):
    from fakeblock.common.endpoints import ipc_endpoints
    from fakeblock.common.runtime import StageRuntime

    runtime = StageRuntime("queue", 0, ipc_endpoints(tmp_path), handle_signals=False)
    try:
        assert runtime.security.config == SecurityConfig() and not runtime.security.enabled
        with pytest.raises(UserError, match="refusing to listen on tcp://0.0.0.0"):
            runtime.socket(zmq.PULL, 1, bind_to="tcp://0.0.0.0:0")
    finally:
        runtime.close()


@pytest.mark.timeout(60)
def test_control_over_ipc_works_with_curve_too(sockets, keys_directory, tmp_path):
    # With keys every socket uses CURVE, so the local PUB/SUB control link must work with it.
    context = new_context(sockets)
    guard = Security(SecurityConfig(keys_directory=str(keys_directory)))
    sockets["securities"].append(guard)
    guard.start(context)
    publisher = new_socket(sockets, context, zmq.PUB)
    guard.server(publisher)
    publisher.bind(f"ipc://{tmp_path}/control")
    subscriber = new_socket(sockets, new_context(sockets), zmq.SUB)
    Security(SecurityConfig(keys_directory=str(keys_directory))).client(subscriber)
    subscriber.setsockopt(zmq.SUBSCRIBE, b"")
    subscriber.connect(f"ipc://{tmp_path}/control")
    message = None
    for _ in range(50):  # PUB drops messages until the subscription arrives: repeat, as the supervisor does
        publisher.send(b"stop")
        message = receive(subscriber, 100)
        if message is not None:
            break
    assert message == b"stop"


def test_a_key_folder_or_allow_list_others_can_write_is_refused_in_one_line(tmp_path):
    keys = tmp_path / "keys"
    old_umask = os.umask(0)
    try:
        generate_keys(keys)
    finally:
        os.umask(old_umask)
    # Made private whatever the umask.
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert stat.S_IMODE((keys / "authorized_clients").stat().st_mode) == 0o700
    check_private(keys)
    for path in (keys / "authorized_clients", keys, keys / "authorized_clients" / "client.key"):
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode | stat.S_IWOTH)
        with pytest.raises(UserError, match="can be written by other users") as refused:
            check_private(keys)
        assert str(path) in str(refused.value) and "\n" not in str(refused.value)
        path.chmod(mode)
    check_private(keys)


# ---------------------------------------------------------------------------------------
# A stage whose handshakes fail says why
# ---------------------------------------------------------------------------------------

def handshake_warnings(keys_of_the_stage, endpoint: str, tmp_path, caplog) -> list[str]:
    """The warnings of a stage runtime holding ``keys_of_the_stage`` that connects to ``endpoint``."""
    from fakeblock.common.endpoints import ipc_endpoints
    from fakeblock.common.runtime import StageRuntime

    runtime = StageRuntime("detect", 0, ipc_endpoints(tmp_path), SecurityConfig(keys_directory=str(keys_of_the_stage)),
                           handle_signals=False)
    try:
        with caplog.at_level(logging.WARNING, logger="fakeblock.common.security.handshakes"):
            runtime.socket(zmq.PUSH, 10, connect_to=endpoint)
            for _ in range(20):  # two seconds of the stage's polls
                runtime.poll([], 100)
    finally:
        runtime.close()
    return [record.getMessage() for record in caplog.records if record.name.endswith("handshakes")]


@pytest.mark.timeout(60)
def test_a_stage_whose_key_is_not_allowed_says_so(sockets, keys_directory, tmp_path, caplog):
    _pull, endpoint = curve_server(sockets, keys_directory)
    stranger_keys = tmp_path / "stranger-keys"
    generate_keys(stranger_keys)
    # The stranger holds the site's server key, but a client key the site never allowed.
    (stranger_keys / "server.key").write_text((keys_directory / "server.key").read_text())
    warnings = handshake_warnings(stranger_keys, endpoint, tmp_path / "run", caplog)
    assert warnings and f"{endpoint} refused this host's key 'client'" in warnings[0]
    assert len(warnings) < 5  # one line, not one per retry


@pytest.mark.timeout(60)
def test_a_stage_holding_another_sites_server_key_says_so(sockets, keys_directory, tmp_path, caplog):
    _pull, endpoint = curve_server(sockets, keys_directory)
    other_site = tmp_path / "other-site"
    generate_keys(other_site)
    warnings = handshake_warnings(other_site, endpoint, tmp_path / "run", caplog)
    assert warnings and "holds another site's server key" in warnings[0] and endpoint in warnings[0]


@pytest.mark.timeout(60)
def test_an_allowed_stage_logs_no_handshake_problem(sockets, keys_directory, tmp_path, caplog):
    _pull, endpoint = curve_server(sockets, keys_directory)
    assert handshake_warnings(keys_directory, endpoint, tmp_path / "run", caplog) == []
