// Loads the pinned official Node SDKs from the environment that
// hack/sdk-setup.sh installs outside git (ABO_SDK_DIR, default
// <repo>/target/sdk; the packages live in its node/node_modules).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests/sdk/node/lib -> ../../../..). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

const sdkDir = process.env.ABO_SDK_DIR
  ? path.resolve(process.env.ABO_SDK_DIR)
  : path.join(REPO_ROOT, 'target', 'sdk');
const nodeDir = path.join(sdkDir, 'node');
if (!existsSync(path.join(nodeDir, 'node_modules'))) {
  throw new Error(`Node SDKs not installed in ${nodeDir}: run hack/sdk-setup.sh first`);
}
const sdkRequire = createRequire(path.join(nodeDir, 'package.json'));

/** @alicloud/pop-core 1.8.0: the V1 RPC client (form body on POST). */
export const RPCClient = sdkRequire('@alicloud/pop-core').RPCClient;

/** @alicloud/vpc20160428 7.3.2: the typed V3 client and its models. */
export const Vpc = sdkRequire('@alicloud/vpc20160428');

// Resolve the runtime packages the way the VPC client itself does, so the
// models we build are the classes it was compiled against.
const vpcRequire = createRequire(sdkRequire.resolve('@alicloud/vpc20160428'));

/** @alicloud/openapi-core: Config and the error classes. */
export const OpenApi = vpcRequire('@alicloud/openapi-core');

/** @darabonba/typescript: RuntimeOptions, ExtendsParameters. */
export const Dara = vpcRequire('@darabonba/typescript');

/** Installed version of an SDK package. */
export function versionOf(name) {
  return sdkRequire(`${name}/package.json`).version;
}
