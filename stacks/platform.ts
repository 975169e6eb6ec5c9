/**
 * The platform stack: the broker that tenant stacks provision, and its PKI. Config `platform` (see
 * README); everything is validated before the first resource is registered. Its outputs are what
 * tenant stacks read through a StackReference (core/broker-connection.ts PLATFORM_OUTPUTS).
 */
import * as pulumi from "@pulumi/pulumi";
import { PLATFORM_OUTPUTS } from "../core/broker-connection";
import { ConfigError, type ConfigIssue } from "../core/errors";
import { PEM_CERTIFICATE, PEM_PRIVATE_KEY } from "../core/pki-config";
import { PKI_CA_CERTIFICATE_KEY, PKI_CA_PRIVATE_KEY_KEY, PLATFORM_KEY, parsePlatformConfig, type PlatformConfigInput, type PlatformModel } from "../core/platform-config";
import { parseJsonConfig, rawConfig } from "./config";
// The components through the library's entry point, as any program would take them; the token
// issuer's components (which build from this repository's issuer/) are not in it.
import { DockerBroker, KubernetesBroker, PlatformPki, platformCertificateNames } from "../index";
import { TokenSigningKeys } from "../components/platform/token-keys";
import { DockerTokenIssuer, KubernetesTokenIssuer, issuerCertificateNames } from "../components/platform/token-issuer";
import { TENANT_OUTPUTS } from "../core/broker-connection";

/** The component name of the broker; its node and Service names go into the certificate. */
const BROKER_NAME = "rabbitmq";


export interface ValidatedPlatformStack {
  /** The `platform` config as the stack file gives it: what the components validate again. */
  readonly config: PlatformConfigInput;
  readonly model: PlatformModel;
  /** Set when the CA is imported: its certificate and private key (from a secret). */
  readonly importedCa?: { readonly certPem: string; readonly privateKeyPem: string };
}

export function validatePlatformStack(): ValidatedPlatformStack {
  const parsed = parseJsonConfig(PLATFORM_KEY, rawConfig(PLATFORM_KEY), false);
  if (parsed === undefined) throw new ConfigError([{ key: PLATFORM_KEY, message: "required: the broker platform (target, image, broker); see README" }]);
  const model = parsePlatformConfig(parsed);
  // Valid now, so it has the input's shape.
  const config = parsed as PlatformConfigInput;
  const certPem = rawConfig(PKI_CA_CERTIFICATE_KEY);
  const keyPem = rawConfig(PKI_CA_PRIVATE_KEY_KEY);
  if (model.pki.ca.source === "generate") {
    const stray = [certPem !== undefined ? PKI_CA_CERTIFICATE_KEY : undefined, keyPem !== undefined ? PKI_CA_PRIVATE_KEY_KEY : undefined].filter((k) => k !== undefined);
    if (stray.length > 0) {
      throw new ConfigError(stray.map((key) => ({ key, message: "is set but platform.pki.ca.source is generate; set source: import to use it, or remove it" })));
    }
    return { config, model };
  }
  const issues: ConfigIssue[] = [];
  if (certPem === undefined || !PEM_CERTIFICATE.test(certPem)) {
    issues.push({ key: PKI_CA_CERTIFICATE_KEY, message: "required with platform.pki.ca.source import: the CA certificate as one PEM block (-----BEGIN CERTIFICATE-----)" });
  }
  // Never echo the key: it is a secret.
  if (keyPem === undefined || !PEM_PRIVATE_KEY.test(keyPem)) {
    issues.push({ key: PKI_CA_PRIVATE_KEY_KEY, message: "required with platform.pki.ca.source import: the CA's private key as one PEM block, set with --secret" });
  }
  if (issues.length > 0 || certPem === undefined || keyPem === undefined) throw new ConfigError(issues);
  return { config, model, importedCa: { certPem, privateKeyPem: keyPem } };
}

export function platformStack() {
  const { config, model, importedCa } = validatePlatformStack();
  const tokens = model.broker.tokens;
  const issuerUrl = tokens?.issuer?.url;
  const pki = new PlatformPki("pki", {
    ...(config.pki !== undefined ? { pki: config.pki } : {}),
    brokerNames: platformCertificateNames(config, BROKER_NAME),
    ...(issuerUrl !== undefined ? { tokenIssuerNames: issuerCertificateNames(model, issuerUrl) } : {}),
    ...(importedCa !== undefined ? { importedCa: { certPem: importedCa.certPem, privateKeyPem: pulumi.secret(importedCa.privateKeyPem) } } : {}),
  });
  const tls = { caCertPem: pki.root.certPem, certPem: pki.broker.chainPem, privateKeyPem: pki.broker.privateKeyPem, verifyDepth: pki.verifyDepth };
  const tokenKeys = tokens !== undefined ? new TokenSigningKeys("token-keys", { tokens }) : undefined;
  const brokerArgs = { platform: config, tls, ...(tokenKeys !== undefined ? { tokenKeys: tokenKeys.publicKeys } : {}) };
  const broker = model.target === "docker" ? new DockerBroker(BROKER_NAME, brokerArgs) : new KubernetesBroker(BROKER_NAME, brokerArgs);
  const tokenIssuer = deployTokenIssuer(model, tokenKeys, pki, broker);
  return {
    [PLATFORM_OUTPUTS.managementUrl]: broker.managementUrl,
    [PLATFORM_OUTPUTS.adminUsername]: broker.adminUsername,
    [PLATFORM_OUTPUTS.adminPassword]: broker.adminPassword,
    [PLATFORM_OUTPUTS.caCertificatePem]: pki.root.certPem,
    [PLATFORM_OUTPUTS.certificateIssuers]: pki.issuers(),
    [PLATFORM_OUTPUTS.certificateLoginFrom]: model.broker.tls.certificateLoginFrom,
    mqttEndpoints: broker.mqttEndpoints,
    brokerVersion: model.broker.versionText,
    tuningNotApplied: broker.tuningGaps,
    // What an app developer or a tenant's issuer needs to know of token sign-in; the private keys are not exported.
    tokens:
      tokens !== undefined && tokenKeys !== undefined
        ? {
            resourceServerId: tokens.resourceServerId,
            algorithm: tokens.algorithm,
            signingKeyId: tokenKeys.signing.id,
            publicKeysPem: Object.fromEntries(tokenKeys.publicKeys.map((k) => [k.id, k.publicKeyPem])),
            ...(tokenIssuer !== undefined ? { issuerUrl: tokenIssuer.url } : {}),
          }
        : undefined,
  };
}

/**
 * The token issuer, when `platform.broker.tokens.issuer` is set: it signs with the first key and
 * serves the token apps of the tenant stacks it lists (each one's output `tokenApps`).
 */
function deployTokenIssuer(
  model: PlatformModel,
  keys: TokenSigningKeys | undefined,
  pki: PlatformPki,
  broker: DockerBroker | KubernetesBroker,
): DockerTokenIssuer | KubernetesTokenIssuer | undefined {
  const tokens = model.broker.tokens;
  const issuer = tokens?.issuer;
  const url = issuer?.url;
  const cert = pki.tokenIssuer;
  if (tokens === undefined || issuer === undefined || url === undefined || keys === undefined || cert === undefined) return undefined;
  const tenantStacks = pulumi.all(
    Object.fromEntries(issuer.tenantStacks.map((stack) => [stack, new pulumi.StackReference(stack).requireOutput(TENANT_OUTPUTS.tokenApps)])),
  );
  const args = {
    model,
    tokens: { ...tokens, issuer: { ...issuer, url } },
    signing: keys.signing,
    tenantStacks,
    tls: { certPem: cert.chainPem, privateKeyPem: cert.privateKeyPem },
    ...(broker instanceof DockerBroker ? { network: broker.network } : { namespace: broker.namespace }),
  };
  return model.target === "docker" ? new DockerTokenIssuer("token-issuer", args) : new KubernetesTokenIssuer("token-issuer", args);
}
