/**
 * The platform stack: the broker that tenant stacks provision. Config `platform` (see README);
 * everything is validated before the first resource is registered. Its outputs are what tenant
 * stacks read through a StackReference (core/broker-connection.ts PLATFORM_OUTPUTS).
 */
import * as pulumi from "@pulumi/pulumi";
import { PLATFORM_OUTPUTS } from "../core/broker-connection";
import { ConfigError } from "../core/errors";
import { PLATFORM_KEY, parsePlatformConfig, type PlatformModel } from "../core/platform-config";
import { DockerBroker } from "../components/platform/docker-broker";
import { KubernetesBroker } from "../components/platform/kubernetes-broker";

export function validatePlatformStack(): PlatformModel {
  const raw = pulumi.runtime.getConfig(`${pulumi.getProject()}:${PLATFORM_KEY}`);
  if (raw === undefined) throw new ConfigError([{ key: PLATFORM_KEY, message: "required: the broker platform (target, image, broker); see README" }]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw) as unknown;
  } catch {
    throw new ConfigError([{ key: PLATFORM_KEY, message: "must be an object" }]);
  }
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
