"""PostgreSQL for the db pattern: a real server from Debian's packages, as a process of our own.

    python -m systems.db.postgres serve --port 5499 --metrics-port 9499
    python -m systems.db.postgres setup --dsn postgresql://postgres@127.0.0.1:5499/bench --items N

``serve`` makes a cluster with ``initdb`` once into a template in the cache (``--cache``, by
default in the system's temporary folder, which the server's user can reach; as the ``postgres``
user when run as root: ``initdb`` and ``postgres`` refuse root), copies it for this launch, and
runs ``postgres`` on 127.0.0.1 as its child with ``pg_stat_statements`` and
``track_commit_timestamp``, until SIGTERM or SIGINT (then a fast shutdown, and the copy is
removed). SIGUSR1 restarts the server: a fast shutdown, ``--restart-pause-s`` of nothing, a
start on the same data — the fault the db pattern's restart check survives. On
``--metrics-port`` it serves ``/metrics`` (``systems.db.pgstats``: the statements per role from
``pg_stat_statements``, the commits) and ``/healthz``. A server that stops by itself ends the
launcher with its exit status, so the harness sees a support that died. With
``--external-env DATABASE_URL`` and that variable set, it starts no server: it serves the
statistics of that existing one (``/healthz`` is 200 while it answers), and SIGUSR1 does nothing.

``setup`` (``systems/db/schema.py``) applies ``migrations/*.sql`` in order, each once, and seeds
``items`` with ``COPY`` when it does not hold the ``--items`` rows asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from aiohttp import web

from systems import serving
from systems.db import pgstats
from systems.db.dsn import chosen, external
from systems.db.schema import SCARCE_STOCK as SCARCE_STOCK
from systems.db.schema import SetupError
from systems.db.schema import setup as setup
from systems.db.schema import wait_ready as wait_ready

PROG: Final = "db-postgres"
DATABASE: Final = "bench"
#: Where Debian keeps the server's programs (one folder per major version).
DEBIAN_BINS: Final = Path("/usr/lib/postgresql")
#: The server's settings beyond the defaults: what the pattern reads, nothing tuned for speed.
SETTINGS: Final = (
    "shared_preload_libraries=pg_stat_statements",
    "track_commit_timestamp=on",
    "max_connections=200",
    "log_min_messages=warning",
    "log_checkpoints=off",
)


def find_bin() -> Path:
    """The newest PostgreSQL's program folder (PG_BIN overrides)."""
    given = os.environ.get("PG_BIN")
    if given:
        return Path(given)
    found = sorted(DEBIAN_BINS.glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise SetupError(
            f"no PostgreSQL under {DEBIAN_BINS}: install Debian's postgresql package "
            "(make setup does), or set PG_BIN"
        )
    return found[-1].parent


def default_cache() -> Path:
    """A folder the server's user can reach whatever the checkout's permissions (a fresh clone
    in a 0700 temporary folder, a root-only .cache): the system's temporary folder."""
    return Path(tempfile.gettempdir()) / f"patternbench-postgres-{os.geteuid()}"


def _owner() -> tuple[str, int, int] | None:
    """The user the server runs as when we are root: postgres (it refuses root); else None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise SetupError(
            "running as root, and there is no postgres user to run the server as"
        ) from None
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def _chown_tree(path: Path, owner: tuple[str, int, int] | None) -> None:
    if owner is None:
        return
    for dirpath, _dirs, files in os.walk(path):
        os.chown(dirpath, owner[1], owner[2])
        for f in files:
            os.chown(os.path.join(dirpath, f), owner[1], owner[2], follow_symlinks=False)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def template(cache: Path, bin_dir: Path) -> Path:
    """The initdb'd cluster every launch copies, made once per PostgreSQL version."""
    owner = _owner()
    version = bin_dir.parent.name
    made = cache / f"template-{version}"
    with _locked(cache / "template.lock"):
        if (made / "PG_VERSION").is_file():
            return made
        shutil.rmtree(made, ignore_errors=True)
        made.mkdir(parents=True)
        _chown_tree(cache, owner)
        cmd = [str(bin_dir / "initdb"), "-D", str(made), "-U", "postgres", "--auth=trust",
               "-E", "UTF8", "--no-locale", "--no-sync"]  # fmt: skip
        done = subprocess_run(cmd, owner)
        if done:
            shutil.rmtree(made, ignore_errors=True)
            raise SetupError(f"initdb failed: {done}")
    return made


def subprocess_run(cmd: Sequence[str], owner: tuple[str, int, int] | None) -> str | None:
    """Run as the server's user; the last line of its output when it fails, else None."""
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=False,
        user=owner[1] if owner else None,
        group=owner[2] if owner else None,
        extra_groups=[] if owner else None,
    )
    if done.returncode == 0:
        return None
    tail = (done.stderr or done.stdout).strip().splitlines()
    return tail[-1] if tail else f"exit status {done.returncode}"


def _clean_stale(clusters: Path) -> None:
    """Copies left by launchers that were killed (their pid, in the folder's name, is gone)."""
    for folder in clusters.glob("*-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


class Server:
    """One launch's copy of the template and the postgres process running on it."""

    def __init__(self, bin_dir: Path, data: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.data = data
        self.port = port
        self.owner = _owner()
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        cmd = [str(self.bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port),
               "-k", str(self.data), "-c", "listen_addresses=127.0.0.1"]  # fmt: skip
        for setting in SETTINGS:
            cmd += ["-c", setting]
        owner = self.owner
        self.proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            user=owner[1] if owner else None,
            group=owner[2] if owner else None,
            extra_groups=[] if owner else None,
        )

    async def stop(self, timeout_s: float = 30.0) -> int | None:
        """A fast shutdown (SIGINT: roll back what is in flight, checkpoint, exit)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return proc.returncode if proc else None
        proc.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(timeout_s):
                return await proc.wait()
        except TimeoutError:
            proc.kill()
            return await proc.wait()


def launch_copy(cache: Path, port: int) -> tuple[Path, Path]:
    """(the programs' folder, this launch's copy of the template)."""
    bin_dir = find_bin()
    made = template(cache, bin_dir)
    clusters = cache / "clusters"
    clusters.mkdir(parents=True, exist_ok=True)
    _clean_stale(clusters)
    data = clusters / f"{port}-{os.getpid()}"
    shutil.copytree(made, data, symlinks=True)
    _chown_tree(data, _owner())
    os.chmod(data, 0o700)
    return bin_dir, data


async def serve(args: argparse.Namespace, bin_dir: Path, data: Path) -> int:
    server = Server(bin_dir, data, args.port)
    stats = pgstats.Stats(f"postgresql://postgres@127.0.0.1:{args.port}/{DATABASE}")
    runner = web.AppRunner(
        pgstats.app(stats, f"postgresql://postgres@127.0.0.1:{args.port}/postgres")
    )
    try:
        await server.start()
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.metrics_port).start()
        return await _supervise(server, stats, args.restart_pause_s)
    finally:
        await server.stop()
        await runner.cleanup()
        await stats.close()


async def _supervise(server: Server, stats: pgstats.Stats, pause_s: float) -> int:
    """Until SIGTERM/SIGINT (0), or the server's own exit (its status); SIGUSR1 restarts it."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    restart = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, restart.set)
    while True:
        assert server.proc is not None
        exited = asyncio.ensure_future(server.proc.wait())
        stopping = asyncio.ensure_future(stop.wait())
        restarting = asyncio.ensure_future(restart.wait())
        done, pending = await asyncio.wait(
            {exited, stopping, restarting}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        if stopping in done:
            return 0
        if restarting in done:
            restart.clear()
            print(f"{PROG}: restarting: fast shutdown", file=sys.stderr, flush=True)
            await stats.forget()
            await server.stop()
            await asyncio.sleep(pause_s)
            await server.start()
            stats.restarts += 1
            print(f"{PROG}: restarting: started", file=sys.stderr, flush=True)
            continue
        code = exited.result()
        print(f"{PROG}: postgres exited by itself with status {code}", file=sys.stderr)
        server.proc = None
        return code if code else 1


async def watch(args: argparse.Namespace, dsn: str) -> int:
    """An existing server (`--external-env`'s): no server of our own, only its statistics."""
    stats = pgstats.Stats(dsn)
    runner = web.AppRunner(pgstats.app(stats, dsn))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(
        signal.SIGUSR1,
        lambda: print(f"{PROG}: an existing server is not restarted", file=sys.stderr, flush=True),
    )
    print(f"{PROG}: the server of ${args.external_env}: none of our own", file=sys.stderr)
    try:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.metrics_port).start()
        await stop.wait()
        return 0
    finally:
        await runner.cleanup()
        await stats.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = serving.argument_parser(PROG, "PostgreSQL for the db pattern (README.md)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="run a server of our own until SIGTERM")
    run.add_argument("--port", type=serving.int_in(1024, 65535), required=True)
    run.add_argument("--metrics-port", type=serving.int_in(1024, 65535), required=True)
    run.add_argument(
        "--cache",
        default=str(default_cache()),
        help="where the template and the launches' copies live (default: %(default)s)",
    )
    run.add_argument("--restart-pause-s", type=float, default=1.0, help="down time of SIGUSR1")
    run.add_argument(
        "--external-env",
        default="",
        help="a variable (DATABASE_URL) whose value, when set, is an existing server to use "
        "instead of one of our own: then only its statistics are served",
    )
    prep = sub.add_parser("setup", help="create the database, migrate, seed")
    prep.add_argument("--dsn", required=True, help="a superuser's DSN of the database to make")
    prep.add_argument("--dsn-env", default="", help="a variable whose value, when set, is the DSN")
    prep.add_argument("--items", type=serving.int_in(1), default=100_000)
    args = parser.parse_args(argv)
    try:
        if args.command == "serve" and (existing := external(args.external_env)):
            return asyncio.run(watch(args, existing))
        if args.command == "serve":
            bin_dir, data = launch_copy(Path(args.cache).resolve(), args.port)
            try:
                return asyncio.run(serve(args, bin_dir, data))
            finally:
                shutil.rmtree(data, ignore_errors=True)
        print(asyncio.run(setup(chosen(args.dsn, args.dsn_env), args.items)))
        return 0
    except SetupError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
