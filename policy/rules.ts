/**
 * The security baseline as rules over declared resources, for the CrossGuard policy pack
 * (policy/index.ts) and for tests: pure functions of a resource's type, name, properties and
 * options, no Pulumi import. A rule returns what is wrong (empty: nothing). A property the engine
 * does not know yet (a preview of a resource that depends on one not created) is `undefined` here
 * and is not judged.
 */

import { SECRET_OUTPUTS, type DynamicResourceType } from "../core/secret-outputs";
import { isPinnedImage, parseBrokerVersion, type BrokerVersionFull } from "../core/platform-config";

export interface PolicyResource {
  readonly type: string;
  readonly name: string;
  readonly props: Record<string, unknown>;
  readonly opts: { readonly protect?: boolean; readonly additionalSecretOutputs?: readonly string[] };
}

export const T = {
  user: "rabbitmq:index/user:User",
  vhost: "rabbitmq:index/vHost:VHost",
  topicPermissions: "rabbitmq:index/topicPermissions:TopicPermissions",
  certificateUser: "pulumi-nodejs:dynamic/rabbitmq-mqtt:CertificateUser",
  remoteImage: "docker:index/remoteImage:RemoteImage",
  k8sSecret: "kubernetes:core/v1:Secret",
  k8sConfigMap: "kubernetes:core/v1:ConfigMap",
} as const;

const WORKLOADS = ["kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:DaemonSet", "kubernetes:batch/v1:Job"];
export const DYNAMIC_PREFIX = "pulumi-nodejs:dynamic/rabbitmq-mqtt:";

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const obj = (v: unknown): Record<string, unknown> => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** Every broker user (this project's users and certificate users) has topic permissions on the MQTT exchange: without any, RabbitMQ allows every topic. */
export function usersWithoutTopicPermissions(resources: readonly PolicyResource[], mqttExchange: string): string[] {
  const covered = new Set<string>();
  for (const r of resources.filter((x) => x.type === T.topicPermissions)) {
    const user = str(r.props["user"]);
    if (user !== undefined && arr(r.props["permissions"]).some((p) => obj(p)["exchange"] === mqttExchange)) covered.add(user);
  }
  const problems: string[] = [];
  for (const r of resources.filter((x) => x.type === T.user || x.type === T.certificateUser)) {
    const name = str(r.props["name"]);
    if (name !== undefined && !covered.has(name)) {
      problems.push(`user "${name}" (${r.name}) has no topic permissions on exchange "${mqttExchange}": RabbitMQ then allows it every topic; declare rabbitmq.TopicPermissions for it (deny-all patterns "^$" when it has no grant)`);
    }
  }
  return problems;
}

/** No tags on MQTT users: a tag gives management UI and HTTP API access (administrator, monitoring, ...). */
export function userTagProblems(r: PolicyResource, allowed: readonly string[]): string[] {
  if (r.type !== T.user) return [];
  const tags = arr(r.props["tags"]).filter((t) => typeof t === "string" && t.length > 0);
  const name = str(r.props["name"]);
  if (tags.length === 0 || (name !== undefined && allowed.includes(name))) return [];
  return [`user "${name ?? r.name}" has tags ${JSON.stringify(tags)}: an MQTT user needs none, and a tag opens the management UI and API to it; remove the tags (or list the user in this policy's allowTagsFor if it is an operator)`];
}

/** A tenant's vhost holds its queues and sessions: deleting it (a rename, a removed stack) loses them. */
export function vhostProtectionProblems(r: PolicyResource, stack: string, unprotectedStacks: readonly string[]): string[] {
  if (r.type !== T.vhost || r.opts.protect === true || unprotectedStacks.includes(stack)) return [];
  return [
    `vhost "${str(r.props["name"]) ?? r.name}" is not protected: a replacement or a destroy would delete its queues and saved sessions; declare it with { protect: true } (tenant.protect), or list the stack "${stack}" in this policy's unprotectedStacks if it is a development stack`,
  ];
}

/** The stack a resource URN names (`urn:pulumi:<stack>::<project>::<type>::<name>`). */
export function stackOfUrn(urn: string): string {
  return /^urn:pulumi:([^:]+)::/.exec(urn)?.[1] ?? "";
}

/** The x.y.z in e.g. "4.3.6" or "rabbitmq:4.3.6-management", read by the config's own parser. */
export function parseVersion(text: string): BrokerVersionFull | undefined {
  const m = /\d+\.\d+\.\d+/.exec(text);
  return m ? parseBrokerVersion(m[0]) : undefined;
}

function escapesTopicVariables(v: BrokerVersionFull | undefined): boolean {
  if (v === undefined) return false;
  return v.major > 4 || (v.major === 4 && (v.minor > 2 || (v.minor === 2 && v.patch >= 4)));
}

/**
 * `{client_id}` / `{username}` in a topic permission pattern: before 4.2.4 the broker writes the
 * value into the regex unescaped, so a client id such as `.*` or `x|alice` matches other
 * clients' topics. Unknown broker version: refused, as for an old one.
 */
export function topicVariableProblems(r: PolicyResource, brokerVersion: string | undefined): string[] {
  if (r.type !== T.topicPermissions) return [];
  const version = brokerVersion === undefined ? undefined : parseVersion(brokerVersion);
  if (escapesTopicVariables(version)) return [];
  const problems: string[] = [];
  for (const p of arr(r.props["permissions"])) {
    for (const key of ["read", "write"]) {
      const pattern = str(obj(p)[key]);
      const variable = pattern !== undefined ? /\{(client_id|username)\}/.exec(pattern)?.[0] : undefined;
      if (variable !== undefined) {
        problems.push(
          `topic permissions of "${str(r.props["user"]) ?? r.name}": the ${key} pattern ${JSON.stringify(pattern)} uses ${variable}, which RabbitMQ ${brokerVersion ?? "(version not given)"} writes into the regex unescaped (fixed in 4.2.4), so a client id such as ".*" reaches other clients' topics; write the name into the pattern, escaped (set this policy's brokerVersion if the broker is 4.2.4 or later)`,
        );
      }
    }
  }
  return problems;
}

/** The config's own rule (core/platform-config.ts): a version tag other than `latest`, or a digest. */
export const imagePinned = isPinnedImage;

export function imagePinProblems(r: PolicyResource): string[] {
  const images: string[] = [];
  if (r.type === T.remoteImage) {
    const name = str(r.props["name"]);
    if (name !== undefined) images.push(name);
  }
  if (WORKLOADS.includes(r.type)) {
    const pod = obj(obj(obj(r.props["spec"])["template"])["spec"]);
    for (const c of [...arr(pod["containers"]), ...arr(pod["initContainers"])]) {
      const image = str(obj(c)["image"]);
      if (image !== undefined) images.push(image);
    }
  }
  return images
    .filter((i) => !imagePinned(i))
    .map((i) => `image "${i}" of ${r.name} is not pinned: name a version tag (not "latest") or a digest, so that every node and every re-apply runs the same broker`);
}

/** rabbitmq.conf lines that open a plaintext listener reachable off the node. */
export function plaintextListenerLines(conf: string): string[] {
  const lines = conf.split("\n").map((l) => l.trim());
  // The Web MQTT plugin always has a plaintext listener from 3.11 on; confined to loopback it is not reachable.
  const webMqttLoopbackOnly = lines.includes("web_mqtt.tcp.ip = 127.0.0.1") || lines.includes("web_mqtt.tcp.listener = none");
  return lines.filter(
    (l) =>
      /^(listeners|mqtt\.listeners|stomp\.listeners)\.tcp\.[A-Za-z0-9_]+\s*=/.test(l) ||
      /^management\.tcp\.port\s*=/.test(l) ||
      (/^web_mqtt\.tcp\.port\s*=/.test(l) && !webMqttLoopbackOnly),
  );
}

/** On Kubernetes the broker's rabbitmq.conf (in a Secret or ConfigMap) opens no plaintext listener. */
export function kubernetesPlaintextProblems(r: PolicyResource): string[] {
  if (r.type !== T.k8sSecret && r.type !== T.k8sConfigMap) return [];
  const texts: string[] = [];
  const plain = str(obj(r.props["stringData"])["rabbitmq.conf"]) ?? (r.type === T.k8sConfigMap ? str(obj(r.props["data"])["rabbitmq.conf"]) : undefined);
  if (plain !== undefined) texts.push(plain);
  const encoded = r.type === T.k8sSecret ? str(obj(r.props["data"])["rabbitmq.conf"]) : undefined;
  if (encoded !== undefined) texts.push(Buffer.from(encoded, "base64").toString("utf8"));
  return texts.flatMap(plaintextListenerLines).map((l) => `${r.name}: rabbitmq.conf opens a plaintext listener ("${l}"): on Kubernetes every listener must be TLS (platform.broker.plaintextListeners: false)`);
}

/** A dynamic resource's state is stored as its outputs: a credential there must be marked secret, or the state file holds it in plain text. */
export function secretOutputProblems(r: PolicyResource): string[] {
  if (!r.type.startsWith(DYNAMIC_PREFIX)) return [];
  const kind = r.type.slice(DYNAMIC_PREFIX.length);
  const marked = new Set(r.opts.additionalSecretOutputs ?? []);
  const expected: readonly string[] = kind in SECRET_OUTPUTS ? SECRET_OUTPUTS[kind as DynamicResourceType] : ["connection"];
  return expected
    .filter((k) => k in r.props && !marked.has(k))
    .map((k) => `${r.name} (${kind}): output "${k}" holds credentials or keys and is not a secret output; add it to additionalSecretOutputs`);
}
