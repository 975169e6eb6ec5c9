/**
 * JSON Web Tokens for the tests, signed with node:crypto so that a test can also make the broken
 * ones an attacker would send (`alg: none`, HS256 keyed with the public key, a tampered payload).
 */
import { createHmac, generateKeyPairSync, sign, type KeyObject } from "node:crypto";

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  /** SPKI PEM, as the broker's `auth_oauth2.signing_keys.<kid>` file holds it. */
  readonly publicKeyPem: string;
}

export function rsaSigningKey(kid: string): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { kid, privateKey, publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString() };
}

const b64url = (data: string | Buffer) => Buffer.from(data).toString("base64url");

/** An RS256 token signed with `key`, `kid` in its header unless `kid` says otherwise. */
export function rs256(key: SigningKey, claims: Record<string, unknown>, kid: string | undefined = key.kid): string {
  return rsSigned("RS256", key, claims, kid);
}

/** A token signed with `key` by an RSA PKCS#1 v1.5 algorithm (RS256, RS384, RS512). */
export function rsSigned(alg: "RS256" | "RS384" | "RS512", key: SigningKey, claims: Record<string, unknown>, kid: string | undefined = key.kid): string {
  const header = { alg, typ: "JWT", ...(kid !== undefined ? { kid } : {}) };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(sign(`RSA-SHA${alg.slice(2)}`, Buffer.from(input), key.privateKey))}`;
}

/** An unsigned token (`alg: none`). */
export function unsigned(claims: Record<string, unknown>, kid?: string): string {
  const header = { alg: "none", typ: "JWT", ...(kid !== undefined ? { kid } : {}) };
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}.`;
}

/** HS256 keyed with the public key's PEM: the classic algorithm-confusion forgery. */
export function hs256WithPublicKey(key: SigningKey, claims: Record<string, unknown>): string {
  const header = { alg: "HS256", typ: "JWT", kid: key.kid };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(createHmac("sha256", key.publicKeyPem).update(input).digest())}`;
}

/** `token` with its payload replaced and the original signature kept. */
export function withPayload(token: string, claims: Record<string, unknown>): string {
  const [header, , signature] = token.split(".");
  return `${header}.${b64url(JSON.stringify(claims))}.${signature}`;
}
