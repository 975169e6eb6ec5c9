/**
 * `TokenSigningKeys`: the token issuer's signing keys, one RSA key per id that
 * `platform.broker.tokens.signingKeys` lists (newest first). The broker gets every public key as a
 * file and accepts tokens signed with any of them; the issuer signs with the first. The private
 * keys stay secrets in this stack's state and are not exported: the issuer is deployed by this
 * stack. Dropping an id from the list deletes its key, so a rotation is: put a new id first,
 * `pulumi up`, wait one token lifetime, drop the old id, `pulumi up`.
 */
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import type { TokensModel } from "../../core/platform-config";

/** RSA modulus of the signing keys: RS256 with 3072 bits (NIST SP 800-57's 128-bit level). */
export const TOKEN_KEY_RSA_BITS = 3072;

export interface TokenPublicKey {
  readonly id: string;
  readonly publicKeyPem: pulumi.Output<string>;
}

export class TokenSigningKeys extends pulumi.ComponentResource {
  /** Every key in force, in the config's order; public. */
  public readonly publicKeys: TokenPublicKey[];
  /** The key new tokens are signed with: its id, and its private key (a secret). */
  public readonly signing: { readonly id: string; readonly privateKeyPem: pulumi.Output<string> };

  constructor(name: string, args: { readonly tokens: TokensModel }, opts?: pulumi.ComponentResourceOptions) {
    super("rabbitmq-mqtt:platform:TokenSigningKeys", name, {}, opts);
    const keys = args.tokens.signingKeyIds.map((id) => ({
      id,
      key: new tls.PrivateKey(`${name}-${id}`, { algorithm: "RSA", rsaBits: TOKEN_KEY_RSA_BITS }, { parent: this, additionalSecretOutputs: ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"] }),
    }));
    const first = keys[0];
    if (first === undefined) throw new Error("platform.broker.tokens.signingKeys: at least one key id is required");
    this.publicKeys = keys.map(({ id, key }) => ({ id, publicKeyPem: key.publicKeyPem }));
    this.signing = { id: first.id, privateKeyPem: pulumi.secret(first.key.privateKeyPem) };
    this.registerOutputs({ keyIds: args.tokens.signingKeyIds, signingKeyId: first.id });
  }
}

/** Checks that `keys` hold a public key for every id the model lists (a wiring error otherwise). */
export function publicKeyFor(keys: readonly TokenPublicKey[], id: string): pulumi.Output<string> {
  const key = keys.find((k) => k.id === id);
  if (key === undefined) throw new Error(`no public key for token signing key '${id}'`);
  return key.publicKeyPem;
}
