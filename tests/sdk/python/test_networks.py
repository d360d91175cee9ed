"""BGP network scenarios (issue 20) through each official Python SDK flavour: AddBgpNetwork,
DescribeBgpNetworks and DeleteBgpNetwork against a fresh emulator, with the SDK models'
parameter names and wire types (AddBgpNetworkRequest, DescribeBgpNetworksResponseBody).
"""

from __future__ import annotations

import uuid

import pytest

from emulator import REGION, VBR, wait_for
from flavours import ApiError, Flavour

#: DescribeBgpNetworks items: every field a string (SDK DescribeBgpNetworksResponseBody).
NETWORK_FIELDS = ("DstCidrBlock", "RouterId", "Status", "VpcId")


def describe_networks(sdk: Flavour) -> list[dict]:
    """DescribeBgpNetworks of the demo VBR (one page of 50)."""
    body = sdk.call("DescribeBgpNetworks", {"RegionId": REGION, "RouterId": VBR, "PageNumber": 1, "PageSize": 50})
    networks = (body.get("BgpNetworks") or {}).get("BgpNetwork") or []
    assert body["TotalCount"] == len(networks), body
    assert (body["PageNumber"], body["PageSize"]) == (1, 50), body
    for n in networks:
        wrong = {k: type(n.get(k)).__name__ for k in NETWORK_FIELDS if not isinstance(n.get(k), str)}
        assert not wrong, f"DescribeBgpNetworks fields missing or not strings {wrong}: {n}"
    return networks


def test_network_lifecycle(sdk, emu):
    cidr = "192.168.77.0/24"
    token = f"sdk-{sdk.name}-{uuid.uuid4()}"
    add = {"RegionId": REGION, "RouterId": VBR, "DstCidrBlock": cidr, "VpcId": "vpc-sdk0001", "ClientToken": token}

    first = sdk.call("AddBgpNetwork", add)
    assert set(first) == {"RequestId"} and first["RequestId"], "AddBgpNetwork answers only a RequestId"
    again = sdk.call("AddBgpNetwork", add)
    assert again["RequestId"] != first["RequestId"], "each call has its own RequestId"

    # A second Add of the same network with another token is refused.
    with pytest.raises(ApiError) as info:
        sdk.call("AddBgpNetwork", {**add, "ClientToken": f"{token}-other"})
    assert (info.value.code, info.value.status) == ("InvalidParams.AlreadyExists", 400), str(info.value)

    def available():
        networks = describe_networks(sdk)
        assert [n["DstCidrBlock"] for n in networks] == [cidr], "exactly one network for one ClientToken"
        return networks[0] if networks[0]["Status"] == "Available" else None

    network = wait_for(available, what=f"{cidr} Available via {sdk.name}")
    assert (network["RouterId"], network["VpcId"]) == (VBR, "vpc-sdk0001"), network

    sdk.call("DeleteBgpNetwork", {"RegionId": REGION, "RouterId": VBR, "DstCidrBlock": cidr})
    wait_for(lambda: describe_networks(sdk) == [], what=f"{cidr} gone via {sdk.name}")
    with pytest.raises(ApiError) as info:
        sdk.call("DeleteBgpNetwork", {"RegionId": REGION, "RouterId": VBR, "DstCidrBlock": cidr})
    assert (info.value.code, info.value.status) == ("InvalidParams.NotFound", 400), str(info.value)


def test_network_validation(sdk, emu):
    with pytest.raises(ApiError) as info:
        sdk.call("AddBgpNetwork", {"RegionId": REGION, "RouterId": VBR, "DstCidrBlock": "192.168.77.1/24"})
    assert (info.value.code, info.value.status) == ("InvalidIP.Malformed", 400), str(info.value)
    with pytest.raises(ApiError) as info:
        sdk.call("AddBgpNetwork", {"RegionId": REGION, "RouterId": "vbr-nosuch", "DstCidrBlock": "192.168.77.0/24"})
    assert (info.value.code, info.value.status) == ("InvalidVbrNetwork", 400), str(info.value)
