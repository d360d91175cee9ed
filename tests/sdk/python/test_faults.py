"""Injected faults (``POST /__admin/faults``) as each Python SDK flavour
surfaces them: the error code and HTTP status must come through the SDK's own
error path (JSON error body, status classes 4xx/5xx), and clearing the fault
restores normal answers.
"""

from __future__ import annotations

import pytest

from emulator import REGION
from test_scenarios import describe_peers, expect_error


@pytest.mark.parametrize(
    ("code", "status"),
    [("Throttling.User", 400), ("ServiceUnavailable", 503), ("InternalError", 500)],
)
def test_injected_error_reaches_the_sdk(sdk, emu, code, status):
    emu.admin("POST", "faults", {"action": "DescribeBgpPeers", "code": code})
    assert [f["code"] for f in emu.admin("GET", "faults")] == [code]
    expect_error(lambda: sdk.call("DescribeBgpPeers", {"RegionId": REGION}), code, status)
    emu.admin("DELETE", "faults")
    assert describe_peers(sdk) == []


def test_fault_on_create_has_no_effect(sdk, emu):
    emu.admin("POST", "faults", {"action": "CreateBgpPeer", "code": "QuotaExceeded.Nqa"})
    expect_error(
        lambda: sdk.call(
            "CreateBgpPeer",
            {"RegionId": REGION, "BgpGroupId": "bgpg-emu00000000000000001", "PeerIpAddress": "10.0.3.1"},
        ),
        "QuotaExceeded.Nqa", 400,
    )
    assert describe_peers(sdk, BgpGroupId="bgpg-emu00000000000000001") == []
