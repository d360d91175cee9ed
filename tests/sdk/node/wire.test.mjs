// Pins what each official Node SDK puts on the wire (vpc-bgp-api.md
// section 1) against a local capture server, and proves each captured request
// verifies under the documented signature rules (section 3) with an
// independent implementation. No emulator needed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { test } from 'node:test';
import { makeFlavour } from './lib/flavours.mjs';
import { versionOf } from './lib/sdk.mjs';
import {
  parseAuthorization, parsePairs, v1Signature, v1StringToSign, v3HashedCanonicalRequest, v3Signature, verifyV3,
} from './lib/sigcheck.mjs';

const SECRET = 'testsecret';
const HARD_TOKEN = 'a b*c~d+e/é';
const CREATE = {
  RegionId: 'cn-shanghai', BgpGroupId: 'bgpg-wz9f62v4fbg1234', PeerIpAddress: '10.0.0.2',
  EnableBfd: true, BfdMultiHop: 3, ClientToken: HARD_TOKEN,
};
const API_PARAMS = {
  BfdMultiHop: '3', BgpGroupId: 'bgpg-wz9f62v4fbg1234', ClientToken: HARD_TOKEN, EnableBfd: 'true',
  PeerIpAddress: '10.0.0.2', RegionId: 'cn-shanghai',
};

/** Runs fn(endpointLike) against a capture server; returns the one request. */
async function capture(fn) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url, 'http://x');
      requests.push({ method: req.method, path: url.pathname, rawQuery: url.search.slice(1), headers: req.headers,
        body: Buffer.concat(chunks) });
      res.setHeader('content-type', 'application/json;charset=utf-8');
      res.end(JSON.stringify({ RequestId: 'CAPTURE-0000', BgpPeerId: 'bgp-capture0000000000001' }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const hostport = `127.0.0.1:${server.address().port}`;
  try {
    await fn({ endpoint: `http://${hostport}`, hostport });
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  assert.equal(requests.length, 1);
  return requests[0];
}

test('installed SDK versions are the pinned ones', () => {
  assert.equal(versionOf('@alicloud/pop-core'), '1.8.0');
  assert.equal(versionOf('@alicloud/vpc20160428'), '7.3.2');
});

test('verifier reproduces the published V1 vectors', () => {
  const doc = {
    AccessKeyId: 'testid', Action: 'DescribeRegions', Format: 'XML', SignatureMethod: 'HMAC-SHA1',
    SignatureNonce: '3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf', SignatureVersion: '1.0',
    Timestamp: '2016-02-23T12:46:24Z', Version: '2014-05-26',
  };
  assert.equal(v1Signature('GET', doc, 'testsecret'), 'OLeaidS1JvxuMvnyHOwuJ+uX5qY=');
  const bgp = {
    ...doc, Action: 'CreateBgpPeer', Version: '2016-04-28', Format: 'JSON', ...API_PARAMS,
  };
  assert.match(v1StringToSign('POST', bgp), /ClientToken%3Da%2520b%252Ac~d%252Be%252F%25C3%25A9/);
  assert.equal(v1Signature('POST', bgp, 'testsecret'), 'BHRvu7OfRs7s6aPbrpijSyjCJR4=');
});

test('verifier reproduces the published V3 vectors', () => {
  const headers = (host, action, version) => ({
    host, 'x-acs-action': action,
    'x-acs-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    'x-acs-date': '2023-10-26T10:22:32Z', 'x-acs-signature-nonce': '3156853299f313e23d1673dc12e1703d',
    'x-acs-version': version,
  });
  const ecs = headers('ecs.cn-shanghai.aliyuncs.com', 'RunInstances', '2014-05-26');
  const h1 = v3HashedCanonicalRequest('POST',
    'ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai', ecs,
    Object.keys(ecs).sort(), Buffer.alloc(0));
  assert.equal(h1, '7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259');
  assert.equal(v3Signature(h1, 'YourAccessKeySecret'), '06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0');
  const vpc = headers('vpc.cn-shanghai.aliyuncs.com', 'CreateBgpPeer', '2016-04-28');
  const h2 = v3HashedCanonicalRequest('POST',
    'BfdMultiHop=3&BgpGroupId=bgpg-wz9f62v4fbg1234&ClientToken=a%20b%2Ac~d%2Be%2F%C3%A9&EnableBfd=true&RegionId=cn-shanghai',
    vpc, Object.keys(vpc).sort(), Buffer.alloc(0));
  assert.equal(h2, '656faecb6b0054e92d1a9568cc688cc3f5d3d1acf710b46830cee4d34d38a88d');
  assert.equal(v3Signature(h2, 'YourAccessKeySecret'), '8a817d625561532d336c01d4842f0071141b299d327ecbd903a4b218fa08fd83');
});

test('pop-core 1.8.0: POST / with every parameter in a form body', async () => {
  const req = await capture(async (ep) => {
    const body = await makeFlavour('pop-core', ep, 'testid', SECRET, 'cn-shanghai').call('CreateBgpPeer', CREATE);
    assert.equal(body.BgpPeerId, 'bgp-capture0000000000001');
  });
  assert.equal(req.method, 'POST');
  assert.equal(req.path, '/');
  assert.equal(req.rawQuery, '', 'pop-core sends no query string on POST');
  assert.match(req.headers['content-type'], /^application\/x-www-form-urlencoded/);
  const form = Object.fromEntries(parsePairs(req.body.toString()));
  for (const [k, v] of Object.entries(API_PARAMS)) assert.equal(form[k], v, k);
  assert.equal(form.EnableBfd, 'true', 'Node sends lower-case booleans');
  assert.equal(form.Format, 'JSON');
  assert.equal(form.Action, 'CreateBgpPeer');
  assert.equal(form.Version, '2016-04-28');
  assert.equal(form.SignatureType, undefined);
  assert.ok(form.Signature, 'Signature travels in the body');
  assert.equal(req.headers['x-acs-action'], 'CreateBgpPeer');
  assert.equal(v1Signature('POST', form, SECRET), form.Signature);
  assert.notEqual(v1Signature('POST', form, 'wrongsecret'), form.Signature);
});

test('@alicloud/vpc20160428 7.3.2: V3, API parameters in the query, host;x-acs-* signed', async () => {
  const req = await capture(async (ep) => {
    const body = await makeFlavour('tea-v3', ep, 'testid', SECRET, 'cn-shanghai').call('CreateBgpPeer', CREATE);
    assert.equal(body.BgpPeerId, 'bgp-capture0000000000001');
  });
  assert.equal(req.method, 'POST');
  assert.equal(req.path, '/');
  assert.equal(req.body.length, 0);
  assert.deepEqual(Object.fromEntries(parsePairs(req.rawQuery)), API_PARAMS);
  assert.match(req.rawQuery, /ClientToken=a%20b\*c~d%2Be%2F%C3%A9/, "Node leaves '*' raw on the wire");
  assert.equal(req.headers['x-acs-action'], 'CreateBgpPeer');
  assert.equal(req.headers['x-acs-version'], '2016-04-28');
  assert.equal(req.headers['x-acs-content-sha256'], createHash('sha256').update('').digest('hex'));
  const auth = parseAuthorization(req.headers.authorization);
  assert.equal(auth.Algorithm, 'ACS3-HMAC-SHA256');
  assert.equal(auth.Credential, 'testid');
  assert.equal(auth.SignedHeaders,
    'host;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version');
  assert.ok(verifyV3(req.method, req.rawQuery, req.headers, req.body, SECRET));
  assert.ok(!verifyV3(req.method, req.rawQuery, req.headers, req.body, 'wrongsecret'));
});
