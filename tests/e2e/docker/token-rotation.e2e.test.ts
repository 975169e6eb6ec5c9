/**
 * A signing-key rotation on a deployed dev platform, as the README tells an operator to do it:
 * `[k1]` -> `[k2, k1]` -> `pulumi up` -> (a token lifetime) -> `[k2]` -> `pulumi up`. A platform of
 * its own (its own prefix and ports), applied to the real engine and then updated twice through
 * the hooks, which replace what the engine would replace. After each step: which keys the broker
 * takes, which one the deployed issuer signs with, and that the broker kept its data.
 */
import * as https from "node:https";
import { decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { endQuietly, mqttConnect, trySubscribe } from "../../support/clients";
import { startDockerEngine } from "../../support/docker-engine";
import { applyDevPlatform, removeDockerPlatform, updateDevPlatform, type AppliedDockerPlatform } from "../../support/docker-platform";
import { idpToken } from "../../support/idp-container";
import { adminApiOk } from "../../support/management";

const docker = inject("docker");
const series = `${inject("broker").major}.${inject("broker").minor}`;

interface Issued {
  readonly token: string;
  readonly kid: string | undefined;
}

async function signIn(p: AppliedDockerPlatform, sub: string): Promise<Issued> {
  const ti = p.info.tokenIssuer;
  const idToken = await idpToken(ti.idp, ti.audience, { sub });
  const body = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const req = https.request(`${ti.url}/v1/tenants/${ti.tenant}/apps/${ti.app}/token`, { method: "POST", headers: { authorization: `Bearer ${idToken}` }, ca: String(p.info.outputs["caCertificatePem"]) }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(text) as Record<string, unknown>) : reject(new Error(`sign-in answered ${res.statusCode}: ${text}`))));
    });
    req.on("error", reject);
    req.end();
  });
  const token = String(body["token"]);
  return { token, kid: decodeProtectedHeader(token).kid };
}

/** Whether the broker takes this token for `user`'s own subscription. */
async function brokerTakes(p: AppliedDockerPlatform, user: string, issued: Issued): Promise<boolean> {
  const node = p.nodes[0]!;
  const ti = p.info.tokenIssuer;
  const c = await mqttConnect({ port: node.tls!.mqttsPort, tls: { ca: String(p.info.outputs["caCertificatePem"]) }, clientId: `${user}~1`, username: `${ti.vhost}:${ti.app}`, password: issued.token });
  if (!c.ok) return false;
  try {
    return (await trySubscribe(c.client, `client/${user}~1/#`)).outcome === "granted";
  } finally {
    await endQuietly(c.client);
  }
}

const signingKeys = (keys: string[]) => (platform: { broker: Record<string, unknown> }) => {
  platform.broker["tokens"] = { ...(platform.broker["tokens"] as Record<string, unknown>), signingKeys: keys };
};

describe(`a signing-key rotation on the deployed dev platform (RabbitMQ ${inject("broker").version}, Docker)`, () => {
  let p: AppliedDockerPlatform;
  let beforeRotation: Issued;
  let duringRotation: Issued;

  beforeAll(async () => {
    p = await applyDevPlatform(await startDockerEngine(), series, 1, { prefix: `${docker.prefix}-rot` });
    await adminApiOk(p.nodes[0]!, "PUT", `vhosts/${p.info.tokenIssuer.vhost}`, {});
    beforeRotation = await signIn(p, "carol");
  }, 600_000);

  afterAll(async () => {
    if (p !== undefined && process.env.E2E_KEEP_BROKER !== "1") await removeDockerPlatform(p.info.socketPath, p.info.prefix, 1);
  });

  it("before: the issuer signs with k1 and the broker takes its tokens", async () => {
    expect(beforeRotation.kid).toBe("k1");
    expect(await brokerTakes(p, "carol", beforeRotation)).toBe(true);
  });

  it("[k2, k1]: the containers are replaced, the issuer signs with k2, and the broker takes both keys' tokens", async () => {
    const before = p.info.tokenSigningKeys["k1"];
    const containersBefore = p.result.registered.filter((r) => r.type === "docker:index/container:Container").map((r) => r.id);
    p = await updateDevPlatform(p, signingKeys(["k2", "k1"]));
    console.log(`[rotation] RabbitMQ ${p.nodes[0]!.version}: [k2, k1] applied in ${p.info.applySeconds.toFixed(1)} s, healthy after ${p.info.healthySeconds.toFixed(1)} s`);
    const containersAfter = p.result.registered.filter((r) => r.type === "docker:index/container:Container").map((r) => r.id);
    // Both the broker (a new public key file) and the issuer (a new signing key) were replaced.
    expect(containersAfter.filter((id) => containersBefore.includes(id))).toEqual([]);
    // k1 kept: the same key, so tokens it signed stay valid.
    expect(p.info.tokenSigningKeys["k1"]).toBe(before);
    expect(Object.keys(p.info.tokenSigningKeys).sort()).toEqual(["k1", "k2"]);
    duringRotation = await signIn(p, "carol");
    expect(duringRotation.kid).toBe("k2");
    expect(await brokerTakes(p, "carol", duringRotation)).toBe(true);
    expect(await brokerTakes(p, "carol", beforeRotation)).toBe(true);
  }, 600_000);

  it("[k2]: k1's tokens are refused, k2's still taken, and the broker kept its vhost", async () => {
    p = await updateDevPlatform(p, signingKeys(["k2"]));
    expect(Object.keys(p.info.tokenSigningKeys)).toEqual(["k2"]);
    expect(await brokerTakes(p, "carol", beforeRotation)).toBe(false);
    expect(await brokerTakes(p, "carol", duringRotation)).toBe(true);
    expect((await signIn(p, "carol")).kid).toBe("k2");
    // The data volume outlived both replacements: the vhost made before the rotation is there.
    await adminApiOk(p.nodes[0]!, "GET", `vhosts/${p.info.tokenIssuer.vhost}`);
    // The private key of a dropped id is gone from the state: nothing can sign with it any more.
    expect(p.result.registered.some((r) => r.name === "token-keys-k1")).toBe(false);
  }, 600_000);
});
