/**
 * From an identity's MQTT grants to the RabbitMQ permissions that enforce them.
 *
 * How a client id is tied to an identity: a password identity's MQTT client ids are `<identity>`
 * and `<identity>_1` ... `<identity>_<maxClientIds - 1>`; a certificate identity's only client id
 * is its certificate's subject DN, which RabbitMQ 4.x enforces at CONNECT
 * (`mqtt.ssl_cert_client_id_from`, core/broker-config.ts). The MQTT plugin names a client's
 * subscription queues `mqtt-subscription-<client id>qos0|qos1` (4.x also `mqtt-will-<client id>`),
 * and the identity's vhost permissions allow configure/write/read on exactly those queues. A client
 * that presents any other client id can still connect and publish within its own topic grants
 * (topic permissions are per user, with its names written in, never `{client_id}`), but cannot
 * create, consume, bind or delete any queue, so it can subscribe to nothing and reach no other
 * identity's session. Every pattern is anchored at both ends and lists whole client ids (escaped,
 * so a DN's `+`, `\` or `=` are literal); password client ids never contain `=` and DNs always do,
 * so the two kinds never meet. The client ids are a
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

/** Bytes RabbitMQ allows in a queue name (AMQP 0-9-1 shortstr). */
export const MAX_QUEUE_NAME_BYTES = 255;

/** The MQTT plugin's queues for one client id: subscriptions (QoS 0 and 1) and the will (3.13+). */
export function mqttQueueNames(clientId: string): string[] {
  return [`${MQTT_SUBSCRIPTION_QUEUE_PREFIX}${clientId}qos0`, `${MQTT_SUBSCRIPTION_QUEUE_PREFIX}${clientId}qos1`, `${MQTT_WILL_QUEUE_PREFIX}${clientId}`];
}

/** Whether every queue of the client id fits RabbitMQ's queue-name limit. */
export function clientIdFitsQueueNames(clientId: string): boolean {
  return mqttQueueNames(clientId).every((q) => Buffer.byteLength(q, "utf8") <= MAX_QUEUE_NAME_BYTES);
}

/** Every queue name the MQTT plugin can create for these client ids. */
export function ownMqttQueueNames(ids: readonly string[]): string[] {
  return ids.flatMap(mqttQueueNames);
}

function nonEmpty(ids: readonly string[]): readonly string[] {
  if (ids.length === 0) throw new Error("an identity needs at least one client id");
  return ids;
}

/** Regex alternation (no anchors) of the client ids. */
function clientIdAlternation(ids: readonly string[]): string {
  return `(?:${nonEmpty(ids).map(escapeRegex).join("|")})`;
}

/** Anchored regex a client id must match to be one of `ids`. */
export function clientIdPattern(ids: readonly string[]): string {
  return `^${clientIdAlternation(ids)}${REGEX_END}`;
}

/** Unanchored alternation of exactly the queues the MQTT plugin creates for the client ids. */
function ownMqttQueuesBody(ids: readonly string[]): string {
  const cid = clientIdAlternation(ids);
  return (
    `(?:${escapeRegex(MQTT_SUBSCRIPTION_QUEUE_PREFIX)}${cid}qos[01]` +
    `|${escapeRegex(MQTT_WILL_QUEUE_PREFIX)}${cid})`
  );
}

/** Anchored regex of exactly the queues the MQTT plugin creates for the client ids. */
export function ownMqttQueuesPattern(ids: readonly string[]): string {
  return `^${ownMqttQueuesBody(ids)}${REGEX_END}`;
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
 * `publish` and `subscribe` are bound filters (placeholders replaced by the identity's own names);
 * `ids` are the identity's client ids (`clientIds` for a password identity, the certificate's DN
 * for a certificate identity).
 */
export function compilePermissions(
  grants: { readonly publish: readonly TopicFilter[]; readonly subscribe: readonly TopicFilter[] },
  ids: readonly string[],
): CompiledPermissions {
  const queues = ownMqttQueuesBody(ids);
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
    clientIdPattern: clientIdPattern(ids),
    clientIds: [...ids],
    queues: ownMqttQueueNames(ids),
  };
}
