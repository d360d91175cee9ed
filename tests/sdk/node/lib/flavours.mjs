// One uniform calling surface over each official Node SDK flavour:
//  - 'pop-core': @alicloud/pop-core 1.8.0, V1 HMAC-SHA1, POST with every
//    parameter (Signature included) in a form body;
//  - 'tea-v3':   @alicloud/vpc20160428 7.3.2 typed client, ACS3-HMAC-SHA256.
// Parameters and results use the API's wire names; errors become ApiError.
import { Dara, OpenApi, RPCClient, Vpc } from './sdk.mjs';

/** An error answer from the API, as the SDK surfaced it. */
export class ApiError extends Error {
  constructor(flavour, code, status, message, requestId) {
    super(`[${flavour}] HTTP ${status} ${code}: ${message} (RequestId ${requestId})`);
    this.flavour = flavour;
    this.code = code;
    this.status = status;
    this.requestId = requestId;
  }
}

/** UTC yyyy-MM-ddTHH:mm:ssZ, as the SDKs write it. */
export function acsTimestamp(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const lowerFirst = (s) => s.charAt(0).toLowerCase() + s.slice(1);

class PopCoreFlavour {
  constructor(endpoint, keyId, secret, securityToken, apiVersion = '2016-04-28') {
    this.name = 'pop-core';
    this.client = new RPCClient({
      accessKeyId: keyId,
      accessKeySecret: secret,
      securityToken,
      endpoint, // http://127.0.0.1:PORT
      apiVersion,
      opts: { timeout: 10_000 },
    });
  }

  async call(action, params, { timestamp } = {}) {
    // pop-core merges caller params over its defaults, so Timestamp overrides.
    const all = timestamp ? { ...params, Timestamp: acsTimestamp(timestamp) } : params;
    try {
      return await this.client.request(action, all, { method: 'POST', timeout: 10_000 });
    } catch (e) {
      if (e.code && e.data) {
        throw new ApiError(this.name, e.code, e.entry?.response?.statusCode, e.data.Message, e.data.RequestId);
      }
      throw e;
    }
  }
}

class TeaV3Flavour {
  constructor(hostport, keyId, secret, region, securityToken) {
    this.name = 'tea-v3';
    this.client = new Vpc.default(new OpenApi.$OpenApiUtil.Config({
      accessKeyId: keyId,
      accessKeySecret: secret,
      securityToken,
      endpoint: hostport, // 127.0.0.1:PORT
      protocol: 'http',
      regionId: region,
      readTimeout: 10_000,
      connectTimeout: 5_000,
    }));
  }

  async call(action, params, { timestamp } = {}) {
    const Request = Vpc[`${action}Request`];
    if (!Request) throw new Error(`no ${action}Request model in @alicloud/vpc20160428`);
    const request = Dara.cast(params, new Request({}));
    const runtime = new Dara.RuntimeOptions({});
    if (timestamp) {
      runtime.extendsParameters = new Dara.ExtendsParameters({ headers: { 'x-acs-date': acsTimestamp(timestamp) } });
    }
    let response;
    try {
      response = await this.client[`${lowerFirst(action)}WithOptions`](request, runtime);
    } catch (e) {
      if (e instanceof OpenApi.AlibabaCloudError) {
        throw new ApiError(this.name, e.code, e.statusCode, e.message, e.requestId);
      }
      throw e;
    }
    if (response.statusCode !== 200) throw new Error(`${this.name}: HTTP ${response.statusCode} without an error`);
    return response.body.toMap();
  }
}

export const FLAVOURS = ['pop-core', 'tea-v3'];

/** Builds the named flavour aimed at the emulator (securityToken for STS credentials). */
export function makeFlavour(name, emu, keyId, secret, region, securityToken = undefined) {
  if (name === 'pop-core') return new PopCoreFlavour(emu.endpoint, keyId, secret, securityToken);
  if (name === 'tea-v3') return new TeaV3Flavour(emu.hostport, keyId, secret, region, securityToken);
  throw new Error(`unknown flavour ${name}`);
}

/** A pop-core client for STS 2015-04-01 (AssumeRole) aimed at the emulator. */
export function stsClient(emu, keyId, secret) {
  return new PopCoreFlavour(emu.endpoint, keyId, secret, undefined, '2015-04-01');
}
