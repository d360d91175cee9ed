"""Fixtures: a freshly started emulator per test and an SDK flavour aimed at it."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION, Emulator
from flavours import FLAVOURS, Flavour, make_flavour

SDK_TEST_DIR = Path(__file__).resolve().parent.parent


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Makes the test outcome visible to fixtures (to dump the emulator log on failure)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def _start(request, tmp_path: Path, config: Path | None = None):
    emu = Emulator(tmp_path / "emulator.log", config=config)
    emu.__enter__()
    yield emu
    emu.__exit__(None, None, None)
    failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))
    if failed:
        print(f"--- emulator log ({emu.log_path}) ---\n{emu.log_tail(80)}")


@pytest.fixture
def emu(request, tmp_path):
    """A fresh emulator with its embedded demo config."""
    yield from _start(request, tmp_path)


@pytest.fixture
def quota_emu(request, tmp_path):
    """A fresh emulator seeded from tests/sdk/emulator-quota.yaml (small peer quota)."""
    yield from _start(request, tmp_path, config=SDK_TEST_DIR / "emulator-quota.yaml")


@pytest.fixture(params=FLAVOURS)
def flavour_name(request) -> str:
    """Each Python SDK flavour in turn."""
    return request.param


@pytest.fixture
def sdk(flavour_name, emu) -> Flavour:
    """The flavour, signed with the emulator's access key."""
    return make_flavour(flavour_name, emu.hostport, ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION)
