/**
 * The token issuer: a signed-in app user trades the ID token of its tenant's identity provider for
 * a short-lived broker token. The ID token is verified against that provider's issuer, audience,
 * algorithms and keys (fetched from its JWKS, cached by jose); the broker token carries the
 * tenant's grant templates with that user's id written in literally (core/token-scopes.ts), for the
 * tenant's vhost only, and is signed with the platform's key under its key id. Stateless: every
 * replica with the same settings mints the same kind of token.
 */
import { randomUUID, type KeyObject } from "node:crypto";
import * as https from "node:https";
import { SignJWT, createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from "jose";
import { appUsername, scopeUserId, type TokenApp } from "../core/token-apps";
import { appClientIds, appScopes } from "../core/token-scopes";

export interface IssuerTenant {
  readonly vhost: string;
  readonly apps: readonly TokenApp[];
}

export interface IssuerSettings {
  /** The broker's `auth_oauth2.resource_server_id`: the tokens' audience and scope prefix. */
  readonly resourceServerId: string;
  /** `iss` of the broker tokens (the issuer's public URL). */
  readonly issuerUrl: string;
  readonly signingKey: { readonly kid: string; readonly privateKey: KeyObject };
  readonly tenants: Readonly<Record<string, IssuerTenant>>;
  /** Leeway for the ID token's time claims. */
  readonly clockToleranceSeconds?: number;
}

export interface IssuedToken {
  readonly token: string;
  /** Seconds since the epoch. */
  readonly expiresAt: number;
  /** What the app connects with: username `<vhost>:<app>`, the token as password, one of the client ids. */
  readonly username: string;
  readonly vhost: string;
  readonly user: string;
  readonly clientIds: readonly string[];
}

/** A refusal with the HTTP status the server answers and a message safe to show the caller. */
export class IssueError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 502,
    message: string,
  ) {
    super(message);
    this.name = "IssueError";
  }
}

/** A fetch for jose over node:https, trusting `ca` (a provider with a private CA). */
function fetchTrusting(ca: string): typeof fetch {
  return ((input: string | URL | Request, init?: RequestInit) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
      const req = https.request(url, { method: init?.method ?? "GET", ca, headers: init?.headers as Record<string, string> | undefined, signal: init?.signal ?? undefined }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") headers.set(k, v);
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 502, headers }));
        });
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    }));
}

async function discoverJwksUri(app: TokenApp, doFetch: typeof fetch): Promise<string> {
  const idp = app.identityProvider;
  const res = await doFetch(new URL(".well-known/openid-configuration", idp.issuer.endsWith("/") ? idp.issuer : `${idp.issuer}/`));
  if (!res.ok) throw new IssueError(502, `the identity provider's OpenID configuration answered ${res.status}`);
  const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
  // OpenID Connect Discovery 1.0, section 4.3: the document's issuer must be the one asked for.
  if (doc.issuer !== idp.issuer) throw new IssueError(502, "the identity provider's OpenID configuration names another issuer");
  if (typeof doc.jwks_uri !== "string" || !URL.canParse(doc.jwks_uri) || new URL(doc.jwks_uri).protocol !== "https:") {
    throw new IssueError(502, "the identity provider's OpenID configuration has no https jwks_uri");
  }
  return doc.jwks_uri;
}

/** How long one fetch of a provider's keys may take (jose's default, 5 s, was seen to run out on a busy machine). */
export const JWKS_TIMEOUT_MS = 15_000;

export interface Issuer {
  issue(tenant: string, app: string, idToken: string): Promise<IssuedToken>;
  /**
   * Fetches every app's provider keys now, so that the first sign-ins after a start do not all
   * wait on it. A provider that cannot be reached is reported, not fatal: its apps retry at sign-in.
   */
  warm(): Promise<{ tenant: string; app: string; error?: string }[]>;
  /** The app's allowed web origins, or undefined when the app does not exist. */
  allowedOrigins(tenant: string, app: string): readonly string[] | undefined;
}

export function createIssuer(settings: IssuerSettings): Issuer {
  const keySets = new Map<TokenApp, Promise<JWTVerifyGetKey & { reload(): Promise<void> }>>();
  const keysOf = (app: TokenApp): Promise<JWTVerifyGetKey & { reload(): Promise<void> }> => {
    let keys = keySets.get(app);
    if (keys === undefined) {
      const idp = app.identityProvider;
      const doFetch = idp.caCertificatePem !== undefined ? fetchTrusting(idp.caCertificatePem) : fetch;
      keys = (async () => {
        const uri = idp.jwksUri ?? (await discoverJwksUri(app, doFetch));
        return createRemoteJWKSet(new URL(uri), { [customFetch]: doFetch, timeoutDuration: JWKS_TIMEOUT_MS });
      })();
      // A failed discovery is retried on the next sign-in.
      keys.catch(() => keySets.delete(app));
      keySets.set(app, keys);
    }
    return keys;
  };
  const find = (tenant: string, appName: string) => {
    const t = Object.hasOwn(settings.tenants, tenant) ? settings.tenants[tenant] : undefined;
    const app = t?.apps.find((a) => a.name === appName);
    return t !== undefined && app !== undefined ? { t, app } : undefined;
  };

  return {
    allowedOrigins: (tenant, app) => find(tenant, app)?.app.allowedOrigins,
    async warm() {
      const apps = Object.entries(settings.tenants).flatMap(([tenant, t]) => t.apps.map((app) => ({ tenant, app })));
      return Promise.all(
        apps.map(async ({ tenant, app }) => {
          try {
            await (await keysOf(app)).reload();
            return { tenant, app: app.name };
          } catch (e) {
            keySets.delete(app);
            return { tenant, app: app.name, error: e instanceof Error ? e.message : String(e) };
          }
        }),
      );
    },
    async issue(tenant, appName, idToken) {
      const found = find(tenant, appName);
      if (found === undefined) throw new IssueError(404, "no such tenant or app");
      const { t, app } = found;
      const idp = app.identityProvider;
      let claims: Record<string, unknown>;
      try {
        const verified = await jwtVerify(idToken, await keysOf(app), {
          issuer: idp.issuer,
          audience: idp.audience,
          algorithms: [...idp.algorithms],
          requiredClaims: ["exp", "iat", idp.userClaim],
          clockTolerance: settings.clockToleranceSeconds ?? 30,
        });
        claims = verified.payload;
      } catch (e) {
        if (e instanceof IssueError) throw e;
        if (e instanceof joseErrors.JOSEError && !(e instanceof joseErrors.JWKSTimeout)) throw new IssueError(401, `the ID token was refused: ${e.code}`);
        throw new IssueError(502, "the identity provider's keys could not be read");
      }
      const user = scopeUserId(app, claims[idp.userClaim]);
      if (!user.ok) throw new IssueError(403, user.reason);
      const now = Math.floor(Date.now() / 1000);
      const expiresAt = now + app.tokenLifetimeSeconds;
      const scope = appScopes(app.grants, { vhost: t.vhost, resourceServerId: settings.resourceServerId, user: user.user, clientIds: app.clientIdsPerUser });
      // No nbf: the broker does not check it (tests/e2e/token-scopes.e2e.test.ts). exp always: 3.10 and 4.0 would take a token without.
      const token = await new SignJWT({ scope })
        .setProtectedHeader({ alg: "RS256", kid: settings.signingKey.kid, typ: "JWT" })
        .setIssuer(settings.issuerUrl)
        .setSubject(user.user)
        .setAudience([settings.resourceServerId])
        .setIssuedAt(now)
        .setExpirationTime(expiresAt)
        .setJti(randomUUID())
        .sign(settings.signingKey.privateKey);
      return { token, expiresAt, username: appUsername(t.vhost, app.name), vhost: t.vhost, user: user.user, clientIds: appClientIds(user.user, app.clientIdsPerUser) };
    },
  };
}
