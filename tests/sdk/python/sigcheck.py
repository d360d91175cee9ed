"""Independent verifier of Alibaba Cloud V1 (HMAC-SHA1 RPC) and V3
(ACS3-HMAC-SHA256) request signatures, written from the rules in
shared/reference/vpc-bgp-api.md section 3 with the standard library only.

It lets the wire-shape tests prove that what each official SDK puts on the
wire verifies under the documented rules, i.e. that an emulator implementing
those rules accepts the SDK. It is pinned to the documented test vectors in
test_wire_shapes.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote, unquote, unquote_plus


def pct(value: str) -> str:
    """RFC 3986 percent-encoding of UTF-8 text (unreserved: A-Za-z0-9-_.~)."""
    return quote(value, safe="-_.~")


def parse_pairs(raw: str, plus_is_space: bool) -> list[tuple[str, str]]:
    """Splits a query string or form body into decoded (key, value) pairs.

    A bare ``key`` (no ``=``) yields ``(key, "")``. ``plus_is_space`` is True
    for ``application/x-www-form-urlencoded`` bodies.
    """
    decode = unquote_plus if plus_is_space else unquote
    pairs = []
    for part in raw.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((decode(key), decode(value)))
    return pairs


def v1_string_to_sign(method: str, params: dict[str, str]) -> str:
    """V1 StringToSign over every parameter except ``Signature``."""
    items = sorted(
        ((k, v) for k, v in params.items() if k != "Signature"),
        key=lambda kv: kv[0].encode(),
    )
    canonical = "&".join(f"{pct(k)}={pct(v)}" for k, v in items)
    return f"{method.upper()}&%2F&{pct(canonical)}"


def v1_signature(method: str, params: dict[str, str], secret: str) -> str:
    """Base64(HMAC-SHA1(secret + "&", StringToSign))."""
    sts = v1_string_to_sign(method, params)
    mac = hmac.new((secret + "&").encode(), sts.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def v3_canonical_query(raw_query: str) -> str:
    """Decodes the wire query, re-encodes per RFC 3986 and sorts by key."""
    pairs = [(pct(k), pct(v)) for k, v in parse_pairs(raw_query, plus_is_space=True)]
    pairs.sort(key=lambda kv: kv[0].encode())
    return "&".join(f"{k}={v}" for k, v in pairs)


def parse_authorization(value: str) -> dict[str, str]:
    """Splits ``ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..``."""
    algorithm, _, rest = value.partition(" ")
    fields = {"Algorithm": algorithm}
    for part in rest.split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    return fields


def v3_hashed_canonical_request(
    method: str,
    path: str,
    raw_query: str,
    headers: dict[str, str],
    signed_headers: list[str],
    body: bytes,
) -> str:
    """Hex SHA-256 of the V3 CanonicalRequest, signing ``signed_headers``."""
    lower = {k.lower(): v for k, v in headers.items()}
    canonical_headers = "".join(f"{h}:{lower[h].strip()}\n" for h in signed_headers)
    canonical_request = "\n".join(
        [
            method.upper(),
            quote(unquote(path), safe="/-_.~"),
            v3_canonical_query(raw_query),
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    return hashlib.sha256(canonical_request.encode()).hexdigest()


def v3_signature(hashed_canonical_request: str, secret: str) -> str:
    """hex(HMAC-SHA256(secret, "ACS3-HMAC-SHA256\\n" + HashedCanonicalRequest))."""
    sts = "ACS3-HMAC-SHA256\n" + hashed_canonical_request
    return hmac.new(secret.encode(), sts.encode(), hashlib.sha256).hexdigest()


def verify_v3(method: str, path: str, raw_query: str, headers: dict[str, str], body: bytes, secret: str) -> bool:
    """True when the request's Authorization header verifies with ``secret``."""
    lower = {k.lower(): v for k, v in headers.items()}
    auth = parse_authorization(lower["authorization"])
    signed = auth["SignedHeaders"].split(";")
    hashed = v3_hashed_canonical_request(method, path, raw_query, headers, signed, body)
    return hmac.compare_digest(v3_signature(hashed, secret), auth["Signature"])
