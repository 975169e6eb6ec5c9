/**
 * Naming rules for everything the provisioner puts into a RabbitMQ name, a routing key or a regex.
 *
 * Why these are strict: RabbitMQ matches permissions with unanchored regexes on names and on
 * routing keys, and MQTT topics become routing keys with `/` turned into `.` (see
 * shared notes). A name containing `.`, `#`, `+`, `*`, `/`, `:` or a regex metacharacter could
 * widen a pattern, split a routing-key word, or pick another vhost (`vhost:user` logins).
 * Only the characters below ever reach a pattern, so no pattern is built from unvalidated text.
 */

/** Tenant (vhost) and identity names: DNS-label style, lowercase. */
export const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const NAME_RULE =
  "1-63 characters: lowercase letters, digits and '-', starting and ending with a letter or digit";

/** End-user ids that fill `{user}` in topic grants (e.g. an account id or UUID). */
export const USER_ID_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,126}[A-Za-z0-9])?$/;
export const USER_ID_RULE =
  "1-128 characters: letters, digits, '_' and '-', starting and ending with a letter or digit";

/** A literal level of an MQTT topic filter in a grant. */
export const TOPIC_LEVEL_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const TOPIC_LEVEL_RULE = "1-64 characters: letters, digits, '_' and '-'";

/**
 * Separator between an identity name and an instance number in an MQTT client id
 * (`<identity>`, `<identity>_1`, `<identity>_2`, ...). It must be a character that identity names
 * cannot contain, so that no identity's client ids are a prefix-extension of another's.
 */
export const CLIENT_ID_INSTANCE_SEPARATOR = "_";

/**
 * End of subject for every regex the broker evaluates. PCRE's `$` (RabbitMQ does not set
 * dollar_endonly) also matches before a final newline, so `^a$` would accept "a\n"; the lookahead
 * refuses that. JavaScript's `$` already means the very end, so tests evaluate the same pattern.
 */
export const REGEX_END = "$(?!\\n)";

/**
 * The RabbitMQ user name of an identity. Users are broker-wide, so the tenant is part of the name:
 * two tenants may both have an identity called `gateway`. `@` is in neither name's alphabet, so the
 * mapping is one-to-one, and it contains no `:` (which MQTT logins treat as a vhost separator).
 */
export function rabbitUsername(tenant: string, identity: string): string {
  assertName(tenant, "tenant");
  assertName(identity, "identity");
  return `${identity}@${tenant}`;
}

export function isName(value: string): boolean {
  return NAME_PATTERN.test(value);
}

export function assertName(value: string, what: string): void {
  if (!isName(value)) {
    throw new Error(`${what} name ${JSON.stringify(value)} is not valid: ${NAME_RULE}`);
  }
}

/** Escapes every PCRE metacharacter; used even on validated names, as a second line of defence. */
export function escapeRegex(literal: string): string {
  return literal.replace(/[\\^$.|?*+()[\]{}\-/#:]/g, "\\$&");
}

/**
 * An OAuth 2 resource server id: it prefixes every scope (`<id>.read:<vhost>/...`), so a `.`,
 * `:`, `/` or wildcard in it would change how the broker splits scopes.
 */
export const RESOURCE_SERVER_ID_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;
