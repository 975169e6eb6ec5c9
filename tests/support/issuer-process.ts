/**
 * The token issuer as its deployment runs it: `issuer/main.ts` in a process of its own, reading
 * its config and signing key from files (ISSUER_CONFIG_FILE, ISSUER_SIGNING_KEY_FILE), with the
 * identity provider's CA trusted through the app config.
 */
import { spawn } from "node:child_process";
import * as https from "node:https";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ROOT } from "./apply-stack";
import { freePort } from "./broker";

export interface IssuerProcess {
  readonly url: string;
  /** POST an ID token for `tenant`/`app`; the issuer's status and JSON answer. */
  signIn(tenant: string, app: string, idToken: string, origin?: string): Promise<{ status: number; body: Record<string, unknown> }>;
  stop(): Promise<void>;
}

/** `tls`: serve HTTPS with this certificate and key (a browser page on HTTPS may call only HTTPS). */
export async function startIssuerProcess(config: unknown, signingKeyPem: string, tls?: { certPem: string; keyPem: string; caCertPem: string }): Promise<IssuerProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "token-issuer-"));
  const configFile = path.join(dir, "issuer.json");
  const keyFile = path.join(dir, "signing-key.pem");
  fs.writeFileSync(configFile, JSON.stringify(config));
  fs.writeFileSync(keyFile, signingKeyPem, { mode: 0o600 });
  const tlsEnv: Record<string, string> = {};
  if (tls !== undefined) {
    tlsEnv["ISSUER_TLS_CERT_FILE"] = path.join(dir, "cert.pem");
    tlsEnv["ISSUER_TLS_KEY_FILE"] = path.join(dir, "key.pem");
    fs.writeFileSync(tlsEnv["ISSUER_TLS_CERT_FILE"], tls.certPem);
    fs.writeFileSync(tlsEnv["ISSUER_TLS_KEY_FILE"], tls.keyPem, { mode: 0o600 });
  }
  const port = await freePort();
  const child = spawn(path.join(ROOT, "node_modules/.bin/tsx"), [path.join(ROOT, "issuer/main.ts")], {
    env: { ...process.env, ISSUER_CONFIG_FILE: configFile, ISSUER_SIGNING_KEY_FILE: keyFile, PORT: String(port), ...tlsEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr.on("data", (c: Buffer) => (output += c.toString()));
  const url = `${tls !== undefined ? "https" : "http"}://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the issuer exited ${child.exitCode}: ${output}`);
    if (await request(`${url}/healthz`, "GET", {}, tls?.caCertPem).then((r) => r.status === 200).catch(() => false)) break;
    if (Date.now() > deadline) throw new Error(`the issuer did not answer in 30 s: ${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    async signIn(tenant, app, idToken, origin) {
      const res = await request(`${url}/v1/tenants/${tenant}/apps/${app}/token`, "POST", { authorization: `Bearer ${idToken}`, ...(origin !== undefined ? { origin } : {}) }, tls?.caCertPem);
      return { status: res.status, body: JSON.parse(res.body) as Record<string, unknown> };
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One HTTP(S) request; `ca` for HTTPS with the test CA (fetch cannot take one). */
function request(url: string, method: string, headers: Record<string, string>, ca?: string): Promise<{ status: number; body: string }> {
  if (ca === undefined) return fetch(url, { method, headers }).then(async (r) => ({ status: r.status, body: await r.text() }));
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}
