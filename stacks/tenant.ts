/**
 * The tenant stack: one tenant's vhost, identities and permissions on a shared broker.
 *
 * Config (see README): `tenant` (the tenant), `broker` (where the management API is, directly or
 * through the platform stack), the secrets `brokerPassword` and `identityPasswords`.
 * Everything is validated before the first resource is registered.
 */
import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as rabbitmq from "@pulumi/rabbitmq";
import {
  BROKER_KEY,
  BROKER_PASSWORD_KEY,
  PLATFORM_OUTPUTS,
  TENANT_OUTPUTS,
  parseBrokerConnection,
  type BrokerConnectionConfig,
} from "../core/broker-connection";
import { ConfigError } from "../core/errors";
import { parseJsonConfig, rawConfig } from "./config";
import { IDENTITY_PASSWORDS_KEY, TENANT_KEY, parseTenantConfig, type TenantModel } from "../core/tenant-config";
import type { CertLoginFrom } from "../core/dn";
import type { ManagementConnection } from "../components/management/api";
import type { IssuersOutput } from "../components/pki/platform-pki";
import { MqttVhostMapping } from "../components/management/mqtt-vhost-mapping";
import { Tenant } from "../components/tenant";

export interface ValidatedTenantStack {
  readonly model: TenantModel;
  readonly broker: BrokerConnectionConfig;
  readonly passwords: Readonly<Record<string, string>>;
}

/** All validation, no resources: throws ConfigError naming the key. */
export function validateTenantStack(): ValidatedTenantStack {
  const tenantRaw = parseJsonConfig(TENANT_KEY, rawConfig(TENANT_KEY), false);
  if (tenantRaw === undefined) {
    throw new ConfigError([{ key: TENANT_KEY, message: "required: the tenant (name, identities, ...); see README" }]);
  }
  const passwordsRaw = parseJsonConfig(IDENTITY_PASSWORDS_KEY, rawConfig(IDENTITY_PASSWORDS_KEY), true) ?? {};
  if (typeof passwordsRaw !== "object" || passwordsRaw === null || Array.isArray(passwordsRaw)) {
    throw new ConfigError([{ key: IDENTITY_PASSWORDS_KEY, message: "must be an object of identity name -> password (secret)" }]);
  }
  const passwords = passwordsRaw as Record<string, unknown>;
  // Fleet registries: files of the project, relative to Pulumi.yaml (the program's working directory).
  const model = parseTenantConfig(tenantRaw, passwords, (file) => readFileSync(path.resolve(file), "utf8"));
  const brokerRaw = parseJsonConfig(BROKER_KEY, rawConfig(BROKER_KEY), false);
  if (brokerRaw === undefined) {
    throw new ConfigError([
      { key: BROKER_KEY, message: "required: { managementUrl, username } or { stackReference: <org>/<project>/<stack> }" },
    ]);
  }
  const broker = parseBrokerConnection(brokerRaw, rawConfig(BROKER_PASSWORD_KEY) !== undefined);
  if (broker.kind === "direct") {
    const issues = model.identities.flatMap((identity, i) =>
      identity.auth === "certificate"
        ? [{ key: `${TENANT_KEY}.identities[${i}].auth`, message: "certificate identities are signed by the platform stack's CA: set broker.stackReference (or use auth: password)" }]
        : [],
    );
    model.fleets.forEach((fleet, i) => {
      if (fleet.auth === "certificate") {
        issues.push({ key: `${TENANT_KEY}.fleets[${i}].auth`, message: "certificate fleets are signed by the platform stack's CA: set broker.stackReference (or use auth: password)" });
      }
    });
    if (issues.length > 0) throw new ConfigError(issues);
  }
  return { model, broker, passwords: passwords as Record<string, string> };
}

interface PlatformView {
  readonly connection: pulumi.Output<ManagementConnection>;
  /** The CA the management API's certificate chains to, when it is a private one. */
  readonly managementCaCertPem?: pulumi.Output<string>;
  /** Only through a stack reference: the platform's CA, issuers and certificate login setting. */
  readonly pki?: {
    readonly caCertPem: pulumi.Output<string>;
    readonly issuers: pulumi.Output<IssuersOutput>;
    readonly loginFrom: pulumi.Output<CertLoginFrom>;
  };
}

function platformView(broker: BrokerConnectionConfig): PlatformView {
  if (broker.kind === "direct") {
    const password = new pulumi.Config().requireSecret(BROKER_PASSWORD_KEY);
    const ca = broker.caCertificatePem;
    return {
      connection: pulumi.secret(
        password.apply(
          (p): ManagementConnection => ({ managementUrl: broker.managementUrl, username: broker.username, password: p, ...(ca !== undefined ? { caCertPem: ca } : {}) }),
        ),
      ),
      ...(ca !== undefined ? { managementCaCertPem: pulumi.output(ca) } : {}),
    };
  }
  const platform = new pulumi.StackReference(broker.stackReference);
  const caCertPem = platform.requireOutput(PLATFORM_OUTPUTS.caCertificatePem).apply(String);
  return {
    managementCaCertPem: caCertPem,
    connection: pulumi.secret(
      pulumi
        .all([
          platform.requireOutput(PLATFORM_OUTPUTS.managementUrl),
          platform.requireOutput(PLATFORM_OUTPUTS.adminUsername),
          platform.requireOutput(PLATFORM_OUTPUTS.adminPassword),
          caCertPem,
        ])
        .apply(([managementUrl, username, password, ca]) => ({
          managementUrl: String(managementUrl),
          username: String(username),
          password: String(password),
          caCertPem: ca,
        })),
    ),
    pki: {
      caCertPem,
      issuers: pulumi.secret(platform.requireOutput(PLATFORM_OUTPUTS.certificateIssuers) as pulumi.Output<IssuersOutput>),
      loginFrom: platform.requireOutput(PLATFORM_OUTPUTS.certificateLoginFrom) as pulumi.Output<CertLoginFrom>,
    },
  };
}

/**
 * The rabbitmq provider (the terraform provider) trusts a private CA only from a file: the
 * platform's CA certificate (public) is written where the provider can read it. The directory is
 * the current user's own (created 0700, refused if anyone else owns it or can write to it): a CA
 * file another local user could swap would let them intercept the admin password. The path is
 * stable, so the provider's inputs do not change from run to run; `pulumi up` and `preview`
 * rewrite the file (run one of them before a `destroy` on a machine that lacks it).
 */
export function caCertFile(caCertPem: string, base = os.tmpdir()): string {
  const uid = process.getuid?.() ?? -1;
  const dir = path.join(base, `rabbitmq-mqtt-${uid >= 0 ? uid : "user"}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || (uid >= 0 && st.uid !== uid) || (st.mode & 0o022) !== 0) {
    throw new Error(`${dir} must be a directory of the current user that no one else can write to`);
  }
  const file = path.join(dir, `ca-${createHash("sha256").update(caCertPem).digest("hex").slice(0, 16)}.pem`);
  writeFileSync(file, caCertPem, { mode: 0o644 });
  return file;
}

export function tenantStack() {
  const { model, broker, passwords } = validateTenantStack();

  const { connection, pki, managementCaCertPem } = platformView(broker);
  const provider = new rabbitmq.Provider("broker", {
    endpoint: connection.apply((c) => c.managementUrl),
    username: connection.apply((c) => c.username),
    password: pulumi.secret(connection.apply((c) => c.password)),
    ...(managementCaCertPem !== undefined ? { cacertFile: managementCaCertPem.apply((pem) => caCertFile(pem)) } : {}),
  });

  const tenant = new Tenant(model.name, {
    model,
    provider,
    connection,
    passwords: Object.fromEntries(Object.entries(passwords).map(([k, v]) => [k, pulumi.secret(v)])),
    ...(pki !== undefined
      ? {
          certificates: {
            // The tenant's own intermediate when the platform made one, else the root.
            issuer: pulumi.secret(pki.issuers.apply((i) => i.tenants[model.name] ?? i.root)),
            loginFrom: pki.loginFrom,
          },
        }
      : {}),
  });

  // Certificate logins land in this tenant's vhost: login name -> vhost, broker-wide.
  const certificateIdentities = Object.values(tenant.identities).filter((i) => i.auth === "certificate");
  if (certificateIdentities.length > 0) {
    new MqttVhostMapping(
      `${model.name}-mqtt-default-vhosts`,
      {
        connection,
        parameter: "mqtt_default_vhosts",
        entries: pulumi.all(certificateIdentities.map((i) => i.username)).apply((names) => Object.fromEntries(names.map((n) => [n, model.vhost]))),
      },
      { dependsOn: [tenant] },
    );
  }

  if (Object.keys(model.portMappings).length > 0) {
    new MqttVhostMapping(
      `${model.name}-mqtt-port-to-vhost`,
      { connection, parameter: "mqtt_port_to_vhost_mapping", entries: model.portMappings },
      { dependsOn: [tenant] },
    );
  }

  return {
    vhost: tenant.vhost,
    identities: Object.fromEntries(
      Object.values(tenant.identities).map((i) => [
        i.name,
        {
          auth: i.auth,
          username: i.username,
          role: i.role,
          clientIdPattern: i.clientIdPattern,
          ...(i.auth === "password"
            ? // MQTT logins name the vhost unless they use a dedicated port: `<vhost>:<user>`.
              { mqttUsername: i.username.apply((u) => `${model.vhost}:${u}`) }
            : // Certificate logins send no username: the certificate names the user and its vhost,
              // and the client id must be the certificate's DN (enforced by RabbitMQ 4.x).
              { certificatePem: i.certificatePem, certificateExpires: i.certificateExpires, mqttClientId: i.clientIds[0] }),
        },
      ]),
    ),
    identityPasswords: pulumi.secret(
      pulumi.all(Object.fromEntries(Object.values(tenant.identities).flatMap((i) => (i.password ? [[i.name, i.password]] : [])))),
    ),
    identityPrivateKeys: pulumi.secret(
      pulumi.all(Object.fromEntries(Object.values(tenant.identities).flatMap((i) => (i.privateKeyPem ? [[i.name, i.privateKeyPem]] : [])))),
    ),
    ...(pki !== undefined ? { caCertificatePem: pki.caCertPem } : {}),
    mqttPorts: Object.keys(model.portMappings).map(Number),
    // Per fleet: its size and, for a certificate fleet, each device's certificate (public) and
    // the client id it must use. No password hash and no CSR: those stay in the registry.
    fleets: Object.fromEntries(
      Object.values(tenant.fleets).map((f) => [
        f.name,
        {
          auth: f.auth,
          devices: f.devices,
          ...(f.certificates !== undefined ? { certificates: f.certificates, issuerChainPem: f.issuerChainPem, mqttClientId: f.clientIdTemplate } : {}),
        },
      ]),
    ),
    // Read by the platform stack (platform.broker.tokens.issuer.tenantStacks); no secret in it.
    [TENANT_OUTPUTS.tokenApps]: { tenant: model.name, vhost: model.vhost, apps: model.appsConfig },
  };
}
