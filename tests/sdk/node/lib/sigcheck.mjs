// Independent verifier of V1 (HMAC-SHA1 RPC) and V3 (ACS3-HMAC-SHA256)
// signatures, from the rules in shared/reference/vpc-bgp-api.md section 3,
// using node:crypto only. Pinned to the published vectors in wire.test.mjs.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** RFC 3986 percent-encoding of UTF-8 text (unreserved: A-Za-z0-9-_.~). */
export function pct(value) {
  return encodeURIComponent(String(value)).replace(/[!'()*]/g, (c) =>
    `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Decoded [key, value] pairs of a query string or form body ('+' = space). */
export function parsePairs(raw) {
  const decode = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
  return raw.split('&').filter(Boolean).map((part) => {
    const eq = part.indexOf('=');
    return eq < 0 ? [decode(part), ''] : [decode(part.slice(0, eq)), decode(part.slice(eq + 1))];
  });
}

const byBytes = (a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0]));

/** V1 StringToSign over every parameter except Signature. */
export function v1StringToSign(method, params) {
  const canonical = Object.entries(params)
    .filter(([k]) => k !== 'Signature')
    .sort(byBytes)
    .map(([k, v]) => `${pct(k)}=${pct(v)}`)
    .join('&');
  return `${method.toUpperCase()}&%2F&${pct(canonical)}`;
}

/** Base64(HMAC-SHA1(secret + "&", StringToSign)). */
export function v1Signature(method, params, secret) {
  return createHmac('sha1', `${secret}&`).update(v1StringToSign(method, params)).digest('base64');
}

/** Splits "ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..". */
export function parseAuthorization(value) {
  const space = value.indexOf(' ');
  const fields = { Algorithm: value.slice(0, space) };
  for (const part of value.slice(space + 1).split(',')) {
    const eq = part.indexOf('=');
    fields[part.slice(0, eq).trim()] = part.slice(eq + 1);
  }
  return fields;
}

/** Hex SHA-256 of the V3 CanonicalRequest over signedHeaders. */
export function v3HashedCanonicalRequest(method, rawQuery, headers, signedHeaders, body) {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
  const query = parsePairs(rawQuery).map(([k, v]) => [pct(k), pct(v)]).sort(byBytes)
    .map(([k, v]) => `${k}=${v}`).join('&');
  const canonicalHeaders = signedHeaders.map((h) => `${h}:${lower[h].trim()}\n`).join('');
  const request = [method.toUpperCase(), '/', query, canonicalHeaders, signedHeaders.join(';'),
    createHash('sha256').update(body).digest('hex')].join('\n');
  return createHash('sha256').update(request).digest('hex');
}

/** hex(HMAC-SHA256(secret, "ACS3-HMAC-SHA256\n" + hashed)). */
export function v3Signature(hashed, secret) {
  return createHmac('sha256', secret).update(`ACS3-HMAC-SHA256\n${hashed}`).digest('hex');
}

/** True when the captured request's Authorization verifies with secret. */
export function verifyV3(method, rawQuery, headers, body, secret) {
  const auth = parseAuthorization(headers.authorization);
  const hashed = v3HashedCanonicalRequest(method, rawQuery, headers, auth.SignedHeaders.split(';'), body);
  const want = Buffer.from(v3Signature(hashed, secret));
  const got = Buffer.from(auth.Signature ?? '');
  return want.length === got.length && timingSafeEqual(want, got);
}
