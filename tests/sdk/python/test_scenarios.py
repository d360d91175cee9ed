"""BGP peer scenarios through each official Python SDK flavour, each against a
freshly started emulator. End state is checked through DescribeBgpPeers and
through the emulator's own ``/__admin/state``, not just "no exception".
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from emulator import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION, VBR, wait_for
from flavours import ApiError, Flavour, make_flavour
from state import state_peers

#: Wire types of a DescribeBgpPeers item (vpc-bgp-api.md section 1).
PEER_FIELD_TYPES = {
    "AdvertisedRouteCount": int, "AuthKey": str, "BfdMultiHop": int, "BgpGroupId": str,
    "BgpPeerId": str, "BgpStatus": str, "Description": str, "EnableBfd": bool, "GmtModified": str,
    "Hold": str, "IpVersion": str, "IsFake": bool, "Keepalive": str, "LocalAsn": str, "Name": str,
    "PeerAsn": str, "PeerIpAddress": str, "ReceivedRouteCount": int, "RegionId": str,
    "RouteLimit": str, "RouterId": str, "Status": str,
}


#: DescribeBgpGroups items: every field is a string (IsFake too, unlike peers).
GROUP_FIELDS = (
    "AuthKey", "BgpGroupId", "Description", "Hold", "IpVersion", "IsFake", "Keepalive", "LocalAsn",
    "Name", "PeerAsn", "RegionId", "RouteLimit", "RouterId", "Status",
)


def create_group(sdk: Flavour, peer_asn: int = 65010) -> str:
    """Creates an IPv4 BGP group on the demo VBR, waits until it is Available; returns its id."""
    body = sdk.call(
        "CreateBgpGroup",
        {"RegionId": REGION, "RouterId": VBR, "PeerAsn": peer_asn, "Name": f"sdk-{sdk.name}", "IpVersion": "IPv4"},
    )
    group_id = body["BgpGroupId"]
    assert group_id.startswith("bgpg-"), body
    assert body["RequestId"], body

    def available():
        groups = sdk.call("DescribeBgpGroups", {"RegionId": REGION, "BgpGroupId": group_id})["BgpGroups"]["BgpGroup"]
        assert [g["BgpGroupId"] for g in groups] == [group_id], groups
        return groups[0] if groups[0]["Status"] == "Available" else None

    group = wait_for(available, what=f"group {group_id} Available via {sdk.name}")
    wrong = {k: type(group.get(k)).__name__ for k in GROUP_FIELDS if not isinstance(group.get(k), str)}
    assert not wrong, f"DescribeBgpGroups fields missing or not strings {wrong}: {group}"
    assert (group["PeerAsn"], group["RouterId"], group["IpVersion"].lower()) == (str(peer_asn), VBR, "ipv4"), group
    return group_id


def describe_peers(sdk: Flavour, **filters) -> list[dict]:
    """DescribeBgpPeers in the demo region (one page of 50)."""
    body = sdk.call("DescribeBgpPeers", {"RegionId": REGION, "PageSize": 50, **filters})
    peers = (body.get("BgpPeers") or {}).get("BgpPeer") or []
    assert body["TotalCount"] == len(peers), body
    assert body["PageSize"] == 50 and body["PageNumber"] == 1, body
    return peers


def describe_one(sdk: Flavour, peer_id: str) -> dict | None:
    """The peer as DescribeBgpPeers(BgpPeerId=...) shows it, or None when gone."""
    peers = describe_peers(sdk, BgpPeerId=peer_id)
    assert len(peers) <= 1, peers
    return peers[0] if peers else None


def wait_status(sdk: Flavour, peer_id: str, status: str) -> dict:
    """Polls DescribeBgpPeers until the peer has ``status``."""
    return wait_for(
        lambda: (p := describe_one(sdk, peer_id)) is not None and p["Status"] == status and p,
        what=f"{peer_id} {status} via {sdk.name}",
    )


def assert_wire_types(peer: dict) -> None:
    """Every documented field is there with the SDK's wire type."""
    missing = sorted(set(PEER_FIELD_TYPES) - set(peer))
    assert not missing, f"DescribeBgpPeers item lacks {missing}: {peer}"
    wrong = {
        k: type(peer[k]).__name__
        for k, t in PEER_FIELD_TYPES.items()
        if not isinstance(peer[k], t) or (t is int and isinstance(peer[k], bool))
    }
    assert not wrong, f"wrong wire types {wrong} (want {PEER_FIELD_TYPES}): {peer}"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z", peer["GmtModified"]), peer["GmtModified"]


def expect_error(call, code: str, status: int) -> ApiError:
    """Runs ``call`` and asserts it fails with ``code`` / HTTP ``status``."""
    with pytest.raises(ApiError) as info:
        call()
    err = info.value
    assert (err.code, err.status) == (code, status), str(err)
    assert err.request_id, str(err)
    return err


def test_peer_lifecycle(sdk, emu):
    group = create_group(sdk)
    token = f"sdk-{sdk.name}-{uuid.uuid4()}"
    create = {"RegionId": REGION, "BgpGroupId": group, "PeerIpAddress": "10.0.0.2", "ClientToken": token}

    first = sdk.call("CreateBgpPeer", create)
    again = sdk.call("CreateBgpPeer", create)
    peer_id = first["BgpPeerId"]
    assert peer_id.startswith("bgp-"), first
    assert again["BgpPeerId"] == peer_id, "same ClientToken must return the same BgpPeerId"
    assert again["RequestId"] != first["RequestId"], "each call has its own RequestId"

    peers = describe_peers(sdk, BgpGroupId=group)
    assert [p["BgpPeerId"] for p in peers] == [peer_id], "exactly one peer for one ClientToken"
    fresh = peers[0]
    assert_wire_types(fresh)
    assert fresh["Status"] == "Pending", f"a new peer starts Pending: {fresh}"
    assert (fresh["BgpGroupId"], fresh["PeerIpAddress"], fresh["RouterId"], fresh["RegionId"]) == (
        group, "10.0.0.2", VBR, REGION,
    )
    assert fresh["IpVersion"].lower() == "ipv4" and fresh["EnableBfd"] is False

    available = wait_status(sdk, peer_id, "Available")
    assert_wire_types(available)
    in_state = state_peers(emu)
    assert set(in_state) == {peer_id}, in_state
    assert (in_state[peer_id]["BgpGroupId"], in_state[peer_id]["ClientToken"]) == (group, token), in_state

    sdk.call(
        "ModifyBgpPeerAttribute",
        {"RegionId": REGION, "BgpPeerId": peer_id, "EnableBfd": True, "BfdMultiHop": 3, "PeerIpAddress": "10.0.0.3"},
    )
    during = describe_one(sdk, peer_id)
    assert during is not None and during["Status"] in ("Modifying", "Available"), during
    modified = wait_status(sdk, peer_id, "Available")
    assert (modified["EnableBfd"], modified["BfdMultiHop"], modified["PeerIpAddress"]) == (True, 3, "10.0.0.3"), modified
    assert modified["BgpPeerId"] == peer_id and modified["BgpGroupId"] == group
    in_state = state_peers(emu)
    assert (in_state[peer_id]["EnableBfd"], in_state[peer_id]["BfdMultiHop"], in_state[peer_id]["PeerIpAddress"]) == (
        True, 3, "10.0.0.3",
    ), in_state

    sdk.call("DeleteBgpPeer", {"RegionId": REGION, "BgpPeerId": peer_id})
    wait_for(lambda: describe_peers(sdk, BgpGroupId=group) == [], what=f"{peer_id} gone via {sdk.name}")
    assert describe_one(sdk, peer_id) is None, "a deleted id describes as an empty list, not an error"
    assert state_peers(emu) == {}


def test_client_token_with_hard_characters(sdk, emu):
    """Space, '*', '~', '+', '/' and non-ASCII in a signed parameter (canonicalisation)."""
    group = create_group(sdk)
    token = f"a b*c~d+e/é-{sdk.name}"
    create = {"RegionId": REGION, "BgpGroupId": group, "PeerIpAddress": "10.0.0.9", "ClientToken": token}
    peer_id = sdk.call("CreateBgpPeer", create)["BgpPeerId"]
    assert sdk.call("CreateBgpPeer", create)["BgpPeerId"] == peer_id
    assert [p["BgpPeerId"] for p in describe_peers(sdk, BgpGroupId=group)] == [peer_id]
    assert state_peers(emu)[peer_id]["ClientToken"] == token, "the token must arrive byte-exact"


#: What each flavour reports for the emulator's SignatureDoesNotMatch. aliyun-python-sdk-core
#: rewrites it to InvalidAccessKeySecret when the "server string to sign is:<STS>" in the
#: message is byte-identical to the string it signed itself (client.py _get_server_exception),
#: so for the typed requests this also proves the emulator canonicalises exactly like the SDK.
#: (CommonRequest keeps its string to sign on an inner request, so that SDK path never rewrites.)
WRONG_SECRET_CODE = {
    "tea-v3": "SignatureDoesNotMatch",
    "tea-v2": "SignatureDoesNotMatch",
    "core-typed": "InvalidAccessKeySecret",
    "core-common": "SignatureDoesNotMatch",
}


def test_wrong_secret_is_signature_does_not_match(flavour_name, emu):
    bad = make_flavour(flavour_name, emu.hostport, ACCESS_KEY_ID, "not-the-secret", REGION)
    code = WRONG_SECRET_CODE[flavour_name]
    err = expect_error(lambda: bad.call("DescribeBgpPeers", {"RegionId": REGION}), code, 400)
    if code == "SignatureDoesNotMatch":
        assert "server string to sign is:" in err.message, err.message
    good = make_flavour(flavour_name, emu.hostport, ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION)
    group = create_group(good)
    expect_error(
        lambda: bad.call("CreateBgpPeer", {"RegionId": REGION, "BgpGroupId": group, "PeerIpAddress": "10.0.0.2"}),
        code, 400,
    )
    assert state_peers(emu) == {}, "a rejected signature must have no effect"


def test_unknown_access_key_id(flavour_name, emu):
    bad = make_flavour(flavour_name, emu.hostport, "LTAInotakey", ACCESS_KEY_SECRET, REGION)
    expect_error(lambda: bad.call("DescribeBgpPeers", {"RegionId": REGION}), "InvalidAccessKeyId.NotFound", 404)


def test_stale_timestamp_is_expired(sdk, emu):
    stale = datetime.now(timezone.utc) - timedelta(hours=1)
    expect_error(
        lambda: sdk.call("DescribeBgpPeers", {"RegionId": REGION}, timestamp=stale), "InvalidTimeStamp.Expired", 400
    )
    # The same call with a current timestamp goes through (the override was the only change).
    assert describe_peers(sdk) == []


def test_malformed_ip(sdk, emu):
    group = create_group(sdk)
    for bad_ip in ("10.0.0.256", "not-an-ip"):
        expect_error(
            lambda: sdk.call("CreateBgpPeer", {"RegionId": REGION, "BgpGroupId": group, "PeerIpAddress": bad_ip}),
            "InvalidIP.Malformed", 400,
        )
    assert describe_peers(sdk, BgpGroupId=group) == []
    assert state_peers(emu) == {}


def test_same_token_different_parameters(sdk, emu):
    group = create_group(sdk)
    token = f"mismatch-{uuid.uuid4()}"
    create = {"RegionId": REGION, "BgpGroupId": group, "PeerIpAddress": "10.0.0.2", "ClientToken": token}
    peer_id = sdk.call("CreateBgpPeer", create)["BgpPeerId"]
    expect_error(
        lambda: sdk.call("CreateBgpPeer", {**create, "PeerIpAddress": "10.0.0.7"}), "IdempotentParameterMismatch", 400
    )
    peers = describe_peers(sdk, BgpGroupId=group)
    assert [(p["BgpPeerId"], p["PeerIpAddress"]) for p in peers] == [(peer_id, "10.0.0.2")]
    assert set(state_peers(emu)) == {peer_id}


def test_peer_quota(flavour_name, quota_emu):
    """tests/sdk/emulator-quota.yaml allows 2 peers on the VBR."""
    sdk = make_flavour(flavour_name, quota_emu.hostport, ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION)
    group = create_group(sdk)

    def create(ip: str) -> str:
        return sdk.call("CreateBgpPeer", {"RegionId": REGION, "BgpGroupId": group, "PeerIpAddress": ip})["BgpPeerId"]

    ids = [create("10.0.1.1"), create("10.0.1.2")]
    expect_error(lambda: create("10.0.1.3"), "QuotaExceeded.Bgp", 400)
    assert set(state_peers(quota_emu)) == set(ids)
    assert sorted(p["BgpPeerId"] for p in describe_peers(sdk, BgpGroupId=group)) == sorted(ids)

    # Freeing a slot lets the next create through.
    wait_status(sdk, ids[0], "Available")
    sdk.call("DeleteBgpPeer", {"RegionId": REGION, "BgpPeerId": ids[0]})
    wait_for(lambda: describe_one(sdk, ids[0]) is None, what=f"{ids[0]} gone")
    third = create("10.0.1.3")
    assert set(state_peers(quota_emu)) == {ids[1], third}
