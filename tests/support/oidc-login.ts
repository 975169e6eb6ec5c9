/**
 * A full OpenID Connect provider for the browser test (panva's oidc-provider, the certified
 * implementation): authorization code with PKCE for a public web client, its development login
 * and consent pages (any login name, any password), CORS on its token endpoint for the app's
 * origin, ID tokens signed RS256. It stands in for a tenant's identity provider in a real sign-in.
 */
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair } from "jose";
import type Provider from "oidc-provider";

export interface OidcLoginProvider {
  readonly issuer: string;
  stop(): Promise<void>;
}

export async function startOidcLogin(opts: { clientId: string; redirectUri: string; appOrigin: string; tls: { certPem: string; keyPem: string } }): Promise<OidcLoginProvider> {
  // ESM-only package: loaded the way Node loads it.
  const { default: ProviderClass } = (await import("oidc-provider")) as { default: typeof Provider };
  const server = https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const provider = new ProviderClass(issuer, {
    clients: [
      {
        client_id: opts.clientId,
        redirect_uris: [opts.redirectUri],
        response_types: ["code"],
        grant_types: ["authorization_code"],
        token_endpoint_auth_method: "none",
      },
    ],
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: "login-rsa", alg: "RS256", use: "sig" }] },
    cookies: { keys: ["test-cookie-key-0123456789"] },
    clientBasedCORS: (_ctx, origin) => origin === opts.appOrigin,
    findAccount: (_ctx, id) => Promise.resolve({ accountId: id, claims: () => Promise.resolve({ sub: id }) }),
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
    ttl: { Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, IdToken: 600 },
  });
  const handle = provider.callback();
  server.on("request", (req, res) => void handle(req, res));
  return {
    issuer,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
