"""A fake PostgreSQL service for the container-job tests: tells each client what it was started with.

Waits FAKE_PG_START_DELAY seconds (default 0), listens on 0.0.0.0:5432, prints ``fake-postgres ready``,
then answers every connection with one line and closes it::

    fake-postgres db=<POSTGRES_DB> user=<POSTGRES_USER> password_set=<yes|no> secret_seen=<yes|no>

``secret_seen`` tells whether a variable named SECRET_TOKEN reached the service's environment.
Only the modules of Debian's python3-minimal are available (no socketserver).
"""

import os
import signal
import socket
import sys
import time


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def greeting() -> bytes:
    """The line sent to each client, from this process's environment (PostgreSQL's defaults)."""
    user = os.environ.get("POSTGRES_USER") or "postgres"
    db = os.environ.get("POSTGRES_DB") or user
    password_set = _yes_no(bool(os.environ.get("POSTGRES_PASSWORD")))
    secret_seen = _yes_no("SECRET_TOKEN" in os.environ)
    return f"fake-postgres db={db} user={user} password_set={password_set} secret_seen={secret_seen}\n".encode()


def main() -> None:
    """Serve until SIGTERM/SIGINT (PID 1 in a container ignores SIGTERM without a handler)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    time.sleep(float(os.environ.get("FAKE_PG_START_DELAY") or 0))
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 5432))
    server.listen(16)
    print("fake-postgres ready", flush=True)
    line = greeting()
    while True:
        conn, _ = server.accept()
        with conn:
            try:
                conn.sendall(line)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass


if __name__ == "__main__":
    main()
