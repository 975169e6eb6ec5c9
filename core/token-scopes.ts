/**
 * Token apps: grant templates for the end users of a tenant's apps, compiled to RabbitMQ OAuth 2
 * scopes with one user's id written in literally. Pure: the token issuer and the tests call it.
 *
 * Broker facts this relies on (rabbitmq_auth_backend_oauth2, `rabbit_oauth2_scope`):
 * - a scope is `<resource server id>.<permission>:<vhost>/<name>[/<routing key>]`, each part a
 *   pattern in which only `*` is special, matching any run of characters (`.` and `/` included);
 * - queue and exchange access checks the vhost and name parts, topic access all three: so a topic
 *   scope on `amq.topic` also grants reading from (binding to) the exchange itself;
 * - MQTT topics reach the check as routing keys on `amq.topic`, with `/` turned into `.` and `+`
 *   into `*`; a subscription's filter is checked as written, `#` and `*` included.
 * The broker's own scope variables (`{sub}`, `{client_id}`, ...) are never used: no released
 * RabbitMQ escapes the value it writes in, so a user id `*` would match everyone.
 */
import { RESOURCE_SERVER_ID_PATTERN, USER_ID_PATTERN, USER_ID_RULE, isName } from "./names";
import { MQTT_SUBSCRIPTION_QUEUE_PREFIX, MQTT_WILL_QUEUE_PREFIX } from "./permissions";
import { TopicFilterError, parseTopicFilter, type TopicFilter } from "./topics";

/** Placeholders an app's grant templates may use: the signed-in user and the MQTT client id. */
export const APP_PLACEHOLDERS = ["user", "client"] as const;

/**
 * Between a user id and the instance number in the client ids a token allows (`<user>~1`, ...).
 * User ids cannot contain it, so no user's client ids are a prefix-extension of another's, and it
 * is a plain character in topics, routing keys, queue names and scope patterns.
 */
export const APP_CLIENT_ID_SEPARATOR = "~";

/** The exchange MQTT publishes to and subscribes from. */
export const MQTT_EXCHANGE = "amq.topic";

export const APP_MAX_CLIENT_IDS_RANGE = [1, 16] as const;

export interface AppGrants {
  readonly publish: readonly TopicFilter[];
  readonly subscribe: readonly TopicFilter[];
}

/**
 * Parses one grant template of a token app. Beyond MQTT syntax, a template must be per user: it
 * starts with literal levels, then `{user}` or `{client}`, and it uses no `+` (a scope's `*` spans
 * any number of levels, so one level cannot be expressed; `#` as the last level can).
 * Throws TopicFilterError with what would be right.
 */
export function parseAppGrant(text: string): TopicFilter {
  const filter = parseTopicFilter(text, APP_PLACEHOLDERS);
  if (filter.some((l) => l.kind === "single")) {
    throw new TopicFilterError(
      "'+' cannot be granted to token apps: the broker's token scopes have only a '*' that spans any number of levels; " +
        "name the levels, or end with '#'",
    );
  }
  const first = filter.findIndex((l) => l.kind === "placeholder");
  const multi = filter.findIndex((l) => l.kind === "multi");
  if (first === -1 || (multi !== -1 && multi < first)) {
    throw new TopicFilterError(
      "a token app's grant must be per user: put {user} or {client} in a level before any '#', e.g. 'client/{client}/#' or 'activity/{user}/#'",
    );
  }
  return filter;
}

/** Why `id` cannot be a user id in scopes, or undefined when it can. */
export function userIdProblem(id: string): string | undefined {
  return USER_ID_PATTERN.test(id) ? undefined : `${JSON.stringify(id).slice(0, 80)} is not a usable user id: ${USER_ID_RULE}`;
}

/** The MQTT client ids a user's token allows: `<user>~1` ... `<user>~<count>`. */
export function appClientIds(user: string, count: number): string[] {
  const problem = userIdProblem(user);
  if (problem !== undefined) throw new Error(problem);
  if (!Number.isInteger(count) || count < APP_MAX_CLIENT_IDS_RANGE[0] || count > APP_MAX_CLIENT_IDS_RANGE[1]) {
    throw new Error(`client id count ${count} is outside ${APP_MAX_CLIENT_IDS_RANGE.join("-")}`);
  }
  return Array.from({ length: count }, (_, i) => `${user}${APP_CLIENT_ID_SEPARATOR}${i + 1}`);
}

/** Routing-key patterns (scope syntax) for one template bound to a user and one client id. */
function routingKeyPatterns(filter: TopicFilter, values: { user: string; client: string }): string[] {
  const words: string[] = [];
  for (const level of filter) {
    switch (level.kind) {
      case "literal":
        words.push(level.value);
        break;
      case "placeholder":
        if (level.name !== "user" && level.name !== "client") throw new TopicFilterError(`placeholder {${level.name}} is not for token apps`);
        words.push(values[level.name]);
        break;
      case "multi": {
        // MQTT `a/#` matches `a` itself and everything below it.
        const parent = words.join(".");
        return words.length === 0 ? ["*"] : [parent, `${parent}.*`];
      }
      case "single":
        throw new TopicFilterError("'+' cannot be granted to token apps");
    }
  }
  return [words.join(".")];
}

export interface ScopeTarget {
  /** The tenant's vhost: the only vhost any scope names. */
  readonly vhost: string;
  /** The broker's `auth_oauth2.resource_server_id`, the prefix of every scope. */
  readonly resourceServerId: string;
  readonly user: string;
  readonly clientIds: number;
}

/**
 * The scopes of one user's token: topic access from the grant templates (for each of the user's
 * client ids when a template uses {client}), and the queues MQTT keeps for those client ids. Sorted
 * and without duplicates. Every value written in is validated first; no `*` comes from outside.
 */
export function appScopes(grants: AppGrants, target: ScopeTarget): string[] {
  const vhostProblem = isName(target.vhost) ? undefined : `vhost ${JSON.stringify(target.vhost)}`;
  const serverProblem = RESOURCE_SERVER_ID_PATTERN.test(target.resourceServerId) ? undefined : `resource server id ${JSON.stringify(target.resourceServerId)}`;
  if (vhostProblem ?? serverProblem) throw new Error(`not usable in a scope: ${vhostProblem ?? serverProblem}`);
  const clients = appClientIds(target.user, target.clientIds);
  const prefix = `${target.resourceServerId}.`;
  const scopes = new Set<string>();
  for (const [direction, permission] of [["publish", "write"], ["subscribe", "read"]] as const) {
    for (const filter of grants[direction]) {
      const perClient = filter.some((l) => l.kind === "placeholder" && l.name === "client");
      for (const client of perClient ? clients : [clients[0]!]) {
        for (const rk of routingKeyPatterns(filter, { user: target.user, client })) {
          scopes.add(`${prefix}${permission}:${target.vhost}/${MQTT_EXCHANGE}/${rk}`);
        }
      }
    }
  }
  // The queues MQTT declares, binds and consumes for a client id: the subscription queues
  // (`...qos0`, `...qos1`) and, on 4.x, the will queue.
  if (grants.subscribe.length > 0) {
    for (const client of clients) {
      for (const permission of ["configure", "write", "read"]) {
        scopes.add(`${prefix}${permission}:${target.vhost}/${MQTT_SUBSCRIPTION_QUEUE_PREFIX}${client}qos*`);
      }
    }
  }
  for (const client of clients) {
    for (const permission of ["configure", "write", "read"]) scopes.add(`${prefix}${permission}:${target.vhost}/${MQTT_WILL_QUEUE_PREFIX}${client}`);
  }
  return [...scopes].sort();
}

/**
 * The broker's scope matching (`wildcard:match`), for tests and the reference model: `*` matches
 * any run of characters, everything else itself.
 */
export function scopePatternMatches(pattern: string, subject: string): boolean {
  const parts = pattern.split("*");
  if (parts.length === 1) return pattern === subject;
  const head = parts[0]!;
  const tail = parts[parts.length - 1]!;
  if (!subject.startsWith(head) || subject.length < head.length + tail.length || !subject.endsWith(tail)) return false;
  let at = head.length;
  for (const middle of parts.slice(1, -1)) {
    const found = subject.indexOf(middle, at);
    if (found === -1 || found + middle.length > subject.length - tail.length) return false;
    at = found + middle.length;
  }
  return true;
}
