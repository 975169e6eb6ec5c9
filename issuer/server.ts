/**
 * The token issuer's HTTP interface:
 * - `POST /v1/tenants/<tenant>/apps/<app>/token` with `Authorization: Bearer <ID token>` answers
 *   `{ token, expiresAt, username, vhost, user, clientIds }` (issuer/issuer.ts), or
 *   `{ error }` with 400, 401, 403, 404 or 502;
 * - CORS for the origins the app lists (`allowedOrigins`), and only for those;
 * - `GET /healthz` for probes.
 * Nothing is kept between requests. `main` runs it from files (the deployment mounts them):
 * ISSUER_CONFIG_FILE (JSON, below), ISSUER_SIGNING_KEY_FILE (PEM), and optionally
 * ISSUER_TLS_CERT_FILE / ISSUER_TLS_KEY_FILE to serve HTTPS itself; PORT (default 8443).
 */
import { createPrivateKey } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { ConfigError } from "../core/errors";
import { NAME_PATTERN } from "../core/names";
import { DEFAULT_ISSUER_PORT } from "../core/platform-config";
import { parseIssuerFileContent } from "../core/token-issuer";
import { IssueError, createIssuer, type Issuer, type IssuerSettings } from "./issuer";

const TOKEN_PATH = /^\/v1\/tenants\/([^/]+)\/apps\/([^/]+)\/token$/;

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", "x-content-type-options": "nosniff", ...headers });
  res.end(text);
}

/** The request handler; `issuer` does the work. */
export function issuerHandler(issuer: Issuer): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://issuer");
    if (url.pathname === "/healthz" && req.method === "GET") return send(res, 200, { ok: true });
    const m = TOKEN_PATH.exec(url.pathname);
    const tenant = m?.[1];
    const app = m?.[2];
    if (tenant === undefined || app === undefined || !NAME_PATTERN.test(tenant) || !NAME_PATTERN.test(app)) return send(res, 404, { error: "not found" });
    const origin = req.headers.origin;
    const allowed = issuer.allowedOrigins(tenant, app);
    const cors: Record<string, string> = {};
    if (origin !== undefined) {
      // A browser call from an origin the app does not list is refused outright, preflight or not.
      if (allowed === undefined || !allowed.includes(origin)) return send(res, 403, { error: "origin not allowed" }, { vary: "Origin" });
      Object.assign(cors, { "access-control-allow-origin": origin, vary: "Origin" });
    }
    if (req.method === "OPTIONS") {
      res.writeHead(204, { ...cors, "access-control-allow-methods": "POST", "access-control-allow-headers": "authorization", "access-control-max-age": "600" });
      return res.end();
    }
    if (req.method !== "POST") return send(res, 405, { error: "use POST" }, { allow: "POST, OPTIONS", ...cors });
    const auth = req.headers.authorization;
    const idToken = auth !== undefined && /^Bearer [A-Za-z0-9_.-]+$/.test(auth) ? auth.slice("Bearer ".length) : undefined;
    req.resume();
    if (idToken === undefined) return send(res, 401, { error: "send the identity provider's ID token as Authorization: Bearer <token>" }, cors);
    issuer.issue(tenant, app, idToken).then(
      (issued) => send(res, 200, issued, cors),
      (e: unknown) => {
        if (e instanceof IssueError) return send(res, e.status, { error: e.message }, cors);
        // Never echo an unexpected error: it could hold a token or a key.
        console.error("token issuer: unexpected error", e instanceof Error ? e.name : typeof e);
        return send(res, 500, { error: "internal error" }, cors);
      },
    );
  };
}

/** Validates the config file's content (core/token-issuer.ts); every problem names its key. */
export function parseIssuerFile(raw: unknown, signingKeyPem: string): IssuerSettings {
  const file = parseIssuerFileContent(raw);
  const privateKey = createPrivateKey(signingKeyPem);
  if (privateKey.asymmetricKeyType !== "rsa") throw new ConfigError([{ key: "ISSUER_SIGNING_KEY_FILE", message: "must hold an RSA private key (the broker takes RS256)" }]);
  return { resourceServerId: file.resourceServerId, issuerUrl: file.issuerUrl, signingKey: { kid: file.signingKeyId, privateKey }, tenants: file.tenants };
}

function required(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === "") throw new Error(`${name} is required`);
  return v;
}

export async function main(): Promise<void> {
  const settings = parseIssuerFile(JSON.parse(fs.readFileSync(required("ISSUER_CONFIG_FILE"), "utf8")), fs.readFileSync(required("ISSUER_SIGNING_KEY_FILE"), "utf8"));
  const issuer = createIssuer(settings);
  // Keys first, then the port: a replica takes sign-ins (and passes its probe) once it has them.
  for (const w of await issuer.warm()) {
    if (w.error !== undefined) console.error(`token issuer: the keys of ${w.tenant}/${w.app}'s identity provider could not be read yet (retried at sign-in): ${w.error}`);
  }
  const handler = issuerHandler(issuer);
  const certFile = process.env.ISSUER_TLS_CERT_FILE;
  const keyFile = process.env.ISSUER_TLS_KEY_FILE;
  const server =
    certFile !== undefined && keyFile !== undefined ? https.createServer({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) }, handler) : http.createServer(handler);
  const port = Number(process.env.PORT ?? String(DEFAULT_ISSUER_PORT));
  server.listen(port, () => console.log(`token issuer listening on ${port} (${certFile !== undefined ? "https" : "http"}) for tenants ${Object.keys(settings.tenants).join(", ")}`));
}

/** Runs `main`, and exits 1 with the reason (never a key or token) when it cannot start. */
export function run(): void {
  main().catch((e: unknown) => {
    console.error(`token issuer: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
