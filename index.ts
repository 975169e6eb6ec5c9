/**
 * rabbitmq-mqtt-provisioner: Pulumi components for multi-tenant MQTT on RabbitMQ.
 *
 *   import { Tenant, brokerConnection } from "rabbitmq-mqtt-provisioner";
 *
 *   const broker = brokerConnection("broker", { managementUrl, username, password, caCertPem });
 *   const acme = new Tenant("acme", { tenant: { name: "acme", identities: [...] }, broker });
 *
 * `Tenant` validates its `tenant` argument with the same schema as the tenant stack's `tenant`
 * config (README, "Tenant stack config reference") before it registers anything; a mistake throws
 * a ConfigError naming the field. `DockerBroker`, `KubernetesBroker` and `PlatformPki` do the same
 * with the platform stack's `platform` config. The stack programs in stacks/ use this entry point
 * the same way.
 */

// Tenants and the broker connection they are applied through.
export { Tenant, PROVIDER_LANES, validateTenant, type TenantArgs, type TenantFleetOutput, type TenantIdentityOutput } from "./components/tenant";
export { brokerConnection, caCertFile, type BrokerConnection, type BrokerConnectionArgs } from "./components/broker-connection";

// The platform: brokers on Docker and Kubernetes, and their PKI.
export { DockerBroker, type DockerBrokerArgs, type BrokerTls } from "./components/platform/docker-broker";
export { KubernetesBroker, type KubernetesBrokerArgs } from "./components/platform/kubernetes-broker";
export { platformCertificateNames } from "./components/platform/certificate-names";
export { PlatformPki, type PlatformPkiArgs, type IssuerOutput, type IssuersOutput } from "./components/pki/platform-pki";
export { IssuedCertificate, RootAuthority, type IssuedCertificateArgs, type RootAuthorityArgs } from "./components/pki";

// Management resources (dynamic resources on the management API; bounded and retried calls).
export { VhostMetadata, type VhostMetadataArgs } from "./components/management/vhost-metadata";
export { VhostLimits, UserLimits, type LimitsArgs } from "./components/management/limits";
export { CertificateUser, type CertificateUserArgs } from "./components/management/certificate-user";
export { IdentitySessions, type IdentitySessionsArgs } from "./components/management/identity-sessions";
export { MqttVhostMapping, type MqttVhostMappingArgs } from "./components/management/mqtt-vhost-mapping";
export { DeviceFleet, type DeviceFleetArgs } from "./components/management/device-fleet";
export { MANAGEMENT_CONCURRENCY, type ManagementConnection } from "./components/management/api";

// The pure core: config schemas and their parsers (what the components validate with).
export { ConfigError, type ConfigIssue } from "./core/errors";
export { parseTenantConfig, tenantConfigSchema, type TenantConfigInput, type TenantModel } from "./core/tenant-config";
export {
  parsePlatformConfig,
  parsePkiConfig,
  platformConfigSchema,
  type PlatformConfigInput,
  type PkiConfigInput,
  type PlatformModel,
  type PkiModel,
} from "./core/platform-config";
export { stackConfigJsonSchema } from "./core/config-json-schema";
