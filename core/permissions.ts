/**
 * From an identity's MQTT grants to the RabbitMQ permissions that enforce them.
 *
 * How a client id is tied to an identity: an identity's MQTT client ids are `<identity>` and
 * `<identity>_1` ... `<identity>_<maxClientIds - 1>`. The MQTT plugin names a client's
 * subscription queues `mqtt-subscription-<client id>qos0|qos1` (4.x also `mqtt-will-<client id>`),
 * and the identity's vhost permissions allow configure/write/read on exactly those queues. A client
 * that presents any other client id can still connect and publish within its own topic grants
 * (topic permissions are per user, with its names written in, never `{client_id}`), but cannot
 * create, consume, bind or delete any queue, so it can subscribe to nothing and reach no other
 * identity's session. Identity names cannot contain `_`, so no identity's queue names are a
 * prefix-extension of another's; every pattern is anchored at both ends. The client ids are a
 * finite list, so the queues one identity can create are bounded (3 x maxClientIds) and one
 * identity cannot use up its tenant's queue limit.
 */
import { CLIENT_ID_INSTANCE_SEPARATOR, REGEX_END, escapeRegex } from "./names";
import { compileTopicPattern, type TopicFilter } from "./topics";

/** The exchange the MQTT plugin publishes to and binds on (`mqtt.exchange`, default). */
export const MQTT_EXCHANGE = "amq.topic";

/** Queue name prefixes the MQTT plugin uses (3.10: subscription; 3.13+/4.x also will). */
export const MQTT_SUBSCRIPTION_QUEUE_PREFIX = "mqtt-subscription-";
export const MQTT_WILL_QUEUE_PREFIX = "mqtt-will-";

export const MAX_CLIENT_IDS_RANGE = [1, 64] as const;

/** The client ids an identity may use: `<identity>`, then `<identity>_1` ... */
export function clientIds(identity: string, maxClientIds: number): string[] {
  const [min, max] = MAX_CLIENT_IDS_RANGE;
  if (!Number.isInteger(maxClientIds) || maxClientIds < min || maxClientIds > max) {
    throw new Error(`maxClientIds must be a whole number from ${min} to ${max}`);
  }
  return Array.from({ length: maxClientIds }, (_, i) => (i === 0 ? identity : `${identity}${CLIENT_ID_INSTANCE_SEPARATOR}${i}`));
}

/** Every queue name the MQTT plugin can create for the identity's client ids. */
export function ownMqttQueueNames(identity: string, maxClientIds: number): string[] {
  return clientIds(identity, maxClientIds).flatMap((cid) => [
    `${MQTT_SUBSCRIPTION_QUEUE_PREFIX}${cid}qos0`,
    `${MQTT_SUBSCRIPTION_QUEUE_PREFIX}${cid}qos1`,
    `${MQTT_WILL_QUEUE_PREFIX}${cid}`,
  ]);
}

/** Regex alternation (no anchors) of the identity's client ids. */
function clientIdAlternation(identity: string, maxClientIds: number): string {
  return `(?:${clientIds(identity, maxClientIds).map(escapeRegex).join("|")})`;
}

/** Anchored regex a client id must match to belong to `identity`. */
export function clientIdPattern(identity: string, maxClientIds: number): string {
  return `^${clientIdAlternation(identity, maxClientIds)}${REGEX_END}`;
}

/** Unanchored alternation of exactly the queues the MQTT plugin creates for the identity's client ids. */
function ownMqttQueuesBody(identity: string, maxClientIds: number): string {
  const cid = clientIdAlternation(identity, maxClientIds);
  return (
    `(?:${escapeRegex(MQTT_SUBSCRIPTION_QUEUE_PREFIX)}${cid}qos[01]` +
    `|${escapeRegex(MQTT_WILL_QUEUE_PREFIX)}${cid})`
  );
}

/** Anchored regex of exactly the queues the MQTT plugin creates for the identity's client ids. */
export function ownMqttQueuesPattern(identity: string, maxClientIds: number): string {
  return `^${ownMqttQueuesBody(identity, maxClientIds)}${REGEX_END}`;
}

export interface VhostPermissions {
  readonly configure: string;
  readonly write: string;
  readonly read: string;
}

export interface TopicPermission {
  readonly exchange: string;
  readonly write: string;
  readonly read: string;
}

export interface CompiledPermissions {
  readonly vhost: VhostPermissions;
  /** Always present, even with no grants: a user without topic permissions may use every topic. */
  readonly topic: TopicPermission;
  readonly clientIdPattern: string;
  readonly clientIds: readonly string[];
  /** Exactly the queues `vhost.configure` allows, by name. */
  readonly queues: readonly string[];
}

/**
 * `publish` and `subscribe` are bound filters (placeholders replaced by the identity's own names).
 */
export function compilePermissions(
  identity: string,
  grants: { readonly publish: readonly TopicFilter[]; readonly subscribe: readonly TopicFilter[] },
  maxClientIds: number,
): CompiledPermissions {
  const queues = ownMqttQueuesBody(identity, maxClientIds);
  const exchange = escapeRegex(MQTT_EXCHANGE);
  const anchored = (body: string) => `^${body}${REGEX_END}`;
  return {
    vhost: {
      // Declare and delete only its own MQTT queues; never exchanges.
      configure: anchored(queues),
      // Bind its own queues, and publish to the MQTT exchange only if it has publish grants (topic
      // permissions then decide the routing key). Never the default exchange: it routes by queue name.
      write: anchored(grants.publish.length > 0 ? `(?:${exchange}|${queues})` : queues),
      // Bind from the MQTT exchange (topic permissions check the binding key) and consume its own queues.
      read: anchored(`(?:${exchange}|${queues})`),
    },
    topic: {
      exchange: MQTT_EXCHANGE,
      write: compileTopicPattern(grants.publish),
      read: compileTopicPattern(grants.subscribe),
    },
    clientIdPattern: clientIdPattern(identity, maxClientIds),
    clientIds: clientIds(identity, maxClientIds),
    queues: ownMqttQueueNames(identity, maxClientIds),
  };
}
