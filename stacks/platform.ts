/**
 * The platform stack: the broker that tenant stacks provision. Config `platform` (see README);
 * everything is validated before the first resource is registered. Its outputs are what tenant
 * stacks read through a StackReference (core/broker-connection.ts PLATFORM_OUTPUTS).
 */
import { PLATFORM_OUTPUTS } from "../core/broker-connection";
import { ConfigError } from "../core/errors";
import { PLATFORM_KEY, parsePlatformConfig, type PlatformModel } from "../core/platform-config";
import { parseJsonConfig, rawConfig } from "./config";
import { DockerBroker } from "../components/platform/docker-broker";
import { KubernetesBroker } from "../components/platform/kubernetes-broker";

export function validatePlatformStack(): PlatformModel {
  const parsed = parseJsonConfig(PLATFORM_KEY, rawConfig(PLATFORM_KEY), false);
  if (parsed === undefined) throw new ConfigError([{ key: PLATFORM_KEY, message: "required: the broker platform (target, image, broker); see README" }]);
  return parsePlatformConfig(parsed);
}

export function platformStack() {
  const model = validatePlatformStack();
  const broker = model.target === "docker" ? new DockerBroker("rabbitmq", { model }) : new KubernetesBroker("rabbitmq", { model });
  return {
    [PLATFORM_OUTPUTS.managementUrl]: broker.managementUrl,
    [PLATFORM_OUTPUTS.adminUsername]: broker.adminUsername,
    [PLATFORM_OUTPUTS.adminPassword]: broker.adminPassword,
    mqttEndpoints: broker.mqttEndpoints,
    brokerVersion: model.broker.versionText,
    ...(broker instanceof KubernetesBroker ? { tuningNotApplied: broker.tuningGaps } : {}),
  };
}
