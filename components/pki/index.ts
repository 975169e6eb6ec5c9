/**
 * Certificates as code on @pulumi/tls: a certificate authority (generated root, or an imported
 * one), certificates issued by it (tenant intermediates, the broker's server certificate, devices'
 * and apps' client certificates). Private keys are Pulumi secrets everywhere they are passed on.
 *
 * Renewal: every certificate carries `earlyRenewalHours`; once inside that window the provider
 * reports `readyForRenewal` and the next `pulumi up` replaces the certificate, same key pair (see
 * core/pki-config.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import type { CertificateSubject } from "../../core/dn";
import type { KeySpec, Validity } from "../../core/pki-config";

/** Key usages (the provider's `allowedUses` names). */
export const CA_USES = ["cert_signing", "crl_signing", "digital_signature"];
/**
 * A tenant's intermediate signs client certificates only: its extended key usage says so, and
 * TLS clients that check purposes down the chain (OpenSSL, hence Node) refuse a server certificate
 * under it, so a tenant's key cannot stand in for the broker.
 */
export const CLIENT_CA_USES = [...CA_USES, "client_auth"];
export const SERVER_USES = ["digital_signature", "key_encipherment", "server_auth"];
export const CLIENT_USES = ["digital_signature", "key_encipherment", "client_auth"];

export interface Issuer {
  readonly certPem: pulumi.Input<string>;
  /** Secret. */
  readonly privateKeyPem: pulumi.Input<string>;
  /** The issuer's own chain up to (not including) the root, PEM; empty for the root. */
  readonly chainPem: pulumi.Input<string>;
}

export function newPrivateKey(name: string, key: KeySpec, opts: pulumi.CustomResourceOptions): tls.PrivateKey {
  return new tls.PrivateKey(
    name,
    key.algorithm === "RSA" ? { algorithm: "RSA", rsaBits: key.rsaBits } : { algorithm: "ECDSA", ecdsaCurve: key.ecdsaCurve },
    opts,
  );
}

function subjectInput(s: CertificateSubject): tls.types.input.CertRequestSubject {
  const out: tls.types.input.CertRequestSubject = {};
  if (s.commonName !== undefined) out.commonName = s.commonName;
  if (s.organization !== undefined) out.organization = s.organization;
  if (s.organizationalUnit !== undefined) out.organizationalUnit = s.organizationalUnit;
  if (s.streetAddresses !== undefined && s.streetAddresses.length > 0) out.streetAddresses = [...s.streetAddresses];
  if (s.locality !== undefined) out.locality = s.locality;
  if (s.province !== undefined) out.province = s.province;
  if (s.country !== undefined) out.country = s.country;
  if (s.postalCode !== undefined) out.postalCode = s.postalCode;
  if (s.serialNumber !== undefined) out.serialNumber = s.serialNumber;
  return out;
}

export interface IssuedCertificateArgs {
  readonly subject: CertificateSubject;
  readonly key: KeySpec;
  readonly validity: Validity;
  readonly allowedUses: readonly string[];
  readonly isCa?: boolean;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly issuer: Issuer;
}

/** A key pair, its certificate request and the certificate the issuer signs for it. */
export class IssuedCertificate extends pulumi.ComponentResource {
  public readonly certPem: pulumi.Output<string>;
  /** Secret. */
  public readonly privateKeyPem: pulumi.Output<string>;
  /** This certificate followed by the issuer's chain: what a client or server presents. */
  public readonly chainPem: pulumi.Output<string>;
  public readonly validityEndTime: pulumi.Output<string>;

  constructor(name: string, args: IssuedCertificateArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rabbitmq-mqtt:pki:IssuedCertificate", name, {}, opts);
    const child = { parent: this };
    const key = newPrivateKey(`${name}-key`, args.key, child);
    const request = new tls.CertRequest(
      `${name}-csr`,
      {
        privateKeyPem: key.privateKeyPem,
        subject: subjectInput(args.subject),
        ...(args.dnsNames && args.dnsNames.length > 0 ? { dnsNames: [...args.dnsNames] } : {}),
        ...(args.ipAddresses && args.ipAddresses.length > 0 ? { ipAddresses: [...args.ipAddresses] } : {}),
      },
      child,
    );
    const cert = new tls.LocallySignedCert(
      `${name}-cert`,
      {
        certRequestPem: request.certRequestPem,
        caCertPem: args.issuer.certPem,
        caPrivateKeyPem: pulumi.secret(args.issuer.privateKeyPem),
        validityPeriodHours: args.validity.validityHours,
        earlyRenewalHours: args.validity.earlyRenewalHours,
        allowedUses: [...args.allowedUses],
        isCaCertificate: args.isCa === true,
        setSubjectKeyId: true,
      },
      child,
    );
    this.certPem = cert.certPem;
    this.privateKeyPem = pulumi.secret(key.privateKeyPem);
    this.chainPem = pulumi.all([cert.certPem, args.issuer.chainPem]).apply(([c, chain]) => joinPem(c, chain));
    this.validityEndTime = cert.validityEndTime;
    this.registerOutputs({ certPem: this.certPem, chainPem: this.chainPem, validityEndTime: this.validityEndTime });
  }
}

export function joinPem(...pems: string[]): string {
  return pems
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .map((p) => `${p}\n`)
    .join("");
}

export interface RootAuthorityArgs {
  readonly subject: CertificateSubject;
  readonly key: KeySpec;
  readonly validity: Validity;
  /** An existing CA instead of a generated one (its key must be a secret). */
  readonly imported?: { readonly certPem: pulumi.Input<string>; readonly privateKeyPem: pulumi.Input<string> };
}

/** The root of trust: generated and self-signed, or imported. */
export class RootAuthority extends pulumi.ComponentResource implements Issuer {
  public readonly certPem: pulumi.Output<string>;
  /** Secret. */
  public readonly privateKeyPem: pulumi.Output<string>;
  public readonly chainPem: pulumi.Output<string>;

  constructor(name: string, args: RootAuthorityArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rabbitmq-mqtt:pki:RootAuthority", name, {}, opts);
    if (args.imported !== undefined) {
      this.certPem = pulumi.output(args.imported.certPem);
      this.privateKeyPem = pulumi.secret(args.imported.privateKeyPem);
    } else {
      const child = { parent: this };
      const key = newPrivateKey(`${name}-key`, args.key, child);
      const cert = new tls.SelfSignedCert(
        `${name}-cert`,
        {
          privateKeyPem: key.privateKeyPem,
          subject: subjectInput(args.subject),
          validityPeriodHours: args.validity.validityHours,
          earlyRenewalHours: args.validity.earlyRenewalHours,
          allowedUses: [...CA_USES],
          isCaCertificate: true,
          setSubjectKeyId: true,
        },
        child,
      );
      this.certPem = cert.certPem;
      this.privateKeyPem = pulumi.secret(key.privateKeyPem);
    }
    this.chainPem = pulumi.output("");
    this.registerOutputs({ certPem: this.certPem });
  }
}
