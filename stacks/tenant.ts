/**
 * The tenant stack: one tenant's vhost, identities and permissions on a shared broker.
 *
 * Config (see README): `tenant` (the tenant), `broker` (where the management API is, directly or
 * through the platform stack), the secrets `brokerPassword` and `identityPasswords`.
 * Everything is validated before the first resource is registered.
 */
import * as pulumi from "@pulumi/pulumi";
import * as rabbitmq from "@pulumi/rabbitmq";
import {
  BROKER_KEY,
  BROKER_PASSWORD_KEY,
  PLATFORM_OUTPUTS,
  parseBrokerConnection,
  type BrokerConnectionConfig,
} from "../core/broker-connection";
import { ConfigError } from "../core/errors";
import { parseJsonConfig, rawConfig } from "./config";
import { IDENTITY_PASSWORDS_KEY, TENANT_KEY, parseTenantConfig, type TenantModel } from "../core/tenant-config";
import type { ManagementConnection } from "../components/management/api";
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
  const model = parseTenantConfig(tenantRaw, passwords);
  const brokerRaw = parseJsonConfig(BROKER_KEY, rawConfig(BROKER_KEY), false);
  if (brokerRaw === undefined) {
    throw new ConfigError([
      { key: BROKER_KEY, message: "required: { managementUrl, username } or { stackReference: <org>/<project>/<stack> }" },
    ]);
  }
  const broker = parseBrokerConnection(brokerRaw, rawConfig(BROKER_PASSWORD_KEY) !== undefined);
  return { model, broker, passwords: passwords as Record<string, string> };
}

function brokerConnection(broker: BrokerConnectionConfig): pulumi.Output<ManagementConnection> {
  if (broker.kind === "direct") {
    const password = new pulumi.Config().requireSecret(BROKER_PASSWORD_KEY);
    return pulumi.secret(
      password.apply((p): ManagementConnection => ({ managementUrl: broker.managementUrl, username: broker.username, password: p })),
    );
  }
  const platform = new pulumi.StackReference(broker.stackReference);
  return pulumi.secret(
    pulumi
      .all([
        platform.requireOutput(PLATFORM_OUTPUTS.managementUrl),
        platform.requireOutput(PLATFORM_OUTPUTS.adminUsername),
        platform.requireOutput(PLATFORM_OUTPUTS.adminPassword),
      ])
      .apply(([managementUrl, username, password]) => ({
        managementUrl: String(managementUrl),
        username: String(username),
        password: String(password),
      })),
  );
}

export function tenantStack() {
  const { model, broker, passwords } = validateTenantStack();

  const connection = brokerConnection(broker);
  const provider = new rabbitmq.Provider("broker", {
    endpoint: connection.apply((c) => c.managementUrl),
    username: connection.apply((c) => c.username),
    password: pulumi.secret(connection.apply((c) => c.password)),
  });

  const tenant = new Tenant(model.name, {
    model,
    provider,
    connection,
    passwords: Object.fromEntries(Object.entries(passwords).map(([k, v]) => [k, pulumi.secret(v)])),
  });

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
          username: i.username,
          role: i.role,
          clientIdPattern: i.clientIdPattern,
          // MQTT logins name the vhost unless they use a dedicated port: `<vhost>:<user>`.
          mqttUsername: `${model.vhost}:${i.username}`,
        },
      ]),
    ),
    identityPasswords: pulumi.secret(
      pulumi.all(Object.fromEntries(Object.values(tenant.identities).map((i) => [i.name, i.password]))),
    ),
    mqttPorts: Object.keys(model.portMappings).map(Number),
  };
}
