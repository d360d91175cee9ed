// Starts the project's VPC emulator binary for one test and talks to its
// admin API (/__admin/). The binary comes from ABO_BIN (default
// target/debug/alicloud-bgp-operator); a missing binary is an error.
import { spawn } from 'node:child_process';
import { accessSync, constants, createWriteStream, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT } from './sdk.mjs';

/** Access key handed to the emulator with --access-key. */
export const ACCESS_KEY_ID = 'testid';
export const ACCESS_KEY_SECRET = 'testsecret';
/** The emulator's embedded demo topology. */
export const REGION = 'cn-shanghai';
export const VBR = 'vbr-emu00000000000000001';
/** Delay before a created/modified peer turns Available. */
export const PENDING_DELAY = process.env.ABO_SDK_PENDING_DELAY ?? '1s';
const STARTUP_TIMEOUT_MS = Number(process.env.ABO_SDK_STARTUP_TIMEOUT ?? '30') * 1000;

/** Path of the operator binary; throws if it is missing. */
export function emulatorBinary() {
  const bin = path.resolve(REPO_ROOT, process.env.ABO_BIN ?? 'target/debug/alicloud-bgp-operator');
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(`emulator binary ${bin} not found or not executable; ` +
      'build it with `cargo build --bin alicloud-bgp-operator` or set ABO_BIN');
  }
  return bin;
}

/** One running emulator process. */
export class Emulator {
  /** Starts the emulator; resolves once it printed its endpoint. */
  static async start({ config, extraArgs = [] } = {}) {
    const args = ['emulator', '--listen', '127.0.0.1:0', '--print-endpoint',
      '--access-key', `${ACCESS_KEY_ID}:${ACCESS_KEY_SECRET}`, '--pending-delay', PENDING_DELAY];
    if (config) args.push('--config', config);
    args.push(...extraArgs);
    const logPath = path.join(mkdtempSync(path.join(tmpdir(), 'abo-sdk-emu-')), 'emulator.log');
    const log = createWriteStream(logPath);
    const child = spawn(emulatorBinary(), args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' },
    });
    child.stderr.pipe(log);
    const emu = new Emulator(child, logPath, args);
    const lines = createInterface({ input: child.stdout });
    const first = await Promise.race([
      new Promise((resolve) => lines.once('line', resolve)),
      new Promise((resolve) => child.once('exit', (code) => resolve(`<exited with ${code}>`))),
      // unref'd: a pending startup timer must not keep the test process alive afterwards.
      sleep(STARTUP_TIMEOUT_MS, '<timeout>', { ref: false }),
    ]);
    lines.on('line', () => {}); // keep draining stdout
    if (!String(first).startsWith('http://')) {
      await emu.stop();
      throw new Error(`emulator did not print its endpoint (got ${first}); args ${args.join(' ')}; ` +
        `log:\n${emu.logTail()}`);
    }
    emu.endpoint = first.trim().replace(/\/$/, '');
    return emu;
  }

  constructor(child, logPath, args) {
    this.child = child;
    this.logPath = logPath;
    this.args = args;
    this.endpoint = '';
  }

  /** "127.0.0.1:PORT" (what the Tea SDK's Config.endpoint takes). */
  get hostport() {
    return this.endpoint.replace(/^http:\/\//, '');
  }

  /** Stops the process (SIGTERM, then SIGKILL after 10 s). */
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** Last lines of the emulator's stderr log. */
  logTail(lines = 40) {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '<no log>';
    }
  }

  /** Calls /__admin/<path>; returns the decoded JSON (or null). */
  async admin(method, adminPath, body) {
    const res = await fetch(`${this.endpoint}/__admin/${adminPath.replace(/^\//, '')}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`admin ${method} ${adminPath} -> ${res.status}: ${text.slice(0, 500)}`);
    return text.trim() ? JSON.parse(text) : null;
  }

  /** The emulator's full state (GET /__admin/state). */
  state() {
    return this.admin('GET', 'state');
  }
}

/** Polls an async predicate until it returns a truthy value; returns it. */
export async function waitFor(predicate, { timeoutMs = 15_000, intervalMs = 200, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await predicate();
    if (last) return last;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value ${JSON.stringify(last)}`);
}
