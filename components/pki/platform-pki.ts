/**
 * `PlatformPki`: the platform stack's certificates. A root CA (generated or imported), one
 * intermediate CA per tenant listed in `platform.pki.tenantAuthorities`, and the broker's server
 * certificate carrying every node's and Service's name. Tenant stacks read the issuers through the
 * platform stack's secret output `certificateIssuers` (stacks/platform.ts) and sign their
 * devices' certificates themselves: no key is copied by hand.
 */
import * as pulumi from "@pulumi/pulumi";
import type { CertificateNames } from "../../core/broker-endpoints";
import { ConfigError } from "../../core/errors";
import { PKI_CA_CERTIFICATE_KEY, PLATFORM_KEY, parsePkiConfig, type PkiConfigInput, type PkiModel } from "../../core/platform-config";
import { CLIENT_CA_USES, IssuedCertificate, RootAuthority, SERVER_USES, type Issuer } from "./index";

export interface PlatformPkiArgs {
  /**
   * The PKI, in the shape of the platform stack's `platform.pki` config (README, "Platform
   * stack"); absent: every default. Validated here with the stack's schema before anything is
   * registered: a mistake throws a ConfigError naming the key (`platform.pki.ca.validityHours`).
   */
  readonly pki?: PkiConfigInput;
  /** The names the broker's certificate carries: `platformCertificateNames` of the platform. */
  readonly brokerNames: CertificateNames;
  /** Set when the stack deploys the token issuer: the names its HTTPS certificate carries. */
  readonly tokenIssuerNames?: CertificateNames;
  /** Required when `pki.ca.source` is import, refused otherwise; the key should be a secret. */
  readonly importedCa?: { readonly certPem: pulumi.Input<string>; readonly privateKeyPem: pulumi.Input<string> };
}

/** What a tenant stack signs its client certificates with. Secret as a whole (it holds a key). */
export interface IssuerOutput {
  readonly certPem: string;
  readonly privateKeyPem: string;
  readonly chainPem: string;
}

export interface IssuersOutput {
  readonly root: IssuerOutput;
  readonly tenants: Readonly<Record<string, IssuerOutput>>;
}

export class PlatformPki extends pulumi.ComponentResource {
  /** The validated PKI config, defaults filled in. */
  public readonly config: PkiModel;
  public readonly root: RootAuthority;
  public readonly broker: IssuedCertificate;
  /** The token issuer's HTTPS certificate, when `tokenIssuerNames` is set. */
  public readonly tokenIssuer?: IssuedCertificate;
  public readonly tenantAuthorities: Readonly<Record<string, IssuedCertificate>>;
  /** 0 when clients are signed by the root, 1 when a tenant intermediate sits in between. */
  public readonly verifyDepth: number;

  constructor(name: string, args: PlatformPkiArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validated before super(): a bad config registers nothing, not even this component.
    const pki = parsePkiConfig(args.pki);
    if ((pki.ca.source === "import") !== (args.importedCa !== undefined)) {
      throw new ConfigError([
        pki.ca.source === "import"
          ? { key: PKI_CA_CERTIFICATE_KEY, message: `required with ${PLATFORM_KEY}.pki.ca.source import: pass importedCa, the CA's certificate and (secret) private key` }
          : { key: `${PLATFORM_KEY}.pki.ca.source`, message: "is generate, but an importedCa was given: set source: import to use it, or leave importedCa out" },
      ]);
    }
    super("rabbitmq-mqtt:pki:PlatformPki", name, {}, opts);
    this.config = pki;
    const child = { parent: this };
    this.root = new RootAuthority(
      `${name}-root`,
      {
        subject: { commonName: pki.ca.commonName, ...(pki.ca.organization !== undefined ? { organization: pki.ca.organization } : {}) },
        key: pki.key,
        validity: pki.ca,
        ...(args.importedCa !== undefined ? { imported: args.importedCa } : {}),
      },
      child,
    );
    const authorities: Record<string, IssuedCertificate> = {};
    for (const tenant of pki.tenantAuthorities.tenants) {
      authorities[tenant] = new IssuedCertificate(
        `${name}-tenant-${tenant}`,
        {
          subject: {
            commonName: `${tenant} tenant CA`,
            ...(pki.ca.organization !== undefined ? { organization: pki.ca.organization } : {}),
            organizationalUnit: tenant,
          },
          key: pki.key,
          validity: pki.tenantAuthorities,
          allowedUses: CLIENT_CA_USES,
          isCa: true,
          issuer: this.root,
        },
        child,
      );
    }
    this.tenantAuthorities = authorities;
    this.verifyDepth = pki.tenantAuthorities.tenants.length > 0 ? 1 : 0;
    this.broker = new IssuedCertificate(
      `${name}-broker`,
      {
        subject: { commonName: args.brokerNames.dnsNames[0] ?? "rabbitmq", ...(pki.ca.organization !== undefined ? { organization: pki.ca.organization } : {}) },
        key: pki.key,
        validity: pki.brokerCertificate,
        allowedUses: SERVER_USES,
        dnsNames: args.brokerNames.dnsNames,
        ipAddresses: args.brokerNames.ipAddresses,
        issuer: this.root,
      },
      child,
    );
    if (args.tokenIssuerNames !== undefined) {
      this.tokenIssuer = new IssuedCertificate(
        `${name}-token-issuer`,
        {
          subject: { commonName: args.tokenIssuerNames.dnsNames[0] ?? "token-issuer", ...(pki.ca.organization !== undefined ? { organization: pki.ca.organization } : {}) },
          key: pki.key,
          validity: pki.brokerCertificate,
          allowedUses: SERVER_USES,
          dnsNames: args.tokenIssuerNames.dnsNames,
          ipAddresses: args.tokenIssuerNames.ipAddresses,
          issuer: this.root,
        },
        child,
      );
    }
    this.registerOutputs({ caCertPem: this.root.certPem, brokerCertPem: this.broker.certPem });
  }

  /** The issuers tenant stacks sign with: their own intermediate, or the root. Secret. */
  issuers(): pulumi.Output<IssuersOutput> {
    const asOutput = (i: Issuer): pulumi.Output<IssuerOutput> =>
      pulumi.all([i.certPem, i.privateKeyPem, i.chainPem]).apply(([certPem, privateKeyPem, chainPem]) => ({ certPem, privateKeyPem, chainPem }));
    const names = Object.keys(this.tenantAuthorities);
    const tenants = pulumi
      .all(names.map((t) => asOutput(this.tenantAuthorities[t]!)))
      .apply((list) => Object.fromEntries(list.map((issuer, k) => [names[k]!, issuer])) as Record<string, IssuerOutput>);
    return pulumi.secret(pulumi.all([asOutput(this.root), tenants]).apply(([root, t]): IssuersOutput => ({ root, tenants: t })));
  }
}
