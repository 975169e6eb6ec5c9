/**
 * A tenant's identity provider for the token issuer the dev stack deploys: the issuer runs in a
 * container, so the provider it reads must be reachable from there. This one is a container of the
 * test's own on the platform's network (`<prefix>-idp`), from the local Node.js image: it serves its
 * OpenID configuration and JWKS over HTTPS with a certificate of a throwaway CA. The test process
 * keeps the provider's private key and signs ID tokens itself, as the provider would.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { SignJWT, exportJWK } from "jose";
import { dockerCall } from "./docker-engine";
import { tarOneFile } from "./docker-hooks";
import { testPki } from "./test-pki";

/** Port it listens on inside its container (the platform network only; nothing is published). */
const IDP_PORT = 8443;

/** Plain data (passed through vitest `provide`): what a test needs to sign in as a user. */
export interface ContainerIdp {
  readonly host: string;
  /** `iss` of its ID tokens. */
  readonly issuer: string;
  readonly caCertPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** The RS256 key its ID tokens are signed with (PKCS#8 PEM) and its key id. */
  readonly signingKeyPem: string;
  readonly kid: string;
  readonly jwks: { keys: Record<string, unknown>[] };
}

/** Keys, certificate and JWKS of the provider `<prefix>-idp`, before any container exists. */
export async function prepareIdp(prefix: string): Promise<ContainerIdp> {
  const host = `${prefix}-idp`;
  const pki = await testPki({ dnsNames: [host], ipAddresses: [] });
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = "idp-rsa";
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  return {
    host,
    issuer: `https://${host}:${IDP_PORT}/realm`,
    caCertPem: pki.caCertPem,
    certPem: pki.serverCertPem,
    keyPem: pki.serverKeyPem,
    signingKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    kid,
    jwks: { keys: [jwk] },
  };
}

/** The provider's server: two JSON documents over HTTPS, nothing else. */
const SERVER = `
const fs = require("fs"), https = require("https");
const docs = { "/realm/.well-known/openid-configuration": fs.readFileSync("/idp/openid-configuration.json"), "/realm/jwks": fs.readFileSync("/idp/jwks.json") };
https.createServer({ cert: fs.readFileSync("/idp/cert.pem"), key: fs.readFileSync("/idp/key.pem") }, (req, res) => {
  const doc = docs[req.url];
  res.writeHead(doc ? 200 : 404, { "content-type": "application/json" });
  res.end(doc || "{}");
}).listen(${IDP_PORT}, () => console.log("idp listening"));
`;

/** Starts the provider's container on `network`; returns when it runs. */
export async function startIdpContainer(socketPath: string, network: string, image: string, idp: ContainerIdp): Promise<void> {
  const { Id: id } = await dockerCall<{ Id: string }>(socketPath, "POST", `/containers/create?name=${encodeURIComponent(idp.host)}`, {
    Image: image,
    Hostname: idp.host,
    User: "1000:1000",
    Cmd: ["node", "/idp/server.js"],
    HostConfig: { NetworkMode: network },
    NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: [idp.host] } } },
  });
  const files: [string, string][] = [
    ["/idp/server.js", SERVER],
    ["/idp/cert.pem", idp.certPem],
    ["/idp/key.pem", idp.keyPem],
    ["/idp/jwks.json", JSON.stringify(idp.jwks)],
    ["/idp/openid-configuration.json", JSON.stringify({ issuer: idp.issuer, jwks_uri: `${idp.issuer}/jwks`, id_token_signing_alg_values_supported: ["RS256"] })],
  ];
  for (const [file, content] of files) {
    await dockerCall(socketPath, "PUT", `/containers/${id}/archive?path=%2F`, undefined, { data: tarOneFile(file, Buffer.from(content), 0o644, 1000, 1000), contentType: "application/x-tar" });
  }
  await dockerCall(socketPath, "POST", `/containers/${id}/start`);
}

/** An ID token of this provider for `audience`, with these claims (iat, exp in 5 minutes unless given). */
export async function idpToken(idp: ContainerIdp, audience: string, claims: Record<string, unknown>, key: KeyObject = createPrivateKey(idp.signingKeyPem)): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iat: now, exp: now + 300, ...claims }).setProtectedHeader({ alg: "RS256", kid: idp.kid, typ: "JWT" }).setIssuer(idp.issuer).setAudience(audience).sign(key);
}
