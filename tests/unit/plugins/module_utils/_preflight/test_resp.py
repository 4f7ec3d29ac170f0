# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Redis protocol client of the preflight: encoding, replies, and verdicts against a
scripted loopback server."""

from __future__ import annotations

import io
import socket
import threading

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._preflight import resp
from ansible_collections.prodready.deploy.plugins.module_utils._preflight.resp import (
    Reader,
    RedisTarget,
    RespError,
)

CANARY = "Canary-r-3c5e7a9b1d2f4a6c8e0b2d4f6a8c0e1f"


class FakeSock:
    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)

    def recv(self, size: int) -> bytes:
        return self.stream.read(min(size, 3))  # short reads on purpose


def test_encode():
    assert resp.encode("AUTH", "pw") == b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"


def test_reader_parses_every_reply_type():
    reader = Reader(FakeSock(b"+PONG\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n+a\r\n:1\r\n"
                             b"-WRONGPASS invalid username-password pair\r\n"))
    assert [reader.reply() for _reply in range(5)] == ["PONG", 42, "hello", None, ["a", 1]]
    with pytest.raises(RespError, match="WRONGPASS"):
        reader.reply()
    with pytest.raises(ConnectionError, match="closed"):
        reader.reply()


@pytest.mark.parametrize(("env", "expected"), [
    ({"REDIS_HOST": "r", "REDIS_PORT": "6380", "REDIS_PASSWORD": CANARY, "REDIS_DB": "2"},
     RedisTarget("r", 6380, None, CANARY, 2, False, "REDIS_HOST")),
    ({"REDIS_URL": f"rediss://:{CANARY}@r:6390/3"},
     RedisTarget("r", 6390, None, CANARY, 3, True, "REDIS_URL")),
    ({"REDIS_URL": f"redis://bob:{CANARY}@r"},
     RedisTarget("r", 6379, "bob", CANARY, 0, False, "REDIS_URL")),
    ({"REDIS_HOST": "r", "REDIS_TLS": "true"}, RedisTarget("r", tls=True)),
    ({}, None),
])
def test_target_from_env(env, expected):
    assert resp.target_from_env(env) == expected


def test_target_from_env_refuses_bad_numbers_naming_the_variable():
    with pytest.raises(ValueError, match="REDIS_PORT is not a number"):
        resp.target_from_env({"REDIS_HOST": "r", "REDIS_PORT": "x"})


def test_conversation_never_records_the_password():
    steps = resp.conversation(RedisTarget("r", password=CANARY, db=1, username="u"))
    assert [s[0] for s in steps] == ["AUTH u ********", "SELECT 1", "PING"]
    assert steps[0][1] == ("AUTH", "u", CANARY)


def serve(replies: list[bytes]):
    """A loopback server that answers each command with the next scripted reply."""
    listener = socket.create_server(("127.0.0.1", 0))

    def run():
        conn, _addr = listener.accept()
        with conn:
            for reply in replies:
                if not conn.recv(4096):
                    return
                conn.sendall(reply)

    threading.Thread(target=run, daemon=True).start()
    return listener


@pytest.mark.parametrize(("password", "replies", "status", "text"), [
    (CANARY, [b"+OK\r\n", b"+PONG\r\n"], "pass", "answers PING with the password in"
     " REDIS_PASSWORD"),
    (CANARY, [b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"], "fail",
     "refused the password in REDIS_PASSWORD (WRONGPASS)"),
    (None, [b"-NOAUTH Authentication required.\r\n"], "fail",
     "requires a password, and none is set in REDIS_PASSWORD (NOAUTH)"),
    (None, [b"+PONG\r\n"], "warn", "answers PING without a password"),
    (CANARY, [b"-ERR AUTH <password> called without any password configured for the default"
              b" user.\r\n"], "warn", "has no password"),
    (CANARY, [b"+OK\r\n", b"+HELLO\r\n"], "fail", "something other than PONG"),
])
def test_check_redis_verdicts(password, replies, status, text):
    listener = serve(replies)
    try:
        target = RedisTarget("127.0.0.1", listener.getsockname()[1], password=password)
        result = resp.check_redis(target, timeout=5)
    finally:
        listener.close()
    assert result.status == status
    assert text in result.message
    assert CANARY not in str(result.as_dict())


def test_check_redis_unreachable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = resp.check_redis(RedisTarget("127.0.0.1", port, password=CANARY), timeout=2)
    assert result.status == "fail"
    assert result.message.startswith(f"cannot connect to Redis at redis://127.0.0.1:{port}/0")
