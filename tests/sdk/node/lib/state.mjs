// Reads BGP peers out of the emulator's GET /__admin/state: the resource
// snapshots (BgpPeers with PascalCase fields, src/emulator/model.rs
// PeerSnapshot), at the top level or under one wrapping key.
import assert from 'node:assert/strict';

function findPeers(state) {
  if (state && typeof state === 'object') {
    if (Array.isArray(state.BgpPeers)) return state.BgpPeers;
    const nested = Object.values(state).filter((v) => v && typeof v === 'object' && Array.isArray(v.BgpPeers));
    if (nested.length === 1) return nested[0].BgpPeers;
  }
  throw new Error(`no BgpPeers list in /__admin/state: ${JSON.stringify(state).slice(0, 500)}`);
}

/** Peers the emulator holds, keyed by BgpPeerId. */
export async function statePeers(emu) {
  const peers = findPeers(await emu.state());
  const byId = Object.fromEntries(peers.map((p) => [p.BgpPeerId, p]));
  assert.equal(Object.keys(byId).length, peers.length, `duplicate BgpPeerId in state: ${JSON.stringify(peers)}`);
  return byId;
}
