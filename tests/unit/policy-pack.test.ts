/**
 * The CrossGuard policy pack (policy/): each policy rejects a resource that breaks the baseline,
 * with a message that says what to do, and passes every shipped stack (dev, platform-prod, acme,
 * globex) as the stack programs declare them under mocks. The policies are run as the policy
 * server runs them: `validateResource` / `validateStack` with the engine's argument shapes and
 * the policy's config defaults from its schema.
 */
import * as pulumi from "@pulumi/pulumi";
import type { PolicyResource as EnginePolicyResource, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import { describe, expect, it, vi } from "vitest";
import { policies } from "../../policy/policies";
import { imagePinned, plaintextListenerLines, type PolicyResource } from "../../policy/rules";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { loadStackConfig } from "../support/apply-stack";
import { RecordingMocks, drain, settle, type Recorded } from "../support/recording-mocks";
import { testPki } from "../support/test-pki";

const PROJECT = "rabbitmq-mqtt";
/** The pack's config for the shipped stacks (policy/config.json), as `--policy-pack-config` gives it. */
const SHIPPED_CONFIG = JSON.parse(readFileSync(path.join(__dirname, "../../policy/config.json"), "utf8")) as Record<string, Record<string, unknown>>;

function defaults(policy: ResourceValidationPolicy | StackValidationPolicy): Record<string, unknown> {
  const props = (policy.configSchema?.properties ?? {}) as Record<string, { default?: unknown }>;
  return Object.fromEntries(Object.entries(props).filter(([, v]) => v.default !== undefined).map(([k, v]) => [k, v.default]));
}

function engineArgs(r: PolicyResource, config: Record<string, unknown>, stack: string): ResourceValidationArgs & EnginePolicyResource {
  return {
    type: r.type,
    name: r.name,
    urn: `urn:pulumi:${stack}::${PROJECT}::${r.type}::${r.name}`,
    props: r.props,
    opts: { protect: r.opts.protect ?? false, ignoreChanges: [], aliases: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [...(r.opts.additionalSecretOutputs ?? [])] },
    stackTags: new Map(),
    dependencies: [],
    propertyDependencies: {},
    isType: () => false,
    asType: () => undefined,
    getConfig: <T extends object>() => config as T,
    notApplicable: () => {
      throw new Error("not applicable");
    },
  };
}

/** Violations by policy name, for these resources. */
async function evaluate(resources: readonly PolicyResource[], config: Record<string, Record<string, unknown>> = {}, stack = "test"): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const policy of policies) {
    const cfg = { ...defaults(policy), ...(config[policy.name] ?? {}) };
    const found: string[] = [];
    const report = (message: string) => found.push(message);
    if ("validateResource" in policy && policy.validateResource !== undefined) {
      const validate = Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource];
      for (const r of resources) for (const v of validate) await v(engineArgs(r, cfg, stack), report);
    }
    if ("validateStack" in policy) {
      const args = { resources: resources.map((r) => engineArgs(r, cfg, stack)), getConfig: <T extends object>() => cfg as T } as unknown as StackValidationArgs;
      await policy.validateStack(args, report);
    }
    if (found.length > 0) out[policy.name] = found;
  }
  return out;
}

const asPolicyResources = (records: readonly Recorded[]): PolicyResource[] =>
  records.map((r) => ({ type: r.type, name: r.name, props: r.inputs, opts: { protect: r.protect, additionalSecretOutputs: r.additionalSecretOutputs } }));

async function runShipped(stack: string, stackOutputs: Record<string, Record<string, unknown>> = {}): Promise<PolicyResource[]> {
  vi.resetModules();
  const mocks = new RecordingMocks(stackOutputs);
  await pulumi.runtime.setMocks(mocks, PROJECT, stack, false);
  const config = loadStackConfig(stack);
  pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [`${PROJECT}:${k}`, typeof v === "string" ? v : JSON.stringify(v)])));
  const mod = (await import("../../stacks/index")) as unknown as { default: Record<string, pulumi.Output<unknown>> };
  for (const o of Object.values(mod.default)) await settle(o);
  await drain();
  return asPolicyResources(mocks.records);
}

const user = (name: string, tags: string[] = []): PolicyResource => ({ type: "rabbitmq:index/user:User", name: `${name}-user`, props: { name, tags }, opts: {} });
const topicPermissions = (u: string, read = "^client\\.x\\.", exchange = "amq.topic"): PolicyResource => ({
  type: "rabbitmq:index/topicPermissions:TopicPermissions",
  name: `${u}-topic-permissions`,
  props: { user: u, vhost: "acme", permissions: [{ exchange, read, write: "^$" }] },
  opts: {},
});

describe("each policy's own config", () => {
  const clean = [user("a@acme"), topicPermissions("a@acme")];

  it("is checked by the policy: a value of the wrong kind is a violation naming the key, not a silent pass", async () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["mqtt-users-have-topic-permissions", { mqttExchange: 7 }, /^policy config mqtt-users-have-topic-permissions\.mqttExchange: must be an exchange name/],
      ["mqtt-users-have-no-tags", { allowTagsFor: "ops" }, /^policy config mqtt-users-have-no-tags\.allowTagsFor: must be a list of user names/],
      ["tenant-vhosts-protected", { unprotectedStacks: [""] }, /^policy config tenant-vhosts-protected\.unprotectedStacks\.0: must be a stack name/],
      ["no-unescaped-topic-variables", { brokerVersion: "latest" }, /^policy config no-unescaped-topic-variables\.brokerVersion: must be the broker's RabbitMQ version/],
      // A misspelt key would otherwise leave the policy at its default.
      ["tenant-vhosts-protected", { unprotectedStack: ["acme"] }, /^policy config tenant-vhosts-protected\.: Unrecognized key: "unprotectedStack"/],
    ];
    for (const [policy, config, message] of cases) {
      const v = await evaluate(clean, { [policy]: config });
      expect(v[policy]?.[0], policy).toMatch(message);
    }
  });

  it("is what the engine validates against: the JSON Schema is derived from the same schema", () => {
    const byName = Object.fromEntries(policies.map((p) => [p.name, p.configSchema]));
    expect(byName["mqtt-users-have-topic-permissions"]?.properties).toEqual({ mqttExchange: { type: "string", minLength: 1, default: "amq.topic" } });
    expect(byName["mqtt-users-have-no-tags"]?.properties?.["allowTagsFor"]).toMatchObject({ type: "array", default: [] });
    expect(byName["images-pinned"]).toBeUndefined();
  });

  it("policy/config.json passes every policy's own check", async () => {
    expect(Object.keys(SHIPPED_CONFIG).every((name) => policies.some((p) => p.name === name))).toBe(true);
    expect(await evaluate(clean, SHIPPED_CONFIG)).toEqual({});
  });
});

describe("each policy rejects a resource that breaks the baseline", () => {
  it("mqtt-users-have-topic-permissions: a user without topic permissions on the MQTT exchange", async () => {
    const v = await evaluate([user("a@acme"), topicPermissions("a@acme"), user("b@acme"), topicPermissions("c@acme", "^x$", "other")]);
    expect(v["mqtt-users-have-topic-permissions"]).toEqual([expect.stringContaining('user "b@acme" (b@acme-user) has no topic permissions on exchange "amq.topic"')]);
    const certificateUser = { type: "pulumi-nodejs:dynamic/rabbitmq-mqtt:CertificateUser", name: "cam-user", props: { name: "CN=cam,O=acme", connection: {} }, opts: { additionalSecretOutputs: ["connection"] } };
    expect((await evaluate([certificateUser]))["mqtt-users-have-topic-permissions"]).toHaveLength(1);
    // The exchange is the policy's config.
    expect((await evaluate([user("c@acme"), topicPermissions("c@acme", "^x$", "other")], { "mqtt-users-have-topic-permissions": { mqttExchange: "other" } }))).toEqual({});
  });

  it("mqtt-users-have-no-tags: an MQTT user with a management tag, unless listed as an operator", async () => {
    const v = await evaluate([user("a@acme", ["management"]), topicPermissions("a@acme")]);
    expect(v["mqtt-users-have-no-tags"]).toEqual([expect.stringContaining('user "a@acme" has tags ["management"]')]);
    expect(await evaluate([user("ops", ["administrator"]), topicPermissions("ops")], { "mqtt-users-have-no-tags": { allowTagsFor: ["ops"] } })).toEqual({});
  });

  it("tenant-vhosts-protected: a vhost without protect", async () => {
    const vhost = { type: "rabbitmq:index/vHost:VHost", name: "acme-vhost", props: { name: "acme" }, opts: { protect: false } };
    expect((await evaluate([vhost]))["tenant-vhosts-protected"]).toEqual([expect.stringContaining('vhost "acme" is not protected')]);
    expect(await evaluate([{ ...vhost, opts: { protect: true } }])).toEqual({});
    // A development stack the config lists may keep an unprotected vhost; no other stack may.
    const dev = { "tenant-vhosts-protected": { unprotectedStacks: ["acme-dev"] } };
    expect(await evaluate([vhost], dev, "acme-dev")).toEqual({});
    expect((await evaluate([vhost], dev, "acme-prod"))["tenant-vhosts-protected"]).toHaveLength(1);
  });

  it("no-unescaped-topic-variables: {client_id} or {username} in a pattern, unless the broker is 4.2.4 or later", async () => {
    const r = topicPermissions("a@acme", "^client\\.{client_id}\\.");
    for (const brokerVersion of [undefined, "3.10.8", "4.0.5", "4.2.3"]) {
      const v = await evaluate([user("a@acme"), r], brokerVersion === undefined ? {} : { "no-unescaped-topic-variables": { brokerVersion } });
      expect(v["no-unescaped-topic-variables"], brokerVersion).toEqual([expect.stringContaining("uses {client_id}")]);
    }
    for (const brokerVersion of ["4.2.4", "4.3.0", "rabbitmq:4.3.6-management"]) {
      expect(await evaluate([user("a@acme"), r], { "no-unescaped-topic-variables": { brokerVersion } }), brokerVersion).toEqual({});
    }
    const w = topicPermissions("b@acme");
    (w.props["permissions"] as Record<string, string>[])[0]!["write"] = "^activity\\.{username}\\.";
    expect((await evaluate([user("b@acme"), w]))["no-unescaped-topic-variables"]).toEqual([expect.stringContaining("write pattern")]);
  });

  it("images-pinned: an image with no tag, `latest` or a word tag, on Docker and in a Kubernetes workload", async () => {
    expect(["rabbitmq", "rabbitmq:latest", "rabbitmq:management", "registry.example.com:5000/rabbitmq"].map(imagePinned)).toEqual([false, false, false, false]);
    expect(["rabbitmq:4.3.6-management", "registry.example.com:5000/x/issuer:0.1.0", `rabbitmq@sha256:${"a".repeat(64)}`].map(imagePinned)).toEqual([true, true, true]);
    const remote = { type: "docker:index/remoteImage:RemoteImage", name: "img", props: { name: "rabbitmq:latest" }, opts: {} };
    const sts = {
      type: "kubernetes:apps/v1:StatefulSet",
      name: "rabbitmq",
      props: { spec: { template: { spec: { initContainers: [{ image: "busybox" }], containers: [{ image: "rabbitmq:4.3.6-management" }] } } } },
      opts: {},
    };
    const v = await evaluate([remote, sts]);
    expect(v["images-pinned"]).toEqual([expect.stringContaining('image "rabbitmq:latest" of img'), expect.stringContaining('image "busybox" of rabbitmq')]);
  });

  it("kubernetes-no-plaintext-listeners: a plaintext listener in the broker's rabbitmq.conf, in stringData or base64 data", async () => {
    expect(plaintextListenerLines("listeners.tcp = none\nmqtt.listeners.tcp = none\nweb_mqtt.tcp.ip = 127.0.0.1\nweb_mqtt.tcp.port = 15675\nmqtt.listeners.ssl.default = 8883")).toEqual([]);
    expect(plaintextListenerLines("mqtt.listeners.tcp.default = 1883\nmanagement.tcp.port = 15672\nweb_mqtt.tcp.port = 15675\nlisteners.tcp.default = 5672")).toHaveLength(4);
    const conf = "listeners.tcp = none\nmqtt.listeners.tcp.default = 1883\n";
    const inSecret = { type: "kubernetes:core/v1:Secret", name: "cfg", props: { stringData: { "rabbitmq.conf": conf } }, opts: {} };
    const encoded = { type: "kubernetes:core/v1:Secret", name: "cfg2", props: { data: { "rabbitmq.conf": Buffer.from(conf).toString("base64") } }, opts: {} };
    const v = await evaluate([inSecret, encoded]);
    expect(v["kubernetes-no-plaintext-listeners"]).toEqual([
      expect.stringContaining('cfg: rabbitmq.conf opens a plaintext listener ("mqtt.listeners.tcp.default = 1883")'),
      expect.stringContaining("cfg2: rabbitmq.conf opens a plaintext listener"),
    ]);
  });

  it("credentials-are-secret-outputs: a dynamic resource whose connection or credentials are not secret outputs", async () => {
    const fleet = { type: "pulumi-nodejs:dynamic/rabbitmq-mqtt:DeviceFleet", name: "acme-cams", props: { connection: {}, credentials: {}, issuer: {} }, opts: { additionalSecretOutputs: ["connection"] } };
    const v = await evaluate([fleet]);
    expect(v["credentials-are-secret-outputs"]).toEqual([expect.stringContaining('output "credentials"'), expect.stringContaining('output "issuer"')]);
  });
});

describe("every shipped stack passes the policy pack", () => {
  it("the dev and platform-prod platform stacks", async () => {
    for (const stack of ["dev", "platform-prod"]) {
      const resources = await runShipped(stack);
      expect(resources.length, stack).toBeGreaterThan(5);
      // The broker's version as its image names it (checking the policy's config found that this
      // once read a key that does not exist, and passed "undefined").
      const image = (loadStackConfig(stack)["platform"] as { image: string }).image;
      expect(image, stack).toMatch(/^rabbitmq:\d+\.\d+\.\d+/);
      expect(await evaluate(resources, { ...SHIPPED_CONFIG, "no-unescaped-topic-variables": { brokerVersion: image } }, stack), stack).toEqual({});
      // What the policies judged is there: the broker's image, and on Kubernetes its rabbitmq.conf and workload.
      if (stack === "dev") expect(resources.some((r) => r.type === "docker:index/remoteImage:RemoteImage")).toBe(true);
      if (stack === "platform-prod") {
        const conf = resources.find((r) => r.type === "kubernetes:core/v1:Secret" && typeof (r.props["stringData"] as Record<string, unknown> | undefined)?.["rabbitmq.conf"] === "string");
        expect(String((conf?.props["stringData"] as Record<string, string>)["rabbitmq.conf"])).toContain("listeners.tcp = none");
        expect(resources.some((r) => r.type === "kubernetes:apps/v1:StatefulSet")).toBe(true);
      }
    }
  }, 60_000);

  it("the acme and globex tenant stacks", async () => {
    const pki = await testPki();
    const issuer = { certPem: pki.caCertPem, privateKeyPem: pki.caKeyPem, chainPem: "" };
    const platform = {
      managementUrl: "https://rabbit.example.com:15671",
      adminUsername: "admin",
      adminPassword: "admin-password-0123",
      caCertificatePem: pki.caCertPem,
      certificateLoginFrom: "distinguished_name",
      certificateIssuers: { root: issuer, tenants: { acme: issuer, globex: issuer } },
    };
    for (const stack of ["acme", "globex"]) {
      const ref = (loadStackConfig(stack)["broker"] as { stackReference: string }).stackReference;
      const resources = await runShipped(stack, { [ref]: platform });
      const users = resources.filter((r) => r.type === "rabbitmq:index/user:User");
      expect(users.length, stack).toBeGreaterThan(0);
      expect(resources.filter((r) => r.type === "rabbitmq:index/topicPermissions:TopicPermissions").length, stack).toBeGreaterThanOrEqual(users.length);
      expect(resources.some((r) => r.type === "rabbitmq:index/vHost:VHost"), stack).toBe(true);
      // Tenant stacks do not know the broker's version: the strict reading (no variables at all) applies.
      expect(await evaluate(resources, SHIPPED_CONFIG, stack), stack).toEqual({});
    }
  }, 60_000);
});
