"""Pins what each official Python SDK puts on the wire (vpc-bgp-api.md
section 1) against a local capture server, and proves every captured request
verifies under the documented signature rules (section 3) with an independent
implementation. These run without the emulator: they tell the emulator what it
must accept.
"""

from __future__ import annotations

import hashlib

import pytest

import sigcheck
from flavours import make_flavour
from wirecap import WireCapture

SECRET = "testsecret"
HARD_TOKEN = "a b*c~d+e/é"
CREATE = {
    "RegionId": "cn-shanghai",
    "BgpGroupId": "bgpg-wz9f62v4fbg1234",
    "PeerIpAddress": "10.0.0.2",
    "EnableBfd": True,
    "BfdMultiHop": 3,
    "ClientToken": HARD_TOKEN,
}
API_PARAMS = {
    "RegionId": "cn-shanghai",
    "BgpGroupId": "bgpg-wz9f62v4fbg1234",
    "PeerIpAddress": "10.0.0.2",
    "BfdMultiHop": "3",
    "ClientToken": HARD_TOKEN,
}
V1_COMMON = {"Action", "Version", "Format", "Timestamp", "SignatureNonce", "SignatureMethod",
             "SignatureVersion", "AccessKeyId", "Signature"}


# --- the verifier against the published vectors ---


def test_v1_doc_vector():
    params = {
        "AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML",
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0", "Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26",
    }
    assert sigcheck.v1_string_to_sign("GET", params) == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod"
        "%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion"
        "%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
    )
    assert sigcheck.v1_signature("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_v1_bgp_vector_with_hard_characters():
    params = {
        "AccessKeyId": "testid", "Action": "CreateBgpPeer", "BfdMultiHop": "3",
        "BgpGroupId": "bgpg-wz9f62v4fbg1234", "ClientToken": HARD_TOKEN, "EnableBfd": "true",
        "Format": "JSON", "PeerIpAddress": "10.0.0.2", "RegionId": "cn-shanghai",
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0", "Timestamp": "2016-02-23T12:46:24Z", "Version": "2016-04-28",
    }
    assert "ClientToken%3Da%2520b%252Ac~d%252Be%252F%25C3%25A9" in sigcheck.v1_string_to_sign("POST", params)
    assert sigcheck.v1_signature("POST", params, "testsecret") == "BHRvu7OfRs7s6aPbrpijSyjCJR4="
    assert sigcheck.v1_signature("POST", params, "wrongsecret") != "BHRvu7OfRs7s6aPbrpijSyjCJR4="


def _v3_doc_headers(host: str, action: str, version: str) -> dict[str, str]:
    return {
        "host": host,
        "x-acs-action": action,
        "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "x-acs-date": "2023-10-26T10:22:32Z",
        "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
        "x-acs-version": version,
    }


def test_v3_doc_vector():
    headers = _v3_doc_headers("ecs.cn-shanghai.aliyuncs.com", "RunInstances", "2014-05-26")
    hashed = sigcheck.v3_hashed_canonical_request(
        "POST", "/", "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai",
        headers, sorted(headers), b"",
    )
    assert hashed == "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    assert sigcheck.v3_signature(hashed, "YourAccessKeySecret") == (
        "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )


def test_v3_bgp_vector():
    headers = _v3_doc_headers("vpc.cn-shanghai.aliyuncs.com", "CreateBgpPeer", "2016-04-28")
    query = ("BfdMultiHop=3&BgpGroupId=bgpg-wz9f62v4fbg1234&ClientToken=a%20b%2Ac~d%2Be%2F%C3%A9"
             "&EnableBfd=true&RegionId=cn-shanghai")
    hashed = sigcheck.v3_hashed_canonical_request("POST", "/", query, headers, sorted(headers), b"")
    assert hashed == "656faecb6b0054e92d1a9568cc688cc3f5d3d1acf710b46830cee4d34d38a88d"
    assert sigcheck.v3_signature(hashed, "YourAccessKeySecret") == (
        "8a817d625561532d336c01d4842f0071141b299d327ecbd903a4b218fa08fd83"
    )


# --- the SDKs' wire shapes ---


def _capture(flavour_name: str):
    with WireCapture() as cap:
        flavour = make_flavour(flavour_name, cap.hostport, "testid", SECRET, "cn-shanghai")
        body = flavour.call("CreateBgpPeer", CREATE)
        assert body["BgpPeerId"] == "bgp-capture0000000000001", "SDK did not parse the canned response"
        return cap.only()


def test_tea_v3_wire_shape():
    req = _capture("tea-v3")
    assert (req.method, req.path, req.body) == ("POST", "/", b"")
    # API parameters only: Action/Version/Format/Timestamp travel as headers.
    assert {k: v for k, v in req.query.items() if k != "EnableBfd"} == API_PARAMS
    assert req.query["EnableBfd"] == "True", "Python serialises booleans as True/False"
    assert "ClientToken=a+b%2Ac~d%2Be%2F%C3%A9" in req.raw_query, "space travels as '+' in the query"
    for header in ("x-acs-date", "x-acs-signature-nonce", "authorization"):
        assert header in req.headers
    assert req.headers["x-acs-action"] == "CreateBgpPeer"
    assert req.headers["x-acs-version"] == "2016-04-28"
    assert req.headers["x-acs-content-sha256"] == hashlib.sha256(b"").hexdigest()
    auth = sigcheck.parse_authorization(req.headers["authorization"])
    assert auth["Algorithm"] == "ACS3-HMAC-SHA256"
    assert auth["Credential"] == "testid"
    assert auth["SignedHeaders"] == (
        "accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;"
        "x-acs-date;x-acs-signature-nonce;x-acs-version"
    )
    assert sigcheck.verify_v3(req.method, req.path, req.raw_query, req.headers, req.body, SECRET)
    assert not sigcheck.verify_v3(req.method, req.path, req.raw_query, req.headers, req.body, "wrongsecret")


def test_tea_v2_wire_shape():
    req = _capture("tea-v2")
    assert (req.method, req.path, req.body) == ("POST", "/", b"")
    assert req.form == {}
    assert set(req.query) == V1_COMMON | set(API_PARAMS) | {"EnableBfd"}
    assert req.query["Format"] == "json", "the Tea SDK writes Format in lower case"
    assert "SignatureType" not in req.query
    assert req.query["Action"] == "CreateBgpPeer" and req.query["Version"] == "2016-04-28"
    assert req.query["EnableBfd"] == "True"
    assert "authorization" not in req.headers
    assert sigcheck.v1_signature(req.method, req.query, SECRET) == req.query["Signature"]


@pytest.mark.parametrize("flavour", ["core-typed", "core-common"])
def test_core_wire_shape(flavour):
    req = _capture(flavour)
    assert (req.method, req.path, req.body) == ("POST", "/", b"")
    assert req.query["Format"] == "JSON"
    assert req.query["SignatureType"] == "", "core sends an empty SignatureType= that is signed"
    assert "SignatureType=&" in req.raw_query or req.raw_query.endswith("SignatureType=")
    assert set(req.query) == V1_COMMON | set(API_PARAMS) | {"EnableBfd", "SignatureType"}
    assert req.query["EnableBfd"] == "True"
    assert "ClientToken=a%20b%2Ac~d%2Be%2F%C3%A9" in req.raw_query, "core encodes space as %20"
    assert sigcheck.v1_signature(req.method, req.query, SECRET) == req.query["Signature"]
    without_empty = {k: v for k, v in req.query.items() if k != "SignatureType"}
    assert sigcheck.v1_signature(req.method, without_empty, SECRET) != req.query["Signature"], (
        "the empty SignatureType must take part in the signature"
    )
