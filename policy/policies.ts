/** The policies of the pack (policy/index.ts serves them), importable by tests without starting a policy server. */
import { type PolicyConfigSchema, type ReportViolation, type ResourceValidationArgs, type ResourceValidationPolicy, type StackValidationPolicy } from "@pulumi/policy";
import { z } from "zod";
import {
  imagePinProblems,
  kubernetesPlaintextProblems,
  secretOutputProblems,
  stackOfUrn,
  topicVariableProblems,
  userTagProblems,
  usersWithoutTopicPermissions,
  vhostProtectionProblems,
  parseVersion,
  type PolicyResource,
} from "./rules";

function asResource(args: { type: string; name: string; props: Record<string, unknown>; opts: { protect: boolean; additionalSecretOutputs: string[] } }): PolicyResource {
  return { type: args.type, name: args.name, props: args.props, opts: { protect: args.opts.protect, additionalSecretOutputs: args.opts.additionalSecretOutputs } };
}

/**
 * A policy's config: one zod schema, from which the JSON Schema the engine checks config against
 * (`configSchema`) is derived, and which the policy applies itself too. A value it refuses is a
 * violation naming the key: a mandatory policy fails closed rather than run on a config it does
 * not understand.
 */
type ConfigShape = z.ZodObject<Record<string, z.ZodType>>;

function configSchemaOf(schema: ConfigShape): PolicyConfigSchema {
  const json = z.toJSONSchema(schema, { io: "input", target: "draft-7" }) as { properties: PolicyConfigSchema["properties"] };
  return { properties: json.properties };
}

function configOf<S extends ConfigShape>(policy: string, schema: S, raw: unknown, report: ReportViolation): z.output<S> | undefined {
  const parsed = schema.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  for (const i of parsed.error.issues) report(`policy config ${policy}.${i.path.join(".")}: ${i.message}`);
  return undefined;
}

function resourcePolicy<S extends ConfigShape>(
  name: string,
  description: string,
  config: S,
  rule: (r: PolicyResource, config: z.output<S>, args: ResourceValidationArgs) => string[],
): ResourceValidationPolicy {
  return {
    name,
    description,
    enforcementLevel: "mandatory",
    ...(Object.keys(config.shape).length > 0 ? { configSchema: configSchemaOf(config) } : {}),
    validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
      const cfg = configOf(name, config, args.getConfig<object>(), reportViolation);
      if (cfg === undefined) return;
      for (const problem of rule(asResource(args), cfg, args)) reportViolation(problem);
    },
  };
}

const NO_CONFIG = z.strictObject({});
/** A RabbitMQ user name: what allowTagsFor lists. */
const userNames = z.array(z.string().min(1, { error: "must be a user name" }), { error: "must be a list of user names" }).default([]);

const TOPIC_PERMISSIONS_CONFIG = z.strictObject({
  mqttExchange: z.string({ error: "must be an exchange name such as amq.topic" }).min(1, { error: "must be an exchange name such as amq.topic" }).default("amq.topic"),
});

export const topicPermissionsPolicy: StackValidationPolicy = {
  name: "mqtt-users-have-topic-permissions",
  description: "Every broker user has topic permissions on the MQTT exchange (without any, RabbitMQ allows every topic).",
  enforcementLevel: "mandatory",
  configSchema: configSchemaOf(TOPIC_PERMISSIONS_CONFIG),
  validateStack: (args, reportViolation) => {
    const cfg = configOf("mqtt-users-have-topic-permissions", TOPIC_PERMISSIONS_CONFIG, args.getConfig<object>(), reportViolation);
    if (cfg === undefined) return;
    for (const problem of usersWithoutTopicPermissions(args.resources.map(asResource), cfg.mqttExchange)) reportViolation(problem);
  },
};

export const resourcePolicies: ResourceValidationPolicy[] = [
  resourcePolicy("mqtt-users-have-no-tags", "No management tags on MQTT users.", z.strictObject({ allowTagsFor: userNames }), (r, cfg) => userTagProblems(r, cfg.allowTagsFor)),
  resourcePolicy(
    "tenant-vhosts-protected",
    "Tenant vhosts are protected from deletion (development stacks may be listed in unprotectedStacks).",
    z.strictObject({ unprotectedStacks: z.array(z.string().min(1, { error: "must be a stack name" }), { error: "must be a list of stack names" }).default([]) }),
    (r, cfg, args) => vhostProtectionProblems(r, stackOfUrn(args.urn), cfg.unprotectedStacks),
  ),
  resourcePolicy(
    "no-unescaped-topic-variables",
    "No {client_id} or {username} in topic permission patterns on brokers before 4.2.4, which do not escape them.",
    z.strictObject({
      brokerVersion: z
        .string({ error: "must be the broker's RabbitMQ version x.y.z (or an image reference with it), e.g. 4.2.4" })
        .refine((v) => parseVersion(v) !== undefined, { error: "must be the broker's RabbitMQ version x.y.z (or an image reference with it), e.g. 4.2.4" })
        .optional(),
    }),
    (r, cfg) => topicVariableProblems(r, cfg.brokerVersion),
  ),
  resourcePolicy("images-pinned", "Broker and workload images name a version tag or a digest.", NO_CONFIG, (r) => imagePinProblems(r)),
  resourcePolicy("kubernetes-no-plaintext-listeners", "The broker on Kubernetes opens no plaintext listener.", NO_CONFIG, (r) => kubernetesPlaintextProblems(r)),
  resourcePolicy("credentials-are-secret-outputs", "Outputs of this project's dynamic resources that carry credentials or keys are secret.", NO_CONFIG, (r) => secretOutputProblems(r)),
];

export const policies = [topicPermissionsPolicy, ...resourcePolicies];
