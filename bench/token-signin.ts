/**
 * Benchmarks of token sign-in (not tests: they print figures, side by side, from one run), on a
 * node of the release E2E_BROKER names (default 4.3) rendered with `broker.tokens`:
 *
 *   npm run bench:tokens                   RabbitMQ 4.3
 *   E2E_BROKER=3.10 npm run bench:tokens   another release
 *
 * 1. Tokens minted per second by the token issuer: in process (verify the ID token, compute the
 *    scopes, sign RS256 with the platform's RSA 3072 key) and over HTTP (issuer/server.ts in its
 *    own process, as deployed), 64 requests in flight. The ID tokens are made beforehand.
 * 2. MQTT connects per second with tokens vs with passwords (an internal user), 1,000 clients per
 *    round, 100 CONNECTs in flight, rounds alternating, on the same node in the same run.
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import type { MqttClient } from "mqtt";
import { parseTokenApps } from "../core/token-apps";
import { createIssuer } from "../issuer/issuer";
import { brokerInfo, startBroker, type BrokerInfo } from "../tests/support/broker";
import { endQuietly, mqttConnect } from "../tests/support/clients";
import { startIssuerProcess } from "../tests/support/issuer-process";
import { adminApiOk } from "../tests/support/management";
import { startOidcProvider } from "../tests/support/oidc-provider";
import { generatePrivateKey } from "../tests/support/tls-provider";

const MINTS = 3000;
const HTTP_IN_FLIGHT = 64;
const CLIENTS = 1000;
const CONNECTS_IN_FLIGHT = 100;
const ROUNDS = 3;

async function pool<T, R>(items: readonly T[], inFlight: number, work: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await work(items[i]!, i);
      }
    }),
  );
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function connectAll(info: BrokerInfo, logins: { clientId: string; username: string; password: string }[]): Promise<{ perSecond: number; refused: number }> {
  const clients: MqttClient[] = [];
  let refused = 0;
  const t0 = process.hrtime.bigint();
  await pool(logins, CONNECTS_IN_FLIGHT, async (l) => {
    const c = await mqttConnect({ port: info.mqttPort, ...l });
    if (c.ok) clients.push(c.client);
    else refused++;
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await Promise.all(clients.map((c) => endQuietly(c)));
  return { perSecond: logins.length / seconds, refused };
}

async function main(): Promise<void> {
  const idp = await startOidcProvider();
  const key = await generatePrivateKey("RSA", 3072);
  const node = await startBroker({
    broker: { tokens: { resourceServerId: "rabbitmq", signingKeys: ["k1"] } },
    tokenKeys: { k1: createPublicKey(createPrivateKey(key.privateKeyPem)).export({ type: "spki", format: "pem" }).toString() },
  });
  const info = brokerInfo(node);
  const apps = [
    {
      name: "web",
      identityProvider: { issuer: idp.issuer, audience: "web-client", jwksUri: idp.jwksUri, caCertificatePem: idp.caCertPem },
      grants: { publish: ["activity/{user}/#"], subscribe: ["client/{client}/#"] },
    },
  ];
  const config = { resourceServerId: "rabbitmq", issuerUrl: "https://tokens.bench", signingKeyId: "k1", tenants: { acme: { vhost: "acme", apps } } };
  const issuerProcess = await startIssuerProcess(config, key.privateKeyPem);
  try {
    await adminApiOk(info, "PUT", "vhosts/acme", {});
    const users = Array.from({ length: MINTS }, (_, i) => `user-${i + 1}`);
    const idTokens = await Promise.all(users.map((u) => idp.idToken("web-client", { sub: u, exp: Math.floor(Date.now() / 1000) + 3600 })));

    const inProcess = createIssuer({ resourceServerId: "rabbitmq", issuerUrl: "https://tokens.bench", signingKey: { kid: "k1", privateKey: createPrivateKey(key.privateKeyPem) }, tenants: { acme: { vhost: "acme", apps: parseTokenApps(apps, "bench") } } });
    await inProcess.issue("acme", "web", idTokens[0]!); // JWKS fetched once, as in service
    let t0 = process.hrtime.bigint();
    for (const t of idTokens) await inProcess.issue("acme", "web", t);
    const inProcessRate = MINTS / (Number(process.hrtime.bigint() - t0) / 1e9);

    await issuerProcess.signIn("acme", "web", idTokens[0]!);
    t0 = process.hrtime.bigint();
    const issued = await pool(idTokens, HTTP_IN_FLIGHT, async (t) => {
      const r = await issuerProcess.signIn("acme", "web", t);
      if (r.status !== 200) throw new Error(`sign-in refused: ${r.status}`);
      return r.body as { token: string; username: string; clientIds: string[] };
    });
    const httpRate = MINTS / (Number(process.hrtime.bigint() - t0) / 1e9);

    // Passwords: one internal user, as a service or gateway would have, with a client id each.
    const password = "bench-password-0123456789";
    await adminApiOk(info, "PUT", "users/bench-pw", { password, tags: "" });
    await adminApiOk(info, "PUT", "permissions/acme/bench-pw", { configure: "^mqtt-subscription-", write: "^amq\\.topic$", read: "^amq\\.topic$" });
    const tokenLogins = issued.slice(0, CLIENTS).map((i) => ({ clientId: i.clientIds[0]!, username: i.username, password: i.token }));
    const passwordLogins = Array.from({ length: CLIENTS }, (_, i) => ({ clientId: `pw-${i + 1}`, username: "acme:bench-pw", password }));
    const tokenRates: number[] = [];
    const passwordRates: number[] = [];
    let refused = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const t = await connectAll(info, tokenLogins);
      const p = await connectAll(info, passwordLogins);
      tokenRates.push(t.perSecond);
      passwordRates.push(p.perSecond);
      refused += t.refused + p.refused;
    }
    const f = (x: number) => x.toFixed(0);
    console.log(`\n[bench] token sign-in, RabbitMQ ${info.version}, this machine (${MINTS} mints, ${CLIENTS} clients x ${ROUNDS} rounds)`);
    console.log(`tokens minted per second: ${f(inProcessRate)} in process one at a time, ${f(httpRate)} over HTTP (${HTTP_IN_FLIGHT} in flight, one issuer process)`);
    console.log(`MQTT connects per second: tokens ${tokenRates.map(f).join(" / ")} (median ${f(median(tokenRates))}), passwords ${passwordRates.map(f).join(" / ")} (median ${f(median(passwordRates))}); ratio tokens/passwords ${(median(tokenRates) / median(passwordRates)).toFixed(2)}; refused ${refused}`);
  } finally {
    await issuerProcess.stop();
    await node.stop();
    await idp.stop();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
