"""A PostgreSQL cluster and a Redis server of the drills' own, which they crash and restart.

They live in a folder of their own on ports of their own, so the drills never touch the
developer's servers. PostgreSQL refuses to run as root: when the drills run as root (CI), its
cluster belongs to an unprivileged user made for it. Nothing here imports Django: the
launcher starts the servers before the portal is configured to use them.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

FAULTS_USER = "portalfaults"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, *, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing answers on port {port} after {seconds:.0f} s") from None
            time.sleep(0.1)


def _as_owner(command: list[str]) -> list[str]:
    """``command`` as the cluster's owner: the drills' own user when running as root."""
    return ["runuser", "-u", FAULTS_USER, "--", *command] if os.geteuid() == 0 else command


def _pg_bin(name: str) -> str:
    bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
    return str(Path(bindir) / name)


class PrivatePostgres:
    def __init__(self, root: Path, port: int):
        self.root, self.port = root, port
        self.data = root / "pgdata"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/portal"

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            if subprocess.run(["id", FAULTS_USER], capture_output=True).returncode != 0:
                subprocess.run(["useradd", "--system", "--no-create-home", FAULTS_USER], check=True)
            shutil.chown(self.root, user=FAULTS_USER)
        initdb = [_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync"]
        subprocess.run(_as_owner(initdb), check=True, capture_output=True)
        self.start()
        createdb = [_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "portal"]
        subprocess.run(createdb, check=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        pg_ctl = [_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "postgres.log"), "-o", options]
        subprocess.run(_as_owner([*pg_ctl, "-w", "start"]), check=True, capture_output=True)
        _wait_for_port(self.port)

    def crash(self) -> None:
        """Kills the server at once, as a power cut would (it recovers from its WAL on start)."""
        pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # its backends notice the postmaster is gone and exit

    def stop(self) -> None:
        pg_ctl = [_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
        subprocess.run(_as_owner(pg_ctl), capture_output=True)


class PrivateRedis:
    """Controlled by port and folder alone, so that the process that crashes it need not be
    the one that started it."""

    def __init__(self, root: Path, port: int):
        self.root, self.port = root, port
        self.data = root / "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _cli(self, *args: str) -> str:
        command = ["redis-cli", "-p", str(self.port), *args]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    def start(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data)]
        command += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)  # noqa: S603
        _wait_for_port(self.port)
        deadline = time.monotonic() + 30
        while "loading:0" not in self._cli("info", "persistence"):  # still reading its file
            if time.monotonic() > deadline:
                raise RuntimeError("Redis did not finish loading its append-only file")
            time.sleep(0.05)

    def crash(self) -> None:
        """Kills the server at once; what it had written to its append-only file survives."""
        pid = int(
            next(line for line in self._cli("info", "server").splitlines() if line.startswith("process_id:")).split(
                ":"
            )[1]
        )
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def aof_snapshot(self) -> Path:
        """A copy of the append-only file as it is on disk now."""
        self._cli("config", "set", "appendfsync", "always")
        self._cli("set", "faults:fence", str(time.time()))  # written and fsynced with all before it
        self._cli("config", "set", "appendfsync", "everysec")
        copy = self.root / f"aof-{time.monotonic_ns()}"
        shutil.copytree(self.data / "appendonlydir", copy)
        return copy

    def restore(self, snapshot: Path) -> None:
        """Puts an older append-only file back (the server must be down): a host crash that
        lost the writes since."""
        shutil.rmtree(self.data / "appendonlydir")
        shutil.copytree(snapshot, self.data / "appendonlydir")

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
