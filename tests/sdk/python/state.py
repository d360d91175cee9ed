"""Reads BGP peers out of the emulator's ``GET /__admin/state``."""

from __future__ import annotations

from typing import Any

from emulator import Emulator


def state_peers(emu: Emulator) -> dict[str, dict[str, Any]]:
    """Peers the emulator holds, keyed by BgpPeerId (shape filled in once the admin API exists)."""
    state = emu.state()
    raise AssertionError(f"unknown /__admin/state shape: {str(state)[:300]}")
