"""Reads BGP peers out of the emulator's ``GET /__admin/state``.

The state carries the emulator's resource snapshots (``BgpPeers`` with
PascalCase fields, as in src/emulator/model.rs ``PeerSnapshot``), either at the
top level or under one wrapping key.
"""

from __future__ import annotations

from typing import Any

from emulator import Emulator


def _find_peers(state: Any) -> list[dict[str, Any]]:
    if isinstance(state, dict):
        if isinstance(state.get("BgpPeers"), list):
            return state["BgpPeers"]
        nested = [v for v in state.values() if isinstance(v, dict) and isinstance(v.get("BgpPeers"), list)]
        if len(nested) == 1:
            return nested[0]["BgpPeers"]
    raise AssertionError(f"no BgpPeers list in /__admin/state: {str(state)[:500]}")


def state_peers(emu: Emulator) -> dict[str, dict[str, Any]]:
    """Peers the emulator holds, keyed by BgpPeerId."""
    peers = _find_peers(emu.state())
    by_id = {p["BgpPeerId"]: p for p in peers}
    assert len(by_id) == len(peers), f"duplicate BgpPeerId in state: {peers}"
    return by_id
