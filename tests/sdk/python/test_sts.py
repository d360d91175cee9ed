"""STS credentials end to end: AssumeRole through the official STS SDK
(alibabacloud-sts20150401) against the emulator, then VPC calls through each
Python VPC flavour signed with the temporary key and its security token
(``SecurityToken`` in V1, ``x-acs-security-token`` in V3).
"""

from __future__ import annotations

from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi.models import Config

from emulator import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION
from flavours import make_flavour
from state import state_peers
from test_scenarios import describe_peers, expect_error

#: A well-formed role ARN (the emulator accepts any role by default).
ROLE_ARN = "acs:ram::1234567890123456:role/alicloud-bgp-operator"
#: The demo IPv4 group (Available from the start).
DEMO_GROUP_V4 = "bgpg-emu00000000000000001"


def assume_role(emu) -> sts_models.AssumeRoleResponseBodyCredentials:
    client = StsClient(
        Config(
            access_key_id=ACCESS_KEY_ID,
            access_key_secret=ACCESS_KEY_SECRET,
            endpoint=emu.hostport,
            protocol="http",
            region_id=REGION,
        )
    )
    request = sts_models.AssumeRoleRequest(role_arn=ROLE_ARN, role_session_name="sdk-cross-test", duration_seconds=900)
    body = client.assume_role(request).body
    # Alibaba spells the assumed identity role/<name>/<session> (no AWS-style assumed-role/).
    assert body.assumed_role_user.arn == f"{ROLE_ARN}/sdk-cross-test", body.assumed_role_user.to_map()
    creds = body.credentials
    assert creds.access_key_id.startswith("STS."), creds.access_key_id
    assert creds.security_token and creds.access_key_secret and creds.expiration.endswith("Z")
    return creds


def test_sts_credentials_sign_vpc_calls(flavour_name, emu):
    creds = assume_role(emu)
    sdk = make_flavour(
        flavour_name, emu.hostport, creds.access_key_id, creds.access_key_secret, REGION,
        security_token=creds.security_token,
    )
    peer_id = sdk.call("CreateBgpPeer", {"RegionId": REGION, "BgpGroupId": DEMO_GROUP_V4, "PeerIpAddress": "10.0.2.1"})[
        "BgpPeerId"
    ]
    assert [p["BgpPeerId"] for p in describe_peers(sdk, BgpGroupId=DEMO_GROUP_V4)] == [peer_id]
    assert set(state_peers(emu)) == {peer_id}


def test_sts_key_with_wrong_token(flavour_name, emu):
    creds = assume_role(emu)
    sdk = make_flavour(
        flavour_name, emu.hostport, creds.access_key_id, creds.access_key_secret, REGION,
        security_token=creds.security_token + "x",
    )
    expect_error(
        lambda: sdk.call("DescribeBgpPeers", {"RegionId": REGION}), "InvalidSecurityToken.MismatchWithAccessKey", 400
    )
