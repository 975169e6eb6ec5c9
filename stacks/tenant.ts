/**
 * The tenant stack: one tenant's vhost, identities and permissions on a shared broker.
 *
 * Config (see README): `tenant` (the tenant), `broker` (where the management API is, directly or
 * through the platform stack), the secrets `brokerPassword` and `identityPasswords`.
 * Everything is validated before the first resource is registered.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
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
import { IDENTITY_PASSWORDS_KEY, TENANT_KEY, type TenantConfigInput, type TenantModel } from "../core/tenant-config";
import type { CertLoginFrom } from "../core/dn";
// The stack uses the library as any program would: through its entry point.
import { MqttVhostMapping, Tenant, brokerConnection, validateTenant, type BrokerConnectionArgs, type IssuersOutput } from "../index";

export interface ValidatedTenantStack {
  readonly model: TenantModel;
  /** The config as given: the Tenant validates it again (from a cache: the same object). */
  readonly tenantRaw: TenantConfigInput;
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
  const model = validateTenant({ tenant: tenantRaw as TenantConfigInput, passwords: passwords as Record<string, string>, readRegistry: (file) => readFileSync(path.resolve(file), "utf8") });
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
  return { model, tenantRaw: tenantRaw as TenantConfigInput, broker, passwords: passwords as Record<string, string> };
}

interface PlatformView {
  readonly broker: BrokerConnectionArgs;
  /** Only through a stack reference: the platform's CA, issuers and certificate login setting. */
  readonly pki?: {
    readonly caCertPem: pulumi.Output<string>;
    readonly issuers: pulumi.Output<IssuersOutput>;
    readonly loginFrom: pulumi.Output<CertLoginFrom>;
  };
}

function platformView(broker: BrokerConnectionConfig): PlatformView {
  if (broker.kind === "direct") {
    const ca = broker.caCertificatePem;
    return {
      broker: {
        managementUrl: broker.managementUrl,
        username: broker.username,
        password: new pulumi.Config().requireSecret(BROKER_PASSWORD_KEY),
        ...(ca !== undefined ? { caCertPem: ca } : {}),
      },
    };
  }
  const platform = new pulumi.StackReference(broker.stackReference);
  const caCertPem = platform.requireOutput(PLATFORM_OUTPUTS.caCertificatePem).apply(String);
  return {
    broker: {
      managementUrl: platform.requireOutput(PLATFORM_OUTPUTS.managementUrl).apply(String),
      username: platform.requireOutput(PLATFORM_OUTPUTS.adminUsername).apply(String),
      password: pulumi.secret(platform.requireOutput(PLATFORM_OUTPUTS.adminPassword).apply(String)),
      caCertPem,
    },
    pki: {
      caCertPem,
      issuers: pulumi.secret(platform.requireOutput(PLATFORM_OUTPUTS.certificateIssuers) as pulumi.Output<IssuersOutput>),
      loginFrom: platform.requireOutput(PLATFORM_OUTPUTS.certificateLoginFrom) as pulumi.Output<CertLoginFrom>,
    },
  };
}

/** Where the stack's CA file for the rabbitmq provider goes: see components/broker-connection.ts. */
export { caCertFile } from "../components/broker-connection";

export function tenantStack() {
  const { model, tenantRaw, broker, passwords } = validateTenantStack();

  const view = platformView(broker);
  const pki = view.pki;
  // The provider keeps its name "broker" (its URN) from before the components took a connection.
  const brokerConn = brokerConnection("broker", view.broker, undefined, BROKER_KEY);
  const connection = brokerConn.connection;

  const tenant = new Tenant(model.name, {
    tenant: tenantRaw,
    broker: brokerConn,
    passwords,
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
