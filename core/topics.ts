/**
 * MQTT topic grants and their compilation to RabbitMQ topic-permission regexes.
 *
 * Broker facts this relies on (shared notes, checked against the MQTT plugin source):
 * - an MQTT topic becomes an AMQP routing key on the MQTT exchange with `/` -> `.` and `+` -> `*`;
 * - topic permissions are unanchored PCRE regexes matched against that routing key; for SUBSCRIBE
 *   they are matched against the *filter* (so the regex sees `*` and `#` literally);
 * - `{client_id}` / `{username}` expansions are not escaped before 4.2.4, so compiled patterns
 *   never use them: every identity gets patterns with its own validated names written in.
 */
import { REGEX_END, TOPIC_LEVEL_PATTERN, TOPIC_LEVEL_RULE, escapeRegex } from "./names";

/** Placeholders of identity grants; token apps have their own (core/token-scopes.ts). */
export const PLACEHOLDERS = ["identity", "user", "tenant"] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number] | "client";

export type FilterLevel =
  | { kind: "literal"; value: string }
  | { kind: "placeholder"; name: Placeholder }
  | { kind: "single" } // +
  | { kind: "multi" }; // #, last level only

export type TopicFilter = readonly FilterLevel[];

export const MAX_TOPIC_LEVELS = 32;

export class TopicFilterError extends Error {}

/**
 * Parses a grant written in MQTT terms, e.g. `client/{identity}/+`, allowing the placeholders in
 * `allowed`. Throws TopicFilterError.
 */
export function parseTopicFilter(text: string, allowed: readonly Placeholder[] = PLACEHOLDERS): TopicFilter {
  if (text.length === 0) throw new TopicFilterError("a topic filter cannot be empty");
  const parts = text.split("/");
  if (parts.length > MAX_TOPIC_LEVELS) {
    throw new TopicFilterError(`a topic filter has at most ${MAX_TOPIC_LEVELS} levels`);
  }
  return parts.map((part, i): FilterLevel => {
    if (part === "#") {
      if (i !== parts.length - 1) throw new TopicFilterError("'#' is only allowed as the last level");
      return { kind: "multi" };
    }
    if (part === "+") return { kind: "single" };
    const placeholder = /^\{([^{}]*)\}$/.exec(part);
    if (placeholder) {
      const name = placeholder[1] ?? "";
      if (!(allowed as readonly string[]).includes(name)) {
        throw new TopicFilterError(
          `unknown placeholder '{${name}}' (known: ${allowed.map((p) => `{${p}}`).join(", ")})`,
        );
      }
      return { kind: "placeholder", name: name as Placeholder };
    }
    if (part === "") throw new TopicFilterError(`level ${i + 1} is empty ('//' or a leading/trailing '/')`);
    if (part.includes("{") || part.includes("}")) {
      throw new TopicFilterError(`level '${part}': a placeholder must be a whole level, e.g. 'client/{identity}/#'`);
    }
    if (part.includes("+") || part.includes("#")) {
      throw new TopicFilterError(`level '${part}': '+' and '#' must be a whole level`);
    }
    if (!TOPIC_LEVEL_PATTERN.test(part)) {
      throw new TopicFilterError(`level '${part}' is not allowed: ${TOPIC_LEVEL_RULE}`);
    }
    return { kind: "literal", value: part };
  });
}

export function placeholdersOf(filter: TopicFilter): Placeholder[] {
  return filter.flatMap((l) => (l.kind === "placeholder" ? [l.name] : []));
}

export type PlaceholderValues = Readonly<Partial<Record<Placeholder, string>>>;

/** Replaces placeholders with an identity's (validated) values. */
export function bindFilter(filter: TopicFilter, values: PlaceholderValues): TopicFilter {
  return filter.map((level): FilterLevel => {
    if (level.kind !== "placeholder") return level;
    const value = values[level.name];
    if (value === undefined) throw new TopicFilterError(`placeholder '{${level.name}}' has no value`);
    if (!TOPIC_LEVEL_PATTERN.test(value)) {
      throw new TopicFilterError(`value for '{${level.name}}' is not a valid topic level: ${TOPIC_LEVEL_RULE}`);
    }
    return { kind: "literal", value };
  });
}

export function formatFilter(filter: TopicFilter): string {
  return filter
    .map((l) => {
      switch (l.kind) {
        case "literal":
          return l.value;
        case "placeholder":
          return `{${l.name}}`;
        case "single":
          return "+";
        case "multi":
          return "#";
      }
    })
    .join("/");
}

/**
 * True when every topic matched by `inner` is also matched by `outer` (both bound, no placeholders).
 * MQTT semantics: `a/#` also matches `a`, so `inner`'s `#` needs a `#` in `outer` at the same depth
 * or earlier.
 */
export function filterWithin(inner: TopicFilter, outer: TopicFilter): boolean {
  for (let i = 0; i < outer.length; i++) {
    const o = outer[i];
    const n = inner[i];
    if (o === undefined) break;
    if (o.kind === "multi") return true;
    if (n === undefined) return false;
    if (n.kind === "multi") return false;
    if (o.kind === "single") continue;
    if (o.kind === "placeholder" || n.kind === "placeholder") {
      throw new TopicFilterError("filterWithin needs bound filters");
    }
    if (n.kind !== "literal" || n.value !== o.value) return false;
  }
  return inner.length === outer.length;
}

/** Regex matching every routing key (and AMQP binding key) that the bound filter allows. */
export function filterToRoutingKeyRegexBody(filter: TopicFilter): string {
  let body = "";
  filter.forEach((level, i) => {
    const sep = i === 0 ? "" : "\\.";
    switch (level.kind) {
      case "literal":
        body += sep + escapeRegex(level.value);
        break;
      case "single":
        // One routing-key word. A subscription filter reaches the regex with `+` already turned into
        // `*`, which is fine here; `#` is excluded because in a binding key it spans many words.
        body += `${sep}[^.#]*`;
        break;
      case "multi":
        // MQTT `a/#` matches `a` itself, so the whole tail (separator included) is optional.
        body += i === 0 ? ".*" : "(?:\\..*)?";
        break;
      case "placeholder":
        throw new TopicFilterError("filterToRoutingKeyRegexBody needs bound filters");
    }
  });
  return body;
}

/** A regex no routing key matches, not even the empty one (default deny). */
export const DENY_ALL_PATTERN = "^(?!)$";

/** One anchored regex for a set of bound filters; DENY_ALL_PATTERN for none. */
export function compileTopicPattern(filters: readonly TopicFilter[]): string {
  if (filters.length === 0) return DENY_ALL_PATTERN;
  const bodies = [...new Set(filters.map(filterToRoutingKeyRegexBody))];
  return `^(?:${bodies.join("|")})${REGEX_END}`;
}
