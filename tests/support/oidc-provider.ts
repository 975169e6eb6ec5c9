/**
 * A local OpenID Connect identity provider for the tests: its OpenID configuration and JWKS over
 * HTTPS (a throwaway CA), and ID tokens signed with its keys. It stands in for a tenant's own
 * provider (Auth0, Entra ID, Cognito, Keycloak, ...): the token issuer reads it exactly as it would
 * read those.
 */
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { testPki } from "./test-pki";

export interface LocalOidcProvider {
  /** `iss` of its ID tokens: https://127.0.0.1:<port>/realm */
  readonly issuer: string;
  readonly jwksUri: string;
  /** The CA its HTTPS certificate chains to. */
  readonly caCertPem: string;
  /** An ID token for `audience` with these claims (iat and exp set unless given), signed with its RS256 key. */
  idToken(audience: string, claims: Record<string, unknown>, opts?: { alg?: "RS256" | "ES256"; kid?: string; key?: CryptoKey }): Promise<string>;
  /** How many times its JWKS was fetched. */
  jwksFetches(): number;
  /** Makes its OpenID configuration name another issuer (a misconfigured or hostile provider). */
  misdirectDiscovery(): void;
  stop(): Promise<void>;
}

export async function startOidcProvider(): Promise<LocalOidcProvider> {
  const pki = await testPki();
  const rsa = await generateKeyPair("RS256", { extractable: true });
  const ec = await generateKeyPair("ES256", { extractable: true });
  const jwks: JWK[] = [
    { ...(await exportJWK(rsa.publicKey)), kid: "idp-rsa", alg: "RS256", use: "sig" },
    { ...(await exportJWK(ec.publicKey)), kid: "idp-ec", alg: "ES256", use: "sig" },
  ];
  let fetches = 0;
  let discoveryIssuer: string | undefined;
  const server = https.createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, (req, res) => {
    const json = (body: unknown) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.url === "/realm/.well-known/openid-configuration") return json({ issuer: discoveryIssuer ?? issuer, jwks_uri: jwksUri, id_token_signing_alg_values_supported: ["RS256", "ES256"] });
    if (req.url === "/realm/jwks") {
      fetches++;
      return json({ keys: jwks });
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `https://127.0.0.1:${port}/realm`;
  const jwksUri = `${issuer}/jwks`;
  return {
    issuer,
    jwksUri,
    caCertPem: pki.caCertPem,
    async idToken(audience, claims, opts = {}) {
      const alg = opts.alg ?? "RS256";
      const now = Math.floor(Date.now() / 1000);
      const key = opts.key ?? (alg === "RS256" ? rsa.privateKey : ec.privateKey);
      return new SignJWT({ iat: now, exp: now + 300, ...claims })
        .setProtectedHeader({ alg, kid: opts.kid ?? (alg === "RS256" ? "idp-rsa" : "idp-ec"), typ: "JWT" })
        .setIssuer(typeof claims["iss"] === "string" ? claims["iss"] : issuer)
        .setAudience(typeof claims["aud"] === "string" ? claims["aud"] : audience)
        .sign(key);
    },
    jwksFetches: () => fetches,
    misdirectDiscovery: () => {
      discoveryIssuer = "https://elsewhere.example.com/realm";
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
