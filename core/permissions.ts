/**
 * From an identity's MQTT grants to the RabbitMQ permissions that enforce them.
 *
 * How a client id is tied to an identity: an identity's MQTT client ids are `<identity>` or
 * `<identity>_<instance>` (instance: letters, digits, `_`, `-`, at most 64). The MQTT plugin names a
 * client's subscription queues `mqtt-subscription-<client id>qos0|qos1` (4.x also
 * `mqtt-will-<client id>`), and the identity's vhost permissions allow configure/write/read on those
 * queues only. A client that presents any other client id can still connect and publish within its
 * own topic grants (topic permissions are per user, with its names written in, never
 * `{client_id}`), but cannot create, consume, bind or delete any queue, so it can subscribe to
 * nothing and reach no other identity's session. Identity names cannot contain `_`, so no
 * identity's queue names are a prefix-extension of another's, and every pattern is anchored.
 */
import { CLIENT_ID_INSTANCE_PATTERN, CLIENT_ID_INSTANCE_SEPARATOR, escapeRegex } from "./names";
import { compileTopicPattern, type TopicFilter } from "./topics";

/** The exchange the MQTT plugin publishes to and binds on (`mqtt.exchange`, default). */
export const MQTT_EXCHANGE = "amq.topic";

/** Queue name prefixes the MQTT plugin uses (3.10: subscription; 3.13+/4.x also will). */
export const MQTT_SUBSCRIPTION_QUEUE_PREFIX = "mqtt-subscription-";
export const MQTT_WILL_QUEUE_PREFIX = "mqtt-will-";

/** Regex (unanchored body) of the client ids an identity may use. */
export function clientIdRegexBody(identity: string): string {
  return `${escapeRegex(identity)}(?:${CLIENT_ID_INSTANCE_SEPARATOR}${CLIENT_ID_INSTANCE_PATTERN})?`;
}

/** Anchored regex a client id must match to belong to `identity`. */
export function clientIdPattern(identity: string): string {
  return `^${clientIdRegexBody(identity)}$`;
}

/** Anchored regex of exactly the queues the MQTT plugin creates for this identity's client ids. */
export function ownMqttQueuesPattern(identity: string): string {
  const cid = clientIdRegexBody(identity);
  return (
    `^(?:${escapeRegex(MQTT_SUBSCRIPTION_QUEUE_PREFIX)}${cid}qos[01]` +
    `|${escapeRegex(MQTT_WILL_QUEUE_PREFIX)}${cid})$`
  );
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
}

/**
 * `publish` and `subscribe` are bound filters (placeholders replaced by the identity's own names).
 */
export function compilePermissions(
  identity: string,
  grants: { readonly publish: readonly TopicFilter[]; readonly subscribe: readonly TopicFilter[] },
): CompiledPermissions {
  const queues = ownMqttQueuesPattern(identity);
  const queueBody = queues.slice(1, -1); // without ^ and $, to join with the exchange
  const exchange = escapeRegex(MQTT_EXCHANGE);
  return {
    vhost: {
      // Declare and delete only its own MQTT queues; never exchanges.
      configure: queues,
      // Publish to the MQTT exchange (topic permissions then decide the routing key), and bind
      // its own queues. Not the default exchange: that would route to any queue by name.
      write: `^(?:${exchange}|${queueBody})$`,
      // Bind from the MQTT exchange (topic permissions check the binding key) and consume its own queues.
      read: `^(?:${exchange}|${queueBody})$`,
    },
    topic: {
      exchange: MQTT_EXCHANGE,
      write: compileTopicPattern(grants.publish),
      read: compileTopicPattern(grants.subscribe),
    },
    clientIdPattern: clientIdPattern(identity),
  };
}
