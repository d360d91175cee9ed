"""Starts the project's VPC emulator binary for one test and talks to its
admin API (``/__admin/``).

The binary comes from ``ABO_BIN`` (default ``target/debug/alicloud-bgp-operator``
under the repository root). It is started with ``emulator --listen
127.0.0.1:0 --print-endpoint`` and our own access key; its first stdout line is
the endpoint. A missing binary is an error, never a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]

#: Access key the tests hand to the emulator (``--access-key ID:SECRET``).
ACCESS_KEY_ID = "testid"
ACCESS_KEY_SECRET = "testsecret"

#: The emulator's embedded demo topology (src/emulator demo config).
REGION = "cn-shanghai"
VBR = "vbr-emu00000000000000001"

#: Delay before a created/modified peer becomes Available; long enough for the
#: tests to observe the transitional state, short enough to keep them quick.
PENDING_DELAY = os.environ.get("ABO_SDK_PENDING_DELAY", "1s")

STARTUP_TIMEOUT_S = float(os.environ.get("ABO_SDK_STARTUP_TIMEOUT", "30"))


def emulator_binary() -> Path:
    """Path of the operator binary; raises if it does not exist."""
    path = Path(os.environ.get("ABO_BIN", REPO_ROOT / "target/debug/alicloud-bgp-operator"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"emulator binary {path} not found or not executable; build it with "
            "`cargo build --bin alicloud-bgp-operator` or set ABO_BIN"
        )
    return path


class Emulator:
    """One running emulator process (use as a context manager)."""

    def __init__(self, log_path: Path, config: Path | None = None, extra_args: list[str] | None = None):
        self.log_path = log_path
        self.args = [
            str(emulator_binary()),
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--print-endpoint",
            "--access-key",
            f"{ACCESS_KEY_ID}:{ACCESS_KEY_SECRET}",
            "--pending-delay",
            PENDING_DELAY,
        ]
        if config is not None:
            self.args += ["--config", str(config)]
        self.args += extra_args or []
        self.endpoint = ""
        self._proc: subprocess.Popen[str] | None = None
        self._log = None

    @property
    def hostport(self) -> str:
        """``127.0.0.1:PORT`` (what the Tea SDKs and aliyun-python-sdk-core take)."""
        return self.endpoint.removeprefix("http://")

    def __enter__(self) -> "Emulator":
        self._log = open(self.log_path, "w")
        self._proc = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")},
        )
        first_line: list[str] = []
        reader = threading.Thread(target=lambda: first_line.append(self._proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(STARTUP_TIMEOUT_S)
        line = first_line[0].strip() if first_line else ""
        if not line.startswith("http://"):
            self.__exit__(None, None, None)
            raise RuntimeError(
                f"emulator did not print its endpoint within {STARTUP_TIMEOUT_S}s "
                f"(got {line!r}); args {self.args}; log:\n{self.log_tail()}"
            )
        self.endpoint = line.rstrip("/")
        # Keep draining stdout so the emulator never blocks on a full pipe.
        threading.Thread(target=self._proc.stdout.read, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the emulator's stderr log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    # --- admin API ---

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Calls ``/__admin/<path>``; returns the decoded JSON (or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.endpoint}/__admin/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"content-type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"admin {method} {path} -> {e.code}: {e.read()[:500]!r}") from e
        return json.loads(raw) if raw.strip() else None

    def state(self) -> Any:
        """The emulator's full state (``GET /__admin/state``)."""
        return self.admin("GET", "state")


def wait_for(predicate, timeout_s: float = 15.0, interval_s: float = 0.2, what: str = "condition"):
    """Polls ``predicate()`` until it returns a truthy value; returns it."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last value {last!r}")
