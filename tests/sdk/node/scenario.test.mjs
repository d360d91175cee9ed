// BGP peer scenarios through each official Node SDK flavour (pop-core V1 form
// body, @alicloud/vpc20160428 V3), each test against a freshly started
// emulator. End state is checked through DescribeBgpPeers and through the
// emulator's own /__admin/state.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ACCESS_KEY_ID, ACCESS_KEY_SECRET, Emulator, REGION, VBR, waitFor } from './lib/emulator.mjs';
import { ApiError, FLAVOURS, makeFlavour } from './lib/flavours.mjs';
import { statePeers } from './lib/state.mjs';

const QUOTA_CONFIG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../emulator-quota.yaml');

/** Wire types of a DescribeBgpPeers item (vpc-bgp-api.md section 1). */
const PEER_FIELD_TYPES = {
  AdvertisedRouteCount: 'number', AuthKey: 'string', BfdMultiHop: 'number', BgpGroupId: 'string',
  BgpPeerId: 'string', BgpStatus: 'string', Description: 'string', EnableBfd: 'boolean', GmtModified: 'string',
  Hold: 'string', IpVersion: 'string', IsFake: 'boolean', Keepalive: 'string', LocalAsn: 'string', Name: 'string',
  PeerAsn: 'string', PeerIpAddress: 'string', ReceivedRouteCount: 'number', RegionId: 'string',
  RouteLimit: 'string', RouterId: 'string', Status: 'string',
};

/** DescribeBgpGroups items: every field is a string (IsFake too, unlike peers). */
const GROUP_FIELDS = ['AuthKey', 'BgpGroupId', 'Description', 'Hold', 'IpVersion', 'IsFake', 'Keepalive', 'LocalAsn',
  'Name', 'PeerAsn', 'RegionId', 'RouteLimit', 'RouterId', 'Status'];

async function createGroup(sdk, peerAsn = 65010) {
  const body = await sdk.call('CreateBgpGroup', {
    RegionId: REGION, RouterId: VBR, PeerAsn: peerAsn, Name: `sdk-${sdk.name}`, IpVersion: 'IPv4',
  });
  const groupId = body.BgpGroupId;
  assert.match(groupId, /^bgpg-/, JSON.stringify(body));
  assert.ok(body.RequestId);
  const group = await waitFor(async () => {
    const groups = (await sdk.call('DescribeBgpGroups', { RegionId: REGION, BgpGroupId: groupId })).BgpGroups.BgpGroup;
    assert.deepEqual(groups.map((g) => g.BgpGroupId), [groupId]);
    return groups[0].Status === 'Available' ? groups[0] : null;
  }, { what: `group ${groupId} Available via ${sdk.name}` });
  const wrong = GROUP_FIELDS.filter((k) => typeof group[k] !== 'string');
  assert.deepEqual(wrong, [], `DescribeBgpGroups fields missing or not strings: ${JSON.stringify(group)}`);
  assert.deepEqual([group.PeerAsn, group.RouterId, group.IpVersion.toLowerCase()], [String(peerAsn), VBR, 'ipv4']);
  return groupId;
}

async function describePeers(sdk, filters = {}) {
  const body = await sdk.call('DescribeBgpPeers', { RegionId: REGION, PageSize: 50, ...filters });
  const peers = body.BgpPeers?.BgpPeer ?? [];
  assert.equal(body.TotalCount, peers.length, JSON.stringify(body));
  assert.equal(body.PageSize, 50);
  assert.equal(body.PageNumber, 1);
  return peers;
}

async function describeOne(sdk, peerId) {
  const peers = await describePeers(sdk, { BgpPeerId: peerId });
  assert.ok(peers.length <= 1, JSON.stringify(peers));
  return peers[0] ?? null;
}

function waitStatus(sdk, peerId, status) {
  return waitFor(async () => {
    const p = await describeOne(sdk, peerId);
    return p && p.Status === status ? p : null;
  }, { what: `${peerId} ${status} via ${sdk.name}` });
}

function assertWireTypes(peer) {
  const missing = Object.keys(PEER_FIELD_TYPES).filter((k) => !(k in peer)).sort();
  assert.deepEqual(missing, [], `DescribeBgpPeers item lacks fields: ${JSON.stringify(peer)}`);
  const wrong = Object.fromEntries(Object.entries(PEER_FIELD_TYPES)
    .filter(([k, t]) => typeof peer[k] !== t).map(([k]) => [k, typeof peer[k]]));
  assert.deepEqual(wrong, {}, `wrong wire types: ${JSON.stringify(peer)}`);
  assert.match(peer.GmtModified, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z$/);
}

async function expectError(promise, code, status) {
  let caught;
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof ApiError, `not an API error: ${err?.stack ?? err}`);
    assert.deepEqual([err.code, err.status], [code, status], err.message);
    assert.ok(err.requestId, err.message);
    caught = err;
    return true;
  });
  return caught;
}

/** Runs fn(emu) against a fresh emulator; prints its log when fn throws. */
async function withEmulator(opts, fn) {
  const emu = await Emulator.start(opts);
  try {
    await fn(emu);
  } catch (e) {
    console.error(`--- emulator log (${emu.logPath}) ---\n${emu.logTail(80)}`);
    throw e;
  } finally {
    await emu.stop();
  }
}

const sdkFor = (name, emu, secret = ACCESS_KEY_SECRET, keyId = ACCESS_KEY_ID) =>
  makeFlavour(name, emu, keyId, secret, REGION);

for (const name of FLAVOURS) {
  describe(name, () => {
    test('peer lifecycle: idempotent create, Pending->Available, modify, delete', () => withEmulator({}, async (emu) => {
      const sdk = sdkFor(name, emu);
      const group = await createGroup(sdk);
      const create = { RegionId: REGION, BgpGroupId: group, PeerIpAddress: '10.0.0.2', ClientToken: `sdk-${name}-${randomUUID()}` };
      const first = await sdk.call('CreateBgpPeer', create);
      const again = await sdk.call('CreateBgpPeer', create);
      const peerId = first.BgpPeerId;
      assert.match(peerId, /^bgp-/);
      assert.equal(again.BgpPeerId, peerId, 'same ClientToken must return the same BgpPeerId');
      assert.notEqual(again.RequestId, first.RequestId);

      const peers = await describePeers(sdk, { BgpGroupId: group });
      assert.deepEqual(peers.map((p) => p.BgpPeerId), [peerId], 'exactly one peer for one ClientToken');
      assertWireTypes(peers[0]);
      assert.equal(peers[0].Status, 'Pending', 'a new peer starts Pending');
      assert.deepEqual([peers[0].BgpGroupId, peers[0].PeerIpAddress, peers[0].RouterId, peers[0].RegionId],
        [group, '10.0.0.2', VBR, REGION]);
      assert.equal(peers[0].EnableBfd, false);

      assertWireTypes(await waitStatus(sdk, peerId, 'Available'));
      let state = await statePeers(emu);
      assert.deepEqual(Object.keys(state), [peerId]);
      assert.deepEqual([state[peerId].BgpGroupId, state[peerId].ClientToken], [group, create.ClientToken]);

      await sdk.call('ModifyBgpPeerAttribute',
        { RegionId: REGION, BgpPeerId: peerId, EnableBfd: true, BfdMultiHop: 3, PeerIpAddress: '10.0.0.3' });
      const during = await describeOne(sdk, peerId);
      assert.ok(['Modifying', 'Available'].includes(during?.Status), JSON.stringify(during));
      const modified = await waitStatus(sdk, peerId, 'Available');
      assert.deepEqual([modified.EnableBfd, modified.BfdMultiHop, modified.PeerIpAddress], [true, 3, '10.0.0.3']);
      state = await statePeers(emu);
      assert.deepEqual([state[peerId].EnableBfd, state[peerId].BfdMultiHop, state[peerId].PeerIpAddress],
        [true, 3, '10.0.0.3']);

      await sdk.call('DeleteBgpPeer', { RegionId: REGION, BgpPeerId: peerId });
      await waitFor(async () => (await describePeers(sdk, { BgpGroupId: group })).length === 0,
        { what: `${peerId} gone via ${name}` });
      assert.equal(await describeOne(sdk, peerId), null, 'a deleted id describes as an empty list');
      assert.deepEqual(await statePeers(emu), {});
    }));

    test('ClientToken with space, *, ~, +, / and non-ASCII', () => withEmulator({}, async (emu) => {
      const sdk = sdkFor(name, emu);
      const group = await createGroup(sdk);
      const create = { RegionId: REGION, BgpGroupId: group, PeerIpAddress: '10.0.0.9', ClientToken: `a b*c~d+e/é-${name}` };
      const peerId = (await sdk.call('CreateBgpPeer', create)).BgpPeerId;
      assert.equal((await sdk.call('CreateBgpPeer', create)).BgpPeerId, peerId);
      assert.deepEqual((await describePeers(sdk, { BgpGroupId: group })).map((p) => p.BgpPeerId), [peerId]);
      assert.equal((await statePeers(emu))[peerId].ClientToken, create.ClientToken, 'the token must arrive byte-exact');
    }));

    test('wrong secret -> SignatureDoesNotMatch, no effect', () => withEmulator({}, async (emu) => {
      const bad = sdkFor(name, emu, 'not-the-secret');
      const err = await expectError(bad.call('DescribeBgpPeers', { RegionId: REGION }), 'SignatureDoesNotMatch', 400);
      assert.match(err.message, /server string to sign is:/);
      const group = await createGroup(sdkFor(name, emu));
      await expectError(bad.call('CreateBgpPeer', { RegionId: REGION, BgpGroupId: group, PeerIpAddress: '10.0.0.2' }),
        'SignatureDoesNotMatch', 400);
      assert.deepEqual(await statePeers(emu), {});
    }));

    test('unknown AccessKeyId -> InvalidAccessKeyId.NotFound', () => withEmulator({}, async (emu) => {
      const bad = sdkFor(name, emu, ACCESS_KEY_SECRET, 'LTAInotakey');
      await expectError(bad.call('DescribeBgpPeers', { RegionId: REGION }), 'InvalidAccessKeyId.NotFound', 404);
    }));

    test('stale timestamp -> InvalidTimeStamp.Expired', () => withEmulator({}, async (emu) => {
      const sdk = sdkFor(name, emu);
      const stale = new Date(Date.now() - 3600_000);
      await expectError(sdk.call('DescribeBgpPeers', { RegionId: REGION }, { timestamp: stale }),
        'InvalidTimeStamp.Expired', 400);
      assert.deepEqual(await describePeers(sdk), []);
    }));

    test('malformed peer IP -> InvalidIP.Malformed, no effect', () => withEmulator({}, async (emu) => {
      const sdk = sdkFor(name, emu);
      const group = await createGroup(sdk);
      for (const ip of ['10.0.0.256', 'not-an-ip']) {
        await expectError(sdk.call('CreateBgpPeer', { RegionId: REGION, BgpGroupId: group, PeerIpAddress: ip }),
          'InvalidIP.Malformed', 400);
      }
      assert.deepEqual(await describePeers(sdk, { BgpGroupId: group }), []);
      assert.deepEqual(await statePeers(emu), {});
    }));

    test('same ClientToken, different parameters -> IdempotentParameterMismatch', () => withEmulator({}, async (emu) => {
      const sdk = sdkFor(name, emu);
      const group = await createGroup(sdk);
      const create = { RegionId: REGION, BgpGroupId: group, PeerIpAddress: '10.0.0.2', ClientToken: `mismatch-${randomUUID()}` };
      const peerId = (await sdk.call('CreateBgpPeer', create)).BgpPeerId;
      await expectError(sdk.call('CreateBgpPeer', { ...create, PeerIpAddress: '10.0.0.7' }),
        'IdempotentParameterMismatch', 400);
      const peers = await describePeers(sdk, { BgpGroupId: group });
      assert.deepEqual(peers.map((p) => [p.BgpPeerId, p.PeerIpAddress]), [[peerId, '10.0.0.2']]);
      assert.deepEqual(Object.keys(await statePeers(emu)), [peerId]);
    }));

    test('peer quota -> QuotaExceeded.Bgp (seed tests/sdk/emulator-quota.yaml: 2 peers)', () =>
      withEmulator({ config: QUOTA_CONFIG }, async (emu) => {
        const sdk = sdkFor(name, emu);
        const group = await createGroup(sdk);
        const create = async (ip) =>
          (await sdk.call('CreateBgpPeer', { RegionId: REGION, BgpGroupId: group, PeerIpAddress: ip })).BgpPeerId;
        const ids = [await create('10.0.1.1'), await create('10.0.1.2')];
        await expectError(create('10.0.1.3'), 'QuotaExceeded.Bgp', 400);
        assert.deepEqual(Object.keys(await statePeers(emu)).sort(), [...ids].sort());
        assert.deepEqual((await describePeers(sdk, { BgpGroupId: group })).map((p) => p.BgpPeerId).sort(), [...ids].sort());

        // Freeing a slot lets the next create through.
        await waitStatus(sdk, ids[0], 'Available');
        await sdk.call('DeleteBgpPeer', { RegionId: REGION, BgpPeerId: ids[0] });
        await waitFor(async () => (await describeOne(sdk, ids[0])) === null, { what: `${ids[0]} gone` });
        const third = await create('10.0.1.3');
        assert.deepEqual(Object.keys(await statePeers(emu)).sort(), [ids[1], third].sort());
      }));

    for (const [code, status] of [['Throttling.User', 400], ['ServiceUnavailable', 503], ['InternalError', 500]]) {
      test(`injected ${code} reaches the SDK as ${status}`, () => withEmulator({}, async (emu) => {
        const sdk = sdkFor(name, emu);
        await emu.admin('POST', 'faults', { action: 'DescribeBgpPeers', code });
        await expectError(sdk.call('DescribeBgpPeers', { RegionId: REGION }), code, status);
        await emu.admin('DELETE', 'faults');
        assert.deepEqual(await describePeers(sdk), []);
      }));
    }
  });
}
