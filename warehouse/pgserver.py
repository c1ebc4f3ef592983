"""A throwaway local PostgreSQL server for tests, benchmarks and demos.

Starts ``postgres`` from the PostgreSQL binaries (``/usr/lib/postgresql/<ver>/bin`` or
``PG_BIN``) in a temporary data directory on a free port, with settings tuned for
disposable data (no fsync). As root it runs the server as the ``postgres`` user, since
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_pg_bin() -> Path | None:
    """The folder with initdb/pg_ctl: ``PG_BIN``, else the newest /usr/lib/postgresql/*/bin."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    def version(folder: str) -> int:
        name = Path(folder).parent.name
        return int(name) if name.isdigit() else 0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version)
    for folder in reversed(candidates):
        if (Path(folder) / "initdb").exists():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    """``with LocalPostgres() as pg: pg.url("dbname")`` — started on enter, removed on exit."""

    def __init__(self, preload: tuple[str, ...] = ()):
        self.bin = find_pg_bin()
        if self.bin is None:
            raise FileNotFoundError("PostgreSQL server binaries not found (set PG_BIN)")
        self.preload = preload
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="warehouse-pg-"))
        self.data = self.dir / "data"
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True)

    def start(self) -> LocalPostgres:
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync")
        options = [
            f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.dir}",
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
            "-c max_connections=100", "-c shared_buffers=256MB", "-c max_wal_size=4GB",
            # A query over every chunk locks each partition and its index, once per parallel
            # worker too: ten years of daily chunks ran out of the default 64 x 100 slots
            # ("out of shared memory"). docs/ingest.md gives servers the same advice.
            "-c max_locks_per_transaction=256",
        ]
        if self.preload:
            options.append(f"-c shared_preload_libraries={','.join(self.preload)}")
            options.append("-c cron.database_name=postgres")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"),
                  "-o", " ".join(options), "-w", "-t", "60", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self, *, wait_for_removal: bool = True) -> None:
        """Stop the server at once and delete its directory; ``wait_for_removal=False``
        leaves the deleting to a detached ``rm -rf`` (a test session's server holds a
        database per test, ~1,200 of them: 15 GB, over a minute of unlinking)."""
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                      "stop")
        except subprocess.CalledProcessError:
            pass
        if not wait_for_removal:
            subprocess.Popen(["rm", "-rf", "--", str(self.dir)], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return
        for _ in range(20):
            try:
                shutil.rmtree(self.dir)
                return
            except OSError:
                time.sleep(0.1)

    def log(self) -> str:
        path = self.dir / "log"
        return path.read_text() if path.exists() else ""

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
