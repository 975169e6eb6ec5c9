/// <reference lib="dom" />
/**
 * The example web app (examples/web-app) in a real headless browser (Debian's chromium, driven by
 * playwright-core), on this run's release: the user signs in at an OpenID Connect provider
 * (oidc-provider: login and consent pages, authorization code with PKCE), the page trades the ID
 * token for a broker token at the token issuer (its own process, HTTPS, CORS for the app's origin),
 * connects over Web MQTT with TLS, subscribes to its own topic and shows what arrives: its own
 * messages, and nothing of another user's. Every server has a certificate of a throwaway CA,
 * which the browser trusts by key (--ignore-certificate-errors-spki-list), nothing else.
 */
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/apply-stack";
import { brokerInfo, startBroker, type BrokerInfo, type TestBroker } from "../support/broker";
import { endQuietly, mqttConnect, tryPublish } from "../support/clients";
import { startIssuerProcess, type IssuerProcess } from "../support/issuer-process";
import { adminApiOk } from "../support/management";
import { startOidcLogin, type OidcLoginProvider } from "../support/oidc-login";
import { testPki, type TestPki } from "../support/test-pki";
import { generatePrivateKey } from "../support/tls-provider";

const CHROMIUM = "/usr/bin/chromium";
const CLIENT_ID = "acme-web";

let pki: TestPki;
let node: TestBroker;
let info: BrokerInfo;
let idp: OidcLoginProvider;
let issuer: IssuerProcess;
let app: https.Server;
let appOrigin: string;
let browser: Browser;

/** The example's files as they are in the repository, its config.json, and MQTT.js's browser build. */
function serveApp(config: () => unknown): https.Server {
  const files: Record<string, [string, string]> = {
    "/": [path.join(ROOT, "examples/web-app/index.html"), "text/html"],
    "/app.js": [path.join(ROOT, "examples/web-app/app.js"), "text/javascript"],
    "/mqtt.min.js": [path.join(ROOT, "node_modules/mqtt/dist/mqtt.min.js"), "text/javascript"],
  };
  return https.createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, (req, res) => {
    const url = new URL(req.url ?? "/", appOrigin);
    if (url.pathname === "/config.json") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(config()));
      return;
    }
    const file = files[url.pathname];
    if (file === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { "content-type": file[1], "content-security-policy": "default-src 'self'; connect-src 'self' https: wss:; form-action https:" });
    res.end(fs.readFileSync(file[0]));
  });
}

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (.ci/run does)`);
  pki = await testPki();
  const key = await generatePrivateKey("RSA", 3072);
  node = await startBroker({
    broker: { tokens: { resourceServerId: "rabbitmq", signingKeys: ["k1"] } },
    tokenKeys: { k1: createPublicKey(createPrivateKey(key.privateKeyPem)).export({ type: "spki", format: "pem" }).toString() },
    tls: { caCertPem: pki.caCertPem, certPem: pki.serverCertPem, keyPem: pki.serverKeyPem, depth: 1, plaintext: true },
  });
  info = brokerInfo(node);
  await adminApiOk(info, "PUT", "vhosts/acme", {});
  await adminApiOk(info, "PUT", `permissions/acme/${encodeURIComponent(info.adminUsername)}`, { configure: ".*", write: ".*", read: ".*" });

  const appConfig: { value?: unknown } = {};
  app = serveApp(() => appConfig.value);
  await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
  appOrigin = `https://127.0.0.1:${(app.address() as AddressInfo).port}`;
  idp = await startOidcLogin({ clientId: CLIENT_ID, redirectUri: `${appOrigin}/`, appOrigin, tls: { certPem: pki.serverCertPem, keyPem: pki.serverKeyPem } });
  issuer = await startIssuerProcess(
    {
      resourceServerId: "rabbitmq",
      issuerUrl: "https://tokens.test",
      signingKeyId: "k1",
      tenants: {
        acme: {
          vhost: "acme",
          apps: [
            {
              name: "web",
              // No jwksUri: the issuer reads the provider's OpenID configuration.
              identityProvider: { issuer: idp.issuer, audience: CLIENT_ID, caCertificatePem: pki.caCertPem },
              grants: { publish: ["activity/{user}/#"], subscribe: ["client/{client}/#"] },
              allowedOrigins: [appOrigin],
            },
          ],
        },
      },
    },
    key.privateKeyPem,
    { certPem: pki.serverCertPem, keyPem: pki.serverKeyPem, caCertPem: pki.caCertPem },
  );
  appConfig.value = {
    identityProvider: idp.issuer,
    clientId: CLIENT_ID,
    tokenUrl: `${issuer.url}/v1/tenants/acme/apps/web/token`,
    brokerUrl: `wss://127.0.0.1:${info.tls!.webMqttsPort}/ws`,
  };
  // Every server here has the same certificate: the browser trusts its key, and only that.
  const spki = createHash("sha256").update(new X509Certificate(pki.serverCertPem).publicKey.export({ type: "spki", format: "der" })).digest("base64");
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [`--ignore-certificate-errors-spki-list=${spki}`, ...(process.getuid?.() === 0 ? ["--no-sandbox"] : [])],
  });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await issuer?.stop();
  await idp?.stop();
  await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
  await node?.stop();
}, 120_000);

async function signInAs(page: Page, login: string): Promise<void> {
  await page.goto(`${appOrigin}/`);
  await page.click("#sign-in");
  // The provider's login page, then its consent page.
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', "any password");
  await page.click('button[type="submit"]');
  await page.click('button[type="submit"]');
  await page.waitForFunction(() => document.getElementById("status")?.textContent?.startsWith("subscribed as") ?? false, undefined, { timeout: 30_000 });
}

describe("the example web app in a headless browser", () => {
  it("signs in, connects over Web MQTT with TLS, and shows its own messages and no one else's", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await signInAs(page, "alice");
    expect(await page.textContent("#status")).toBe("subscribed as alice to client/alice~1/#");

    const admin = await mqttConnect({ port: info.mqttPort, clientId: "web-app-sender", username: `acme:${info.adminUsername}`, password: info.adminPassword });
    if (!admin.ok) throw new Error(admin.reason);
    try {
      expect(await tryPublish(admin.client, "client/bob~1/greeting", "hello bob")).toBe("acked");
      expect(await tryPublish(admin.client, "client/alice~1/greeting", "hello alice")).toBe("acked");
      await page.waitForSelector("#messages li", { timeout: 10_000 });
      await page.waitForTimeout(500);
      expect(await page.$$eval("#messages li", (lis) => lis.map((li) => li.textContent))).toEqual(["client/alice~1/greeting: hello alice"]);
    } finally {
      await endQuietly(admin.client);
    }

    // From inside the page, with the same token: another user's topic is refused.
    const granted = await page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          const w = window as unknown as { app: { client: { subscribe(f: string, o: object, cb: (e: Error | null, g?: { qos: number }[]) => void): void } } };
          w.app.client.subscribe("client/bob~1/#", { qos: 1 }, (e, g) => resolve(e ? -1 : (g?.[0]?.qos ?? -1)));
        }),
    );
    expect(granted === 128 || granted === -1).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it("keeps no password or key in the page: what it loads holds none", async () => {
    for (const f of ["index.html", "app.js"]) expect(fs.readFileSync(path.join(ROOT, "examples/web-app", f), "utf8")).not.toMatch(/password\s*[:=]\s*["'`]|PRIVATE KEY/);
  });
});
