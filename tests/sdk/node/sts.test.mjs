// STS credentials end to end: AssumeRole through pop-core (STS 2015-04-01,
// V1) against the emulator, then VPC calls through each Node flavour signed
// with the temporary key and its security token (SecurityToken in the V1
// form body, x-acs-security-token in V3).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ACCESS_KEY_ID, ACCESS_KEY_SECRET, Emulator, REGION } from './lib/emulator.mjs';
import { ApiError, FLAVOURS, makeFlavour, stsClient } from './lib/flavours.mjs';
import { statePeers } from './lib/state.mjs';

const ROLE_ARN = 'acs:ram::1234567890123456:role/alicloud-bgp-operator';
const DEMO_GROUP_V4 = 'bgpg-emu00000000000000001';

async function assumeRole(emu) {
  const body = await stsClient(emu, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    .call('AssumeRole', { RoleArn: ROLE_ARN, RoleSessionName: 'sdk-cross-test', DurationSeconds: 900 });
  const creds = body.Credentials;
  assert.match(creds.AccessKeyId, /^STS\./);
  assert.ok(creds.AccessKeySecret && creds.SecurityToken);
  assert.match(creds.Expiration, /Z$/);
  return creds;
}

async function withEmulator(fn) {
  const emu = await Emulator.start();
  try {
    await fn(emu);
  } catch (e) {
    console.error(`--- emulator log (${emu.logPath}) ---\n${emu.logTail(80)}`);
    throw e;
  } finally {
    await emu.stop();
  }
}

for (const name of FLAVOURS) {
  describe(`${name} with STS credentials`, () => {
    test('AssumeRole credentials sign VPC calls', () => withEmulator(async (emu) => {
      const c = await assumeRole(emu);
      const sdk = makeFlavour(name, emu, c.AccessKeyId, c.AccessKeySecret, REGION, c.SecurityToken);
      const peerId = (await sdk.call('CreateBgpPeer',
        { RegionId: REGION, BgpGroupId: DEMO_GROUP_V4, PeerIpAddress: '10.0.2.1' })).BgpPeerId;
      const body = await sdk.call('DescribeBgpPeers', { RegionId: REGION, BgpGroupId: DEMO_GROUP_V4 });
      assert.deepEqual(body.BgpPeers.BgpPeer.map((p) => p.BgpPeerId), [peerId]);
      assert.deepEqual(Object.keys(await statePeers(emu)), [peerId]);
    }));

    test('STS key with a wrong token -> InvalidSecurityToken.MismatchWithAccessKey', () => withEmulator(async (emu) => {
      const c = await assumeRole(emu);
      const sdk = makeFlavour(name, emu, c.AccessKeyId, c.AccessKeySecret, REGION, `${c.SecurityToken}x`);
      await assert.rejects(sdk.call('DescribeBgpPeers', { RegionId: REGION }), (err) => {
        assert.ok(err instanceof ApiError, String(err));
        assert.deepEqual([err.code, err.status], ['InvalidSecurityToken.MismatchWithAccessKey', 400]);
        return true;
      });
    }));
  });
}
