"""The embedded PostgreSQL: started once under concurrent demand, stopped with its last user."""

import subprocess
import sys
import time

import psycopg2

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
