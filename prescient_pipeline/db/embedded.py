"""The embedded PostgreSQL used when PRESCIENT_DATABASE_URL is not set.

pgserver ships the server binaries; it serialises start-up across processes with its own
inter-process lock and counts the processes holding a handle, stopping the server cleanly when
the last one exits. We choose where the data lives and which database to use, and we make the
server accept only its owner:

- the server listens on no TCP address, only on a Unix socket in a directory only its owner can
  enter (mode 0700): the data directory when the socket path fits there, otherwise a private
  directory of ours under the runtime or temporary directory (pgserver would pick a shared one);
- every connection needs the password kept in `$PRESCIENT_HOME/pgpass` (mode 0600, libpq's
  password-file format), which our URLs name with libpq's `passfile` parameter.

A home made before this (trust authentication, perhaps a socket in a shared directory) is
brought up to this on its next start: the server is restarted if its socket is exposed, the
password is set and pg_hba.conf rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import shlex
import stat
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import URL

from .urls import libpq_url, with_database

log = logging.getLogger(__name__)

APP_DATABASE = "prescient"
SUPERUSER = "postgres"
PASSWORD_FILE = "pgpass"
# Our pg_hba.conf: the password (SCRAM) for everyone, on the socket and, should the server ever be
# told to listen on loopback, on TCP too. Nothing else matches, so nothing else connects.
HBA_CONF = """\
# Written by prescient: every connection needs the password in $PRESCIENT_HOME/pgpass.
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""
# Used only for a moment, while setting the password, on a socket only the owner can reach.
_SETUP_HBA_CONF = "local all all trust\n"
# sockaddr_un.sun_path is 108 bytes on Linux and 104 on macOS; leave room for the terminator.
_MAX_SOCKET_PATH = 103
_SOCKET_NAME = ".s.PGSQL.5432"


def start(home: Path) -> str:
    """Start (or join) the server under `home`; return the app database URL."""
    home.mkdir(parents=True, exist_ok=True)
    with _locked(home / ".embedded.lock"):
        passfile = password_file(home)
        server = _server(home / "pgdata")
        socket_dir = server.get_postmaster_info().socket_dir
        base = server_url(socket_dir, passfile)
        # Secure means: refused without the password, accepted with it.
        if _connects(server_url(socket_dir, None)) or not _can_log_in(base):
            _set_password(server, socket_dir, _read_password(passfile))
    ensure_database(base, APP_DATABASE)
    return with_database(base, APP_DATABASE)


def server_url(socket_dir: Path | None, passfile: Path | None, database: str = "postgres") -> str:
    """The superuser's URL on the server's socket; libpq reads the password from `passfile`."""
    query = {"passfile": str(passfile)} if passfile else {}
    if socket_dir is not None:
        query["host"] = str(socket_dir)
        url = URL.create("postgresql", username=SUPERUSER, database=database, query=query)
    else:  # pgserver on Windows: loopback TCP
        url = URL.create("postgresql", username=SUPERUSER, host="127.0.0.1", database=database, query=query)
    return libpq_url(url.render_as_string(hide_password=False))


# --- the password --------------------------------------------------------------------------------

def password_file(home: Path) -> Path:
    """`home/pgpass` (mode 0600), created with a random password if missing (under the lock)."""
    path = home / PASSWORD_FILE
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=home, prefix=".pgpass.")  # mkstemp: mode 0600
        try:
            with os.fdopen(fd, "w") as f:
                f.write(f"*:*:*:{SUPERUSER}:{secrets.token_urlsafe(32)}\n")
            os.replace(tmp, path)  # whole or absent, never half-written
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)  # libpq ignores a password file others can read
    return path


def _read_password(passfile: Path) -> str:
    for line in passfile.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            return line.rsplit(":", 1)[1]
    raise RuntimeError(f"{passfile} holds no password; delete it to have a new one set")


def _can_log_in(url: str) -> bool:
    import psycopg2

    try:
        psycopg2.connect(url, connect_timeout=10).close()
        return True
    except psycopg2.OperationalError as exc:  # a home from before passwords, or a lost password file
        log.info("embedded PostgreSQL refused the password (%s); setting it", str(exc).strip())
        return False


def _set_password(server, socket_dir: Path | None, password: str) -> None:
    """Set the superuser's password and require it, on a server whose socket is private."""
    import psycopg2
    from pgserver._commands import pg_ctl

    hba = server.pgdata / "pg_hba.conf"
    no_password = server_url(socket_dir, None)
    _write_owned_like(hba, _SETUP_HBA_CONF, server.pgdata)
    pg_ctl(["reload"], pgdata=server.pgdata, user=server.system_user)
    _wait_until(lambda: _connects(no_password), "the server to reload its pg_hba.conf")
    conn = psycopg2.connect(no_password)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET password_encryption = 'scram-sha-256'")
            cur.execute(f"ALTER ROLE {SUPERUSER} PASSWORD %s", (password,))
    finally:
        conn.close()
    _write_owned_like(hba, HBA_CONF, server.pgdata)
    pg_ctl(["reload"], pgdata=server.pgdata, user=server.system_user)
    _wait_until(lambda: not _connects(no_password), "the server to require the password")
    log.info("embedded PostgreSQL now requires the password in its password file")


def _connects(url: str) -> bool:
    import psycopg2

    try:
        psycopg2.connect(url, connect_timeout=5).close()
        return True
    except psycopg2.OperationalError:
        return False


def _wait_until(condition, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _write_owned_like(path: Path, content: str, like: Path) -> None:
    """Replace `path` atomically with `content`, mode 0600, owned like `like` (the server's user)."""
    owner = like.stat()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
        if os.geteuid() == 0:
            os.chown(tmp, owner.st_uid, owner.st_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# --- the server and its socket -------------------------------------------------------------------

def _server(pgdata: Path):
    """pgserver's handle on the server of `pgdata`, started with its socket in a private directory."""
    import pgserver
    from pgserver._commands import pg_ctl
    from pgserver.utils import PostmasterInfo

    pgdata = pgdata.expanduser().resolve()
    pgdata.mkdir(exist_ok=True)
    if pgdata in pgserver.PostgresServer._instances:
        return pgserver.PostgresServer._instances[pgdata]

    class OwnerOnlyServer(pgserver.PostgresServer):
        def ensure_postgres_running(self) -> None:
            # Called by pgserver under its inter-process lock, after initdb.
            info = PostmasterInfo.read_from_pgdata(self.pgdata)
            if info is not None and info.is_running() and info.socket_dir is not None \
                    and not is_private_dir(info.socket_dir, _server_uid(self.system_user)):
                log.warning("restarting the embedded PostgreSQL: its socket was in a shared directory (%s)",
                            info.socket_dir)
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.system_user, timeout=30)
                info = None
            if os.name == "posix" and (info is None or not info.is_running()):
                socket_dir = private_socket_dir(self.pgdata, self.system_user)
                pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {shlex.quote(str(socket_dir))}", "-l", str(self.log), "start"],
                       pgdata=self.pgdata, user=self.system_user, timeout=30)
            super().ensure_postgres_running()  # finds it running and records its postmaster info

    return OwnerOnlyServer(pgdata, cleanup_mode="stop")


def _server_uid(system_user: str | None) -> int:
    """The server runs as us, or (when we are root) as pgserver's own system user."""
    import pwd

    return pwd.getpwnam(system_user).pw_uid if system_user else os.geteuid()


def is_private_dir(path: Path, owner_uid: int) -> bool:
    """A real directory (not a link), owned by `owner_uid`, that no one else may enter or write."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == owner_uid and not stat.S_IMODE(st.st_mode) & 0o077


def private_socket_dir(pgdata: Path, system_user: str | None) -> Path:
    """Where the server's socket goes: the data directory (mode 0700) when the path fits in a
    socket address, otherwise `prescient-<hash of pgdata>` (mode 0700) in the user's runtime
    directory or the temporary directory, created here and checked to be ours."""
    uid = _server_uid(system_user)
    if len(str(pgdata / _SOCKET_NAME).encode()) <= _MAX_SOCKET_PATH and is_private_dir(pgdata, uid):
        return pgdata
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and system_user is None and is_private_dir(Path(runtime), uid) \
        else Path(tempfile.gettempdir())
    path = base / f"prescient-{hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    st = os.lstat(path)
    ours = stat.S_ISDIR(st.st_mode) and st.st_uid in (os.geteuid(), uid)
    if not ours:  # someone else made that name: take a fresh, unpredictable one
        path = Path(tempfile.mkdtemp(prefix="prescient-", dir=base))
    path.chmod(0o700)
    if os.geteuid() != uid:
        os.chown(path, uid, -1)
    if len(str(path / _SOCKET_NAME).encode()) > _MAX_SOCKET_PATH:
        raise RuntimeError(f"no private directory with a short enough path for the database socket (tried {path})")
    return path


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock across processes for the password and pg_hba.conf set-up."""
    import fcntl

    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --- databases -----------------------------------------------------------------------------------

def ensure_database(any_db_url: str, name: str) -> None:
    """CREATE DATABASE `name` on the server of `any_db_url` unless it exists (race-safe)."""
    import psycopg2
    from psycopg2 import errors, sql

    conn = psycopg2.connect(with_database(any_db_url, "postgres"))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return
            try:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                log.info("created database %s", name)
            except (errors.DuplicateDatabase, errors.UniqueViolation):
                pass  # another process created it first
    finally:
        conn.close()


def drop_database(any_db_url: str, name: str) -> None:
    """DROP DATABASE `name` on the server of `any_db_url`, closing its sessions (test/benchmark scratch)."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(with_database(any_db_url, "postgres"))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()
