"""The embedded PostgreSQL: started once under concurrent demand, stopped with its last user, and
reachable only by its owner."""

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

SCRIPT = """
import sys
from pathlib import Path
from prescient_pipeline.db import embedded
import psycopg2
url = embedded.start(Path(sys.argv[1]))
with psycopg2.connect(url) as conn, conn.cursor() as cur:
    cur.execute("SELECT pg_postmaster_start_time(), current_database()")
    started, db = cur.fetchone()
print(url, started.isoformat(), db, flush=True)
sys.stdin.read()  # hold the server until the test lets go
"""


def test_concurrent_starts_share_one_server_which_stops_after_the_last(tmp_path):
    home = tmp_path / "home"
    procs = [
        subprocess.Popen([sys.executable, "-c", SCRIPT, str(home)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    lines = [p.stdout.readline().split() for p in procs]
    assert all(len(line) == 3 for line in lines), [p.stderr.read() for p in procs if p.poll() is not None]
    urls, start_times, dbs = zip(*lines)
    assert len(set(urls)) == 1 and len(set(start_times)) == 1, "one server for every process"
    assert set(dbs) == {"prescient"}
    pid_file = home / "pgdata" / "postmaster.pid"
    assert pid_file.exists()

    for p in procs[:-1]:
        p.communicate("")
    with psycopg2.connect(urls[0]) as conn:
        assert conn.closed == 0, "still running while one user remains"
    conn.close()
    procs[-1].communicate("")
    deadline = time.time() + 15
    while pid_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert not pid_file.exists(), "stopped cleanly once the last user exited"


# --- only its owner connects ----------------------------------------------------------------------

LEGACY = """
import sys
from pathlib import Path
import pgserver
# How a home was started before: pgserver's defaults (trust authentication, its socket directory).
server = pgserver.get_server(Path(sys.argv[1]), cleanup_mode=None)
print(server.get_uri(), flush=True)
"""


@pytest.fixture
def long_home():
    # Long enough that the socket cannot live in the data directory (sun_path is ~104-108 bytes).
    # Not under pytest's own temporary directory, which pytest keeps at mode 0700: run as root,
    # pgserver runs the server as another system user, who must be able to reach the data.
    base = Path(tempfile.mkdtemp(prefix="prescient-test-"))
    base.chmod(0o755)
    home = base / ("h" * 100) / "home"
    assert len(str(home / "pgdata" / ".s.PGSQL.5432")) > 108
    home.mkdir(parents=True)
    yield home
    stop_if_running(home / "pgdata")
    shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def holding(home):
    """A process holding the embedded server of `home` (our start()), yielding its URL."""
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(home)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    socket_dir = None
    try:
        line = proc.stdout.readline().split()
        assert len(line) == 3, proc.stderr.read() if proc.poll() is not None else line
        socket_dir = Path(make_url(line[0]).query["host"])
        yield line[0]
    finally:
        proc.communicate("")
        stop_if_running(home / "pgdata")
        if socket_dir is not None and socket_dir.name.startswith("prescient-"):
            with contextlib.suppress(OSError):
                socket_dir.rmdir()  # empty once the server stopped


def stop_if_running(pgdata):
    if (pgdata / "postmaster.pid").exists():
        from pgserver._commands import pg_ctl
        with contextlib.suppress(Exception):
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user="pgserver" if os.geteuid() == 0 else None)


def assert_owner_only(home, url):
    host = Path(make_url(url).query["host"])
    mode = stat.S_IMODE(os.stat(host).st_mode)
    assert mode == 0o700, f"socket directory {host} has mode {oct(mode)}"
    assert stat.S_IMODE((home / "pgpass").stat().st_mode) == 0o600
    with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
        psycopg2.connect(host=str(host), user="postgres", dbname="prescient", connect_timeout=5)
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(host=str(host), user="postgres", dbname="prescient", password="guess", connect_timeout=5)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cur.fetchone() == (True,)
    conn.close()


@pytest.mark.slow
def test_long_home_gets_a_private_socket_and_requires_the_password(long_home):
    home = long_home
    with holding(home) as url:
        assert_owner_only(home, url)
        assert "password" not in url.split("?")[0], "the password stays in its file, out of the URL"


@pytest.mark.slow
def test_a_home_made_with_trust_authentication_is_secured_on_next_start(long_home):
    home = long_home
    pgdata = home / "pgdata"
    try:
        made = subprocess.run([sys.executable, "-c", LEGACY, str(pgdata)], capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        legacy = made.stdout.split()[0]
        host = Path(make_url(legacy).query["host"])
        # The exposure being fixed: a socket in a directory others may enter, and no password asked.
        assert stat.S_IMODE(os.stat(host).st_mode) & 0o077
        conn = psycopg2.connect(legacy)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE prescient")
        conn.close()
        with psycopg2.connect(legacy.replace("/postgres?", "/prescient?")) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        conn.close()
        with holding(home) as url:
            assert_owner_only(home, url)
            assert make_url(url).query["host"] != str(host), "restarted on a private socket"
            with psycopg2.connect(url) as conn, conn.cursor() as cur:
                cur.execute("SELECT v FROM kept")
                assert cur.fetchall() == [(42,)], "the data survives the migration"
            conn.close()
        with holding(home) as url:  # and the next start finds it secure as it is
            assert_owner_only(home, url)
    finally:
        stop_if_running(pgdata)
