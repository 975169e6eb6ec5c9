/** The policies of the pack (policy/index.ts serves them), importable by tests without starting a policy server. */
import { type ReportViolation, type ResourceValidationArgs, type ResourceValidationPolicy, type StackValidationPolicy } from "@pulumi/policy";
import {
  imagePinProblems,
  kubernetesPlaintextProblems,
  secretOutputProblems,
  stackOfUrn,
  topicVariableProblems,
  userTagProblems,
  usersWithoutTopicPermissions,
  vhostProtectionProblems,
  type PolicyResource,
} from "./rules";

function asResource(args: { type: string; name: string; props: Record<string, unknown>; opts: { protect: boolean; additionalSecretOutputs: string[] } }): PolicyResource {
  return { type: args.type, name: args.name, props: args.props, opts: { protect: args.opts.protect, additionalSecretOutputs: args.opts.additionalSecretOutputs } };
}

function resourcePolicy(name: string, description: string, rule: (r: PolicyResource, args: ResourceValidationArgs) => string[], configSchema?: ResourceValidationPolicy["configSchema"]): ResourceValidationPolicy {
  return {
    name,
    description,
    enforcementLevel: "mandatory",
    ...(configSchema !== undefined ? { configSchema } : {}),
    validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
      for (const problem of rule(asResource(args), args)) reportViolation(problem);
    },
  };
}

export const topicPermissionsPolicy: StackValidationPolicy = {
  name: "mqtt-users-have-topic-permissions",
  description: "Every broker user has topic permissions on the MQTT exchange (without any, RabbitMQ allows every topic).",
  enforcementLevel: "mandatory",
  configSchema: { properties: { mqttExchange: { type: "string", default: "amq.topic" } } },
  validateStack: (args, reportViolation) => {
    const { mqttExchange } = args.getConfig<{ mqttExchange: string }>();
    for (const problem of usersWithoutTopicPermissions(args.resources.map(asResource), mqttExchange)) reportViolation(problem);
  },
};

export const resourcePolicies: ResourceValidationPolicy[] = [
  resourcePolicy(
    "mqtt-users-have-no-tags",
    "No management tags on MQTT users.",
    (r, args) => userTagProblems(r, args.getConfig<{ allowTagsFor: string[] }>().allowTagsFor),
    { properties: { allowTagsFor: { type: "array", items: { type: "string" }, default: [] } } },
  ),
  resourcePolicy(
    "tenant-vhosts-protected",
    "Tenant vhosts are protected from deletion (development stacks may be listed in unprotectedStacks).",
    (r, args) => vhostProtectionProblems(r, stackOfUrn(args.urn), args.getConfig<{ unprotectedStacks: string[] }>().unprotectedStacks),
    { properties: { unprotectedStacks: { type: "array", items: { type: "string" }, default: [] } } },
  ),
  resourcePolicy(
    "no-unescaped-topic-variables",
    "No {client_id} or {username} in topic permission patterns on brokers before 4.2.4, which do not escape them.",
    (r, args) => topicVariableProblems(r, args.getConfig<{ brokerVersion?: string }>().brokerVersion),
    { properties: { brokerVersion: { type: "string" } } },
  ),
  resourcePolicy("images-pinned", "Broker and workload images name a version tag or a digest.", (r) => imagePinProblems(r)),
  resourcePolicy("kubernetes-no-plaintext-listeners", "The broker on Kubernetes opens no plaintext listener.", (r) => kubernetesPlaintextProblems(r)),
  resourcePolicy("credentials-are-secret-outputs", "Outputs of this project's dynamic resources that carry credentials or keys are secret.", (r) => secretOutputProblems(r)),
];

export const policies = [topicPermissionsPolicy, ...resourcePolicies];
