/**
 * `Tenant`: everything one tenant needs on the broker, from a validated TenantModel: its vhost
 * (with metadata and limits), one user per identity with vhost and topic permissions compiled from
 * its MQTT grants, user limits, and the policy for its MQTT subscription queues. Identities with
 * `auth: certificate` get a key and a client certificate signed by the tenant's issuer, and a
 * password-less user named by the login name the broker derives from that certificate.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as rabbitmq from "@pulumi/rabbitmq";
import * as random from "@pulumi/random";
import { MQTT_SUBSCRIPTION_QUEUE_PREFIX } from "../core/permissions";
import type { CertLoginFrom } from "../core/dn";
import { LIMIT_RANGES, parseTenantConfig, passwordIssue, type FleetModel, type IdentityModel, type SubscriptionQueuePolicyModel, type TenantConfigInput, type TenantModel } from "../core/tenant-config";
import { ConfigError } from "../core/errors";
import type { BrokerConnection } from "./broker-connection";
import { DEVICE_TOKEN } from "../core/fleet-template";
import { escapeRegex } from "../core/names";
import type { ManagementConnection } from "./management/api";
import { CertificateUser } from "./management/certificate-user";
import { CLIENT_USES, IssuedCertificate } from "./pki";
import type { IssuerOutput } from "./pki/platform-pki";
import { IdentitySessions } from "./management/identity-sessions";
import { DeviceFleet, type DeviceFleetArgs } from "./management/device-fleet";
import { deviceFingerprint } from "../core/fleets";
import { UserLimits, VhostLimits } from "./management/limits";
import { VhostMetadata } from "./management/vhost-metadata";

/**
 * How many identities' broker calls through @pulumi/rabbitmq's provider may run at once.
 *
 * That provider's calls are the engine's, not this project's: `pulumi up` starts every ready
 * resource at once by default, and a tenant with thousands of identities would send thousands of
 * calls together, which overloads the management listener (tests/e2e/management-load.e2e.test.ts).
 * The provider has no setting to bound them, so the Tenant orders them: identities are dealt into
 * PROVIDER_LANES lanes, and an identity's user waits (`dependsOn`) for the user, permissions and
 * topic permissions of the identity before it in its lane. The engine runs a resource's step only
 * after its dependencies' steps, for creates, updates and (in reverse) deletes, so at most
 * PROVIDER_LANES users, or 2 x PROVIDER_LANES permission calls, are in flight from one tenant
 * whatever `--parallel` is. A change of lane (an identity added or removed before another) changes
 * only a dependency, which is no diff. Fleets need none of this: one resource, bounded calls.
 */
export const PROVIDER_LANES = 8;

export interface TenantArgs {
  /**
   * The tenant, in the shape of the tenant stack's `tenant` config (README, "Tenant stack config
   * reference"): plain values, not Outputs, because they decide which resources exist. Validated
   * with the core schema (core/tenant-config.ts) before any resource is registered; a mistake
   * throws a ConfigError naming the field, e.g. `tenant.identities[0].name`.
   */
  readonly tenant: TenantConfigInput;
  /** Where the management API is and the admin credentials (brokerConnection()). */
  readonly broker: BrokerConnection;
  /**
   * Identity name -> password (secret); identities not listed get a generated one. Names and
   * plain-string lengths are checked with the tenant; an Output's length when it resolves.
   */
  readonly passwords?: Readonly<Record<string, pulumi.Input<string>>>;
  /** Required when an identity or fleet uses `auth: certificate`. */
  readonly certificates?: {
    /** Secret: the tenant's intermediate CA, or the root. */
    readonly issuer: pulumi.Input<IssuerOutput>;
    /** The broker's `ssl_cert_login_from`. */
    readonly loginFrom: pulumi.Input<CertLoginFrom>;
  };
  /** Reads a fleet's registry file (`tenant.fleets[].registry`); default: from disk, relative to the working directory. */
  readonly readRegistry?: (file: string) => string;
}

/** What a Tenant's private methods work from: the validated model and the connection. */
interface ResolvedTenantArgs {
  readonly model: TenantModel;
  readonly provider: rabbitmq.Provider;
  readonly connection: pulumi.Input<ManagementConnection>;
  readonly passwords?: Readonly<Record<string, pulumi.Input<string>>>;
  readonly certificates?: TenantArgs["certificates"];
}

const validated = new WeakMap<object, { passwords: string; model: TenantModel }>();

/** A stand-in of valid length for a password given as an Output, whose value is not known yet. */
const DEFERRED_PASSWORD = "x".repeat(LIMIT_RANGES.passwordLength[0]);

/**
 * Validates a Tenant's arguments as the component does, without registering anything (a stack
 * calls this first for its own cross-checks; the Tenant then reuses the result).
 */
export function validateTenant(args: Pick<TenantArgs, "tenant" | "passwords" | "readRegistry">): TenantModel {
  const given = Object.entries(args.passwords ?? {});
  // An Output or a promise is checked when it resolves (checkedPasswords); anything else now.
  const deferred = (v: unknown) => pulumi.Output.isInstance(v) || v instanceof Promise;
  // Only names and lengths are validated, so they are the cache key (never the values).
  const key = JSON.stringify(given.map(([k, v]) => [k, deferred(v) ? "deferred" : typeof v === "string" ? v.length : typeof v]).sort());
  const raw = typeof args.tenant === "object" && args.tenant !== null ? (args.tenant as object) : undefined;
  const hit = raw !== undefined ? validated.get(raw) : undefined;
  if (hit !== undefined && hit.passwords === key) return hit.model;
  const passwords = Object.fromEntries(given.map(([k, v]) => [k, deferred(v) ? DEFERRED_PASSWORD : v]));
  const model = parseTenantConfig(args.tenant, passwords, args.readRegistry ?? ((file) => readFileSync(path.resolve(file), "utf8")));
  if (raw !== undefined) validated.set(raw, { passwords: key, model });
  return model;
}

/**
 * Passwords given as Outputs are checked for length when they resolve (the error names the key,
 * never the value): the Output the Tenant hands its user rejects, so `pulumi up` fails on that
 * user with the ConfigError. Exported for the tests.
 */
export function checkedPasswords(passwords: Readonly<Record<string, pulumi.Input<string>>>): Record<string, pulumi.Input<string>> {
  return Object.fromEntries(
    Object.entries(passwords).map(([k, v]) => [
      k,
      typeof v === "string"
        ? v
        : pulumi.output(v).apply((p) => {
            const issue = passwordIssue(k, p);
            if (issue !== undefined) throw new ConfigError([issue]);
            return p;
          }),
    ]),
  );
}

export interface TenantIdentityOutput {
  readonly name: string;
  readonly auth: IdentityModel["auth"];
  /** The RabbitMQ user: `<identity>@<tenant>`, or for certificates the certificate's login name. */
  readonly username: pulumi.Output<string>;
  readonly role: string;
  readonly clientIdPattern: string;
  /** The MQTT client ids whose sessions the identity may keep (a certificate identity: its DN only). */
  readonly clientIds: readonly string[];
  /** Password identities: secret. */
  readonly password?: pulumi.Output<string>;
  /** Certificate identities: the certificate followed by its issuer chain (PEM). */
  readonly certificatePem?: pulumi.Output<string>;
  /** Certificate identities: secret. */
  readonly privateKeyPem?: pulumi.Output<string>;
  readonly certificateExpires?: pulumi.Output<string>;
}

/** The policy definition for subscription queues, in @pulumi/rabbitmq's string-valued form. */
export function subscriptionQueuePolicyDefinition(q: SubscriptionQueuePolicyModel): Record<string, string> {
  const d: Record<string, string> = {};
  if (q.expiresMs !== undefined) d["expires"] = String(q.expiresMs);
  if (q.maxLength !== undefined) d["max-length"] = String(q.maxLength);
  if (q.maxLengthBytes !== undefined) d["max-length-bytes"] = String(q.maxLengthBytes);
  if (q.overflow !== undefined) d["overflow"] = q.overflow;
  return d;
}

export interface TenantFleetOutput {
  readonly name: string;
  readonly auth: FleetModel["auth"];
  readonly devices: number;
  /** Certificate fleets: device name -> its certificate (PEM, leaf only). */
  readonly certificates?: pulumi.Output<Record<string, string>>;
  /** Certificate fleets: what follows a device's certificate in the chain it presents (PEM; empty when the root signs). */
  readonly issuerChainPem?: pulumi.Output<string>;
  /** Certificate fleets: a device's MQTT client id (its certificate's DN), `{device}` for its name. */
  readonly clientIdTemplate?: string;
}

export class Tenant extends pulumi.ComponentResource {
  public readonly vhost: pulumi.Output<string>;
  public readonly identities: Record<string, TenantIdentityOutput>;
  public readonly fleets: Record<string, TenantFleetOutput>;

  constructor(name: string, tenantArgs: TenantArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validated before the component (or anything) is registered.
    const model = validateTenant(tenantArgs);
    // Nothing from args goes to super(): it would be recorded as inputs, secrets included.
    super("rabbitmq-mqtt:index:Tenant", name, {}, opts);
    const { provider, connection } = tenantArgs.broker;
    const args: ResolvedTenantArgs = {
      model,
      provider,
      connection,
      ...(tenantArgs.passwords !== undefined ? { passwords: checkedPasswords(tenantArgs.passwords) } : {}),
      ...(tenantArgs.certificates !== undefined ? { certificates: tenantArgs.certificates } : {}),
    };
    const rmq = { parent: this, provider };

    const vhost = new rabbitmq.VHost(`${name}-vhost`, { name: model.vhost }, { ...rmq, protect: model.protect });
    this.vhost = vhost.name;

    new VhostMetadata(
      `${name}-vhost-metadata`,
      { connection, vhost: vhost.name, description: model.description, tags: [...model.tags] },
      { parent: this },
    );

    const vhostLimits = limitsRecord({ "max-connections": model.limits.maxConnections, "max-queues": model.limits.maxQueues });
    if (Object.keys(vhostLimits).length > 0) {
      new VhostLimits(`${name}-vhost-limits`, { connection, target: vhost.name, limits: vhostLimits }, { parent: this });
    }

    if (model.subscriptionQueues) {
      const definition = subscriptionQueuePolicyDefinition(model.subscriptionQueues);
      if (Object.keys(definition).length > 0) {
        new rabbitmq.Policy(
          `${name}-mqtt-subscription-queues`,
          {
            name: "mqtt-subscription-queues",
            vhost: vhost.name,
            policy: {
              pattern: `^${escapeRegex(MQTT_SUBSCRIPTION_QUEUE_PREFIX)}`,
              applyTo: "queues",
              priority: model.subscriptionQueues.priority,
              definition,
            },
          },
          rmq,
        );
      }
    }

    this.identities = {};
    const lanes: pulumi.Resource[][] = Array.from({ length: PROVIDER_LANES }, () => []);
    model.identities.forEach((identity, i) => {
      const lane = i % PROVIDER_LANES;
      const declared = this.declareIdentity(name, identity, vhost, args, rmq, lanes[lane] ?? []);
      this.identities[identity.name] = declared.output;
      lanes[lane] = declared.providerResources;
    });

    // One resource per fleet, whatever its size (components/management/device-fleet.ts).
    this.fleets = {};
    for (const fleet of model.fleets) {
      this.fleets[fleet.name] = this.declareFleet(name, fleet, vhost, args);
    }

    this.registerOutputs({
      vhost: this.vhost,
      identities: Object.fromEntries(
        Object.values(this.identities).map((i) => [
          i.name,
          { username: i.username, role: i.role, clientIdPattern: i.clientIdPattern },
        ]),
      ),
    });
  }

  private declareFleet(name: string, fleet: FleetModel, vhost: rabbitmq.VHost, args: ResolvedTenantArgs): TenantFleetOutput {
    const cert = fleet.certificate;
    let signing: Pick<DeviceFleetArgs, "certificate" | "issuer" | "template"> = { template: fleet.template };
    if (cert !== undefined) {
      const certs = args.certificates;
      if (certs === undefined) throw new Error(`fleet ${fleet.name} uses certificate auth, but the tenant has no certificate issuer`);
      signing = {
        // The device's broker user is the login name the broker derives, per ssl_cert_login_from.
        template: pulumi.output(certs.loginFrom).apply((from) => ({ ...fleet.template, username: cert.usernames[from] })),
        certificate: { subject: cert.subject, validityHours: args.model.certificates.validityHours, earlyRenewalHours: args.model.certificates.earlyRenewalHours },
        issuer: pulumi.secret(pulumi.output(certs.issuer).apply((i) => ({ certPem: i.certPem, privateKeyPem: i.privateKeyPem, chainPem: i.chainPem }))),
      };
    }
    const resource = new DeviceFleet(
      `${name}-fleet-${fleet.name}`,
      {
        connection: args.connection,
        vhost: vhost.name,
        fleet: fleet.name,
        limits: limitsRecord({ "max-connections": fleet.limits.maxConnections, "max-channels": fleet.limits.maxChannels }),
        members: Object.fromEntries(fleet.devices.map((d) => [d.name, deviceFingerprint(d)])),
        credentials: Object.fromEntries(
          fleet.devices.map((d) => [
            d.name,
            { ...(d.csr !== undefined ? { csr: d.csr } : { passwordHash: d.passwordHash }), ...(d.user !== undefined ? { user: d.user } : {}) },
          ]),
        ),
        summary: `${fleet.devices.length} devices (registry ${fleet.registry})`,
        ...signing,
      },
      { parent: this, dependsOn: [vhost] },
    );
    const base = { name: fleet.name, auth: fleet.auth, devices: fleet.devices.length };
    if (cert === undefined || args.certificates === undefined) return base;
    return {
      ...base,
      certificates: resource.certificates.apply((c) => Object.fromEntries(Object.entries(c ?? {}).map(([n, v]) => [n, v.pem]))),
      // Certificates are public: only the issuer's key is a secret.
      issuerChainPem: pulumi.unsecret(pulumi.output(args.certificates.issuer).apply((i) => i.chainPem)),
      clientIdTemplate: cert.usernames.distinguished_name.split(DEVICE_TOKEN).join("{device}"),
    };
  }

  private declareIdentity(
    name: string,
    identity: IdentityModel,
    vhost: rabbitmq.VHost,
    args: ResolvedTenantArgs,
    rmq: { parent: pulumi.Resource; provider: rabbitmq.Provider },
    /** The resources of the identity before this one in its lane (see PROVIDER_LANES). */
    after: pulumi.Resource[],
  ): { output: TenantIdentityOutput; providerResources: pulumi.Resource[] } {
    const base = `${name}-${identity.name}`;
    let user: pulumi.Resource & { name: pulumi.Output<string> };
    let credential: pulumi.Output<string>;
    let output: Pick<TenantIdentityOutput, "password" | "certificatePem" | "privateKeyPem" | "certificateExpires">;
    if (identity.certificate !== undefined) {
      const certs = args.certificates;
      if (certs === undefined) throw new Error(`identity ${identity.name} uses certificate auth, but the tenant has no certificate issuer`);
      const issuer = pulumi.output(certs.issuer);
      const certificate = new IssuedCertificate(
        `${base}-certificate`,
        {
          subject: identity.certificate.subject,
          key: args.model.certificates.key,
          validity: args.model.certificates,
          allowedUses: CLIENT_USES,
          issuer: {
            // Certificates are public: only the issuer's key stays a secret.
            certPem: pulumi.unsecret(issuer.apply((i) => i.certPem)),
            privateKeyPem: pulumi.secret(issuer.apply((i) => i.privateKeyPem)),
            chainPem: pulumi.unsecret(issuer.apply((i) => i.chainPem)),
          },
        },
        { parent: this },
      );
      const loginNames = identity.certificate.loginNames;
      user = new CertificateUser(
        `${base}-user`,
        { connection: args.connection, name: pulumi.output(certs.loginFrom).apply((from) => loginNames[from]) },
        { parent: this, dependsOn: after },
      );
      // A new certificate is no reason to close sessions: the old one stays valid until it expires.
      credential = user.name;
      output = { certificatePem: certificate.chainPem, privateKeyPem: certificate.privateKeyPem, certificateExpires: certificate.validityEndTime };
    } else {
      const given = args.passwords?.[identity.name];
      const password =
        given !== undefined
          ? pulumi.secret(given)
          : pulumi.secret(
              new random.RandomPassword(`${base}-password`, { length: 32, special: false }, { parent: this }).result,
            );
      // No tags: MQTT identities get no management-UI or API access.
      user = new rabbitmq.User(`${base}-user`, { name: identity.username, password, tags: [] }, { ...rmq, dependsOn: after });
      credential = password;
      output = { password };
    }

    const { vhost: vp, topic } = identity.permissions;
    const permissions = new rabbitmq.Permissions(
      `${base}-permissions`,
      { user: user.name, vhost: vhost.name, permissions: { configure: vp.configure, write: vp.write, read: vp.read } },
      rmq,
    );
    // Always declared, even for an identity without grants: without topic permissions RabbitMQ
    // allows every topic.
    const topicPermissions = new rabbitmq.TopicPermissions(
      `${base}-topic-permissions`,
      { user: user.name, vhost: vhost.name, permissions: [{ exchange: topic.exchange, write: topic.write, read: topic.read }] },
      rmq,
    );

    // Access changes must reach live clients and saved sessions too (see IdentitySessions).
    new IdentitySessions(
      `${base}-sessions`,
      {
        connection: args.connection,
        vhost: vhost.name,
        username: user.name,
        exchange: topic.exchange,
        readPattern: topic.read,
        queues: [...identity.permissions.queues],
        accessDigest: pulumi.secret(
          credential.apply((c) => createHash("sha256").update(JSON.stringify(identity.permissions)).update("\0").update(c).digest("hex")),
        ),
      },
      { parent: this, dependsOn: [user, permissions, topicPermissions] },
    );

    const userLimits = limitsRecord({
      "max-connections": identity.limits.maxConnections,
      "max-channels": identity.limits.maxChannels,
    });
    if (Object.keys(userLimits).length > 0) {
      new UserLimits(`${base}-limits`, { connection: args.connection, target: user.name, limits: userLimits }, { parent: this });
    }

    return {
      output: {
        name: identity.name,
        auth: identity.auth,
        username: user.name,
        role: identity.role,
        clientIdPattern: identity.permissions.clientIdPattern,
        clientIds: identity.permissions.clientIds,
        ...output,
      },
      providerResources: [user, permissions, topicPermissions],
    };
  }
}

function limitsRecord(values: Record<string, number | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(values)) if (v !== undefined) out[k] = v;
  return out;
}
