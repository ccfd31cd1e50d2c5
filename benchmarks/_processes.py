"""The server under test in its own process: started, pinned to a CPU, awaited until it answers, measured (RSS),
stopped. On this 2-core machine the server gets CPU 0 and the load generator (this process) CPU 1, so neither
steals the other's core and runs repeat more closely; other processes (the RabbitMQ node) are not pinned."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import aiohttp

SERVER_CPU = 0
LOAD_CPU = 1
READY_TIMEOUT_SECONDS = 60.0


_pin = True


def pinning() -> dict[str, int] | None:
    """Which CPU runs what, or None when pinning is off or there are too few CPUs to separate them. (The
    machine's count: this process's own affinity is a single CPU once pinned.)"""
    return {"server": SERVER_CPU, "load_generator": LOAD_CPU} if _pin and (os.cpu_count() or 1) >= 2 else None


def pin_load_generator(enabled: bool = True) -> None:
    """Pin this process (and so decide for the servers it starts); `enabled=False` leaves scheduling to Linux."""
    global _pin
    _pin = enabled
    if pinning() is not None:
        os.sched_setaffinity(0, {LOAD_CPU})


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free right now on loopback (all held open together, so no two are the same; the
    servers bind them a moment later)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def rss_kib(pid: int) -> int:
    """Resident set size (VmRSS) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class ServerProcess:
    """One server subprocess; its stderr goes to a temporary file, shown if it fails to start."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.argv = list(argv)
        self.env = {**os.environ, **env}
        self._log = Path(tempfile.mkstemp(prefix="hsqbo-bench-", suffix=".log")[1])
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("not started")
        return self._process.pid

    def start(self) -> None:
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        if pinning() is not None:
            os.sched_setaffinity(self._process.pid, {SERVER_CPU})

    async def wait_ready(self, urls: Sequence[str]) -> None:
        """Until GET of every one of `urls` answers 200; fail with the server's last log lines if it exits or
        never does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_SECONDS
        waiting = list(urls)
        async with aiohttp.ClientSession() as session:
            while waiting and loop.time() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    raise RuntimeError(f"{self.argv[0]} exited with {self._process.returncode}:\n{_tail(self._log)}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(waiting[0]) as response:
                        if response.status == 200:
                            waiting.pop(0)
                            continue
                await asyncio.sleep(0.1)
        if waiting:
            raise RuntimeError(f"{waiting[0]} not ready after {READY_TIMEOUT_SECONDS:.0f}s:\n{_tail(self._log)}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def running(
    argv: Sequence[str], env: Mapping[str, str], ready_urls: Sequence[str]
) -> AsyncIterator[ServerProcess]:
    """The server, started and answering 200 on every one of `ready_urls`; stopped on exit."""
    server = ServerProcess(argv, env)
    server.start()
    try:
        await server.wait_ready(ready_urls)
        yield server
    finally:
        server.stop()


def python_module(module: str, *args: str) -> list[str]:
    """argv running `python -m module` with this interpreter (the project's venv)."""
    return [sys.executable, "-m", module, *args]


def hsqbo(*args: str) -> list[str]:
    """argv running the `hsqbo` console script installed beside this interpreter."""
    return [str(Path(sys.executable).with_name("hsqbo")), *args]
