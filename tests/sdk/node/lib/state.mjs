// Reads BGP peers out of the emulator's GET /__admin/state.
// (Shape filled in once the emulator's admin API is known.)
export async function statePeers(emu) {
  const state = await emu.state();
  throw new Error(`unknown /__admin/state shape: ${JSON.stringify(state).slice(0, 300)}`);
}
