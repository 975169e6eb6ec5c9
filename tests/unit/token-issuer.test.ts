/**
 * The token issuer (issuer/) against a local OpenID Connect provider over HTTPS
 * (tests/support/oidc-provider.ts): what it mints for a verified sign-in, every sign-in it must
 * refuse, how user ids that could widen a scope are refused or mapped, and its HTTP interface
 * (CORS only for the app's origins). The broker's side of the same tokens is proven in
 * tests/e2e/token-issuer.e2e.test.ts.
 */
import { generateKeyPairSync } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { decodeProtectedHeader, generateKeyPair, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../core/errors";
import { hashedUserId, parseTokenApps, type TokenApp } from "../../core/token-apps";
import { appScopes } from "../../core/token-scopes";
import { IssueError, createIssuer, type IssuedToken, type Issuer } from "../../issuer/issuer";
import { issuerHandler, parseIssuerFile } from "../../issuer/server";
import { startOidcProvider, type LocalOidcProvider } from "../support/oidc-provider";

const signing = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ISSUER_URL = "https://tokens.example.com";

let idp: LocalOidcProvider;
let issuer: Issuer;
let apps: TokenApp[];

function appConfig(over: Record<string, unknown> = {}, idpOver: Record<string, unknown> = {}) {
  return {
    name: "web",
    identityProvider: { issuer: idp.issuer, audience: "acme-web", caCertificatePem: idp.caCertPem, ...idpOver },
    grants: { publish: ["activity/{user}/#"], subscribe: ["client/{client}/#"] },
    clientIdsPerUser: 2,
    tokenLifetimeSeconds: 600,
    allowedOrigins: ["https://app.acme.example"],
    ...over,
  };
}

beforeAll(async () => {
  idp = await startOidcProvider();
  apps = parseTokenApps(
    [
      appConfig(),
      appConfig({ name: "hashed", userIds: "hashed" }),
      appConfig({ name: "discovered" }, { jwksUri: undefined }),
      appConfig({ name: "ec-only" }, { algorithms: ["ES256"] }),
      appConfig({ name: "email" }, { userClaim: "email" }),
    ],
    "tenant.apps",
  );
  issuer = createIssuer({ resourceServerId: "rabbitmq", issuerUrl: ISSUER_URL, signingKey: { kid: "k1", privateKey: signing.privateKey }, tenants: { acme: { vhost: "acme", apps } } });
});

afterAll(async () => {
  await idp?.stop();
});

const refusal = async (p: Promise<unknown>): Promise<{ status: number; message: string }> => {
  try {
    await p;
  } catch (e) {
    if (e instanceof IssueError) return { status: e.status, message: e.message };
    throw e;
  }
  throw new Error("expected a refusal, got a token");
};

describe("a verified sign-in gets a broker token", () => {
  let issued: IssuedToken;
  beforeAll(async () => {
    issued = await issuer.issue("acme", "web", await idp.idToken("acme-web", { sub: "alice" }));
  });

  it("signed RS256 under the platform's key id, verifiable with its public key, for the broker's audience", async () => {
    expect(decodeProtectedHeader(issued.token)).toEqual({ alg: "RS256", kid: "k1", typ: "JWT" });
    const { payload } = await jwtVerify(issued.token, signing.publicKey, { audience: "rabbitmq", issuer: ISSUER_URL, algorithms: ["RS256"] });
    expect(payload.sub).toBe("alice");
    expect(payload.aud).toEqual(["rabbitmq"]);
  });

  it("with the tenant's templates written for that user, in the tenant's vhost only", async () => {
    const { payload } = await jwtVerify(issued.token, signing.publicKey);
    const grants = apps[0]!.grants;
    expect(payload["scope"]).toEqual(appScopes(grants, { vhost: "acme", resourceServerId: "rabbitmq", user: "alice", clientIds: 2 }));
    for (const s of payload["scope"] as string[]) expect(s).toMatch(/^rabbitmq\.(read|write|configure):acme\//);
  });

  it("expiring after the app's lifetime, with no nbf (the broker does not check it) and a unique id", async () => {
    const { payload } = await jwtVerify(issued.token, signing.publicKey);
    expect(payload.exp! - payload.iat!).toBe(600);
    expect(issued.expiresAt).toBe(payload.exp);
    expect(payload.nbf).toBeUndefined();
    const again = await issuer.issue("acme", "web", await idp.idToken("acme-web", { sub: "alice" }));
    expect((await jwtVerify(again.token, signing.publicKey)).payload.jti).not.toBe(payload.jti);
  });

  it("and tells the app how to connect: username <vhost>:<app>, its client ids", () => {
    expect(issued).toMatchObject({ username: "acme:web", vhost: "acme", user: "alice", clientIds: ["alice~1", "alice~2"] });
  });

  it("finds the provider's keys through its OpenID configuration when no jwksUri is given", async () => {
    const t = await issuer.issue("acme", "discovered", await idp.idToken("acme-web", { sub: "bob" }));
    expect(t.user).toBe("bob");
  });

  it("takes the user id from the claim the app names", async () => {
    const t = await issuer.issue("acme", "email", await idp.idToken("acme-web", { sub: "x", email: "carol" }));
    expect(t.user).toBe("carol");
  });
});

describe("warming up at start", () => {
  it("fetches every app's provider keys before the first sign-in; an unreachable provider is reported, not fatal", async () => {
    const [good, unreachable] = parseTokenApps(
      [appConfig({ name: "good" }), appConfig({ name: "unreachable" }, { jwksUri: "https://127.0.0.1:1/jwks" })],
      "tenant.apps",
    );
    const i = createIssuer({ resourceServerId: "rabbitmq", issuerUrl: ISSUER_URL, signingKey: { kid: "k1", privateKey: signing.privateKey }, tenants: { acme: { vhost: "acme", apps: [good!, unreachable!] } } });
    const before = idp.jwksFetches();
    const report = await i.warm();
    expect(idp.jwksFetches()).toBe(before + 1);
    expect(report.map((r) => [r.app, r.error === undefined])).toEqual([
      ["good", true],
      ["unreachable", false],
    ]);
    // The warmed app signs in without fetching again.
    await i.issue("acme", "good", await idp.idToken("acme-web", { sub: "alice" }));
    expect(idp.jwksFetches()).toBe(before + 1);
  });
});

describe("sign-ins it refuses, minting nothing", () => {
  const otherKey = generateKeyPair("RS256");

  it.each<[string, () => Promise<string>, string, number]>([
    ["from another issuer", () => idp.idToken("acme-web", { sub: "alice", iss: "https://evil.example.com/realm" }), "web", 401],
    ["for another app (audience)", () => idp.idToken("other-app", { sub: "alice" }), "web", 401],
    ["expired", () => idp.idToken("acme-web", { sub: "alice", iat: Math.floor(Date.now() / 1000) - 900, exp: Math.floor(Date.now() / 1000) - 300 }), "web", 401],
    ["without an expiry", () => idp.idToken("acme-web", { sub: "alice", exp: undefined }), "web", 401],
    ["signed by a key the provider does not publish, under its kid", async () => idp.idToken("acme-web", { sub: "alice" }, { key: (await otherKey).privateKey }), "web", 401],
    ["unsigned (alg none)", async () => `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${Buffer.from(JSON.stringify({ sub: "alice", iss: idp.issuer, aud: "acme-web", iat: 1, exp: 9999999999 })).toString("base64url")}.`, "web", 401],
    ["with an algorithm the app does not accept (RS256 where only ES256 is)", () => idp.idToken("acme-web", { sub: "alice" }), "ec-only", 401],
    ["without the user claim", () => idp.idToken("acme-web", { sub: "alice" }), "email", 401],
    ["that is not a JWT", async () => "not-a-token", "web", 401],
  ])("%s", async (_what, make, app, status) => {
    const r = await refusal(issuer.issue("acme", app, await make()));
    expect(r.status).toBe(status);
  });

  it("for a tenant or app it does not know", async () => {
    const token = await idp.idToken("acme-web", { sub: "alice" });
    expect((await refusal(issuer.issue("globex", "web", token))).status).toBe(404);
    expect((await refusal(issuer.issue("acme", "mobile", token))).status).toBe(404);
    expect((await refusal(issuer.issue("__proto__", "web", token))).status).toBe(404);
  });

  it("when the provider's OpenID configuration names another issuer", async () => {
    const local = await startOidcProvider();
    local.misdirectDiscovery();
    const [app] = parseTokenApps([appConfig({}, { issuer: local.issuer, jwksUri: undefined, caCertificatePem: local.caCertPem })], "tenant.apps");
    const i = createIssuer({ resourceServerId: "rabbitmq", issuerUrl: ISSUER_URL, signingKey: { kid: "k1", privateKey: signing.privateKey }, tenants: { acme: { vhost: "acme", apps: [app!] } } });
    const r = await refusal(i.issue("acme", "web", await local.idToken("acme-web", { sub: "alice" })));
    await local.stop();
    expect(r).toEqual({ status: 502, message: "the identity provider's OpenID configuration names another issuer" });
  });
});

describe("user ids that could widen a scope", () => {
  const unsafe = ["*", "a*", "a.b", "a/b", "#", "a+b", "a%2Fb", "a:b", "a~1", "a b", "a\tb", "a\u0000b", "ü", "é".repeat(3), "-a", "x".repeat(129)];

  it.each(unsafe.map((u) => [JSON.stringify(u), u]))("%s: refused by an app that keeps the provider's ids", async (_shown, user) => {
    const r = await refusal(issuer.issue("acme", "web", await idp.idToken("acme-web", { sub: user })));
    expect(r.status).toBe(403);
    expect(r.message).toMatch(/is not a usable user id/);
  });

  it.each(unsafe.map((u) => [JSON.stringify(u), u]))("%s: mapped to h + 32 hex digits of SHA-256(issuer, id) by an app with userIds: hashed", async (_shown, user) => {
    const t = await issuer.issue("acme", "hashed", await idp.idToken("acme-web", { sub: user }));
    expect(t.user).toMatch(/^h[0-9a-f]{32}$/);
    expect(t.user).toBe(hashedUserId(idp.issuer, user));
    const { payload } = await jwtVerify(t.token, signing.publicKey);
    for (const s of payload["scope"] as string[]) expect(s).toContain(t.user);
  });

  it("hashed ids differ per provider and per user, and are stable", () => {
    expect(hashedUserId("https://a.example", "u")).toBe(hashedUserId("https://a.example", "u"));
    expect(hashedUserId("https://a.example", "u")).not.toBe(hashedUserId("https://b.example", "u"));
    expect(hashedUserId("https://a.example", "u")).not.toBe(hashedUserId("https://a.example", "v"));
  });
});

describe("the HTTP interface", () => {
  let server: http.Server;
  let base: string;
  beforeAll(async () => {
    server = http.createServer(issuerHandler(issuer));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });
  const post = async (path: string, headers: Record<string, string>) => fetch(`${base}${path}`, { method: "POST", headers });

  it("answers a token for a bearer ID token, not cached, with CORS for the app's origin", async () => {
    const res = await post("/v1/tenants/acme/apps/web/token", { authorization: `Bearer ${await idp.idToken("acme-web", { sub: "alice" })}`, origin: "https://app.acme.example" });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.acme.example");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(((await res.json()) as IssuedToken).clientIds).toEqual(["alice~1", "alice~2"]);
  });

  it("refuses a browser call from an origin the app does not list, before looking at the token", async () => {
    const res = await post("/v1/tenants/acme/apps/web/token", { authorization: `Bearer ${await idp.idToken("acme-web", { sub: "alice" })}`, origin: "https://evil.example" });
    expect(res.status).toBe(403);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("answers the preflight of a listed origin only", async () => {
    const ok = await fetch(`${base}/v1/tenants/acme/apps/web/token`, { method: "OPTIONS", headers: { origin: "https://app.acme.example" } });
    expect(ok.status).toBe(204);
    expect(ok.headers.get("access-control-allow-headers")).toBe("authorization");
    const no = await fetch(`${base}/v1/tenants/acme/apps/web/token`, { method: "OPTIONS", headers: { origin: "https://evil.example" } });
    expect(no.status).toBe(403);
  });

  it("says what is missing without a bearer token, refuses other methods and unknown paths, answers health", async () => {
    expect((await post("/v1/tenants/acme/apps/web/token", {})).status).toBe(401);
    expect((await fetch(`${base}/v1/tenants/acme/apps/web/token`)).status).toBe(405);
    expect((await post("/v1/tenants/ACME/apps/web/token", {})).status).toBe(404);
    expect((await post("/v1/tenants/acme/apps/web/token/x", {})).status).toBe(404);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it("passes a refusal's status and message through, and never the token", async () => {
    const token = await idp.idToken("other-app", { sub: "alice" });
    const res = await post("/v1/tenants/acme/apps/web/token", { authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    const text = await res.text();
    expect(text).not.toContain(token);
    expect(JSON.parse(text)).toEqual({ error: expect.stringMatching(/^the ID token was refused: /) as unknown });
  });
});

describe("bad app config names the key", () => {
  const keys = (raw: unknown) => {
    try {
      parseTokenApps(raw, "tenant.apps");
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).issues.map((i) => `${i.key}: ${i.message}`);
    }
    throw new Error("expected a ConfigError");
  };
  const good = { name: "web", identityProvider: { issuer: "https://login.example.com/", audience: "web" }, grants: { subscribe: ["client/{client}/#"] } };

  it.each([
    [{ ...good, identityProvider: { issuer: "http://login.example.com/", audience: "web" } }, "tenant.apps[0].identityProvider.issuer: must be an https URL without credentials, e.g. https://login.example.com/"],
    [{ ...good, grants: { subscribe: ["client/+/#"] } }, "tenant.apps[0].grants.subscribe[0]: '+' cannot be granted to token apps: the broker's token scopes have only a '*' that spans any number of levels; name the levels, or end with '#'"],
    [{ ...good, grants: { subscribe: ["client/#"] } }, "tenant.apps[0].grants.subscribe[0]: a token app's grant must be per user: put {user} or {client} in a level before any '#', e.g. 'client/{client}/#' or 'activity/{user}/#'"],
    [{ ...good, grants: {} }, "tenant.apps[0].grants: grant at least one publish or subscribe template"],
    [{ ...good, tokenLifetimeSeconds: 7 * 86_400 }, "tenant.apps[0].tokenLifetimeSeconds: must be at most 86400 (a day): revocation waits for expiry"],
    [{ ...good, clientIdsPerUser: 100 }, "tenant.apps[0].clientIdsPerUser: must be at most 16"],
    [{ ...good, userIds: "email" }, "tenant.apps[0].userIds: must be one of: subject, hashed"],
    [{ ...good, allowedOrigins: ["https://app.example.com/path"] }, "tenant.apps[0].allowedOrigins[0]: must be an origin such as https://app.example.com"],
    [{ ...good, identityProvider: { ...good.identityProvider, algorithms: ["HS256"] } }, "tenant.apps[0].identityProvider.algorithms[0]: must be one of: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA"],
    [{ ...good, name: "Web" }, "tenant.apps[0].name: must be a name: 1-63 characters: lowercase letters, digits and '-', starting and ending with a letter or digit"],
  ])("%j", (raw, message) => {
    expect(keys([raw])).toEqual([message]);
  });

  it("refuses an app declared twice", () => {
    expect(keys([good, good])).toEqual(["tenant.apps[1].name: app 'web' is declared twice"]);
  });

  it("the issuer's file: names the key, and wants an RSA key", () => {
    const rsaPem = signing.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const issues = (raw: unknown, pem: string) => {
      try {
        parseIssuerFile(raw, pem);
      } catch (e) {
        return (e as ConfigError).issues.map((i) => i.key);
      }
      return [];
    };
    const file = { resourceServerId: "rabbitmq", issuerUrl: ISSUER_URL, signingKeyId: "k1", tenants: { acme: { vhost: "acme", apps: [good] } } };
    expect(issues(file, rsaPem)).toEqual([]);
    expect(issues({ ...file, tenants: { acme: { vhost: "acme", apps: [{ ...good, name: "Web" }] } } }, rsaPem)).toEqual(["issuer.tenants.acme.apps[0].name"]);
    expect(issues({ ...file, signingKeyId: "K 1" }, rsaPem)).toEqual(["issuer.signingKeyId"]);
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    expect(issues(file, ec)).toEqual(["ISSUER_SIGNING_KEY_FILE"]);
  });
});
