/**
 * The broker-wide MQTT vhost mappings (global runtime parameters). Each is one JSON object shared by
 * every tenant stack; a stack owns only its own entries. This module holds the pure parts: entry
 * validation and the merge that a stack applies to the shared object.
 */
import { NAME_PATTERN, NAME_RULE } from "./names";

export const MQTT_MAPPING_PARAMETERS = ["mqtt_default_vhosts", "mqtt_port_to_vhost_mapping"] as const;
export type MqttMappingParameter = (typeof MQTT_MAPPING_PARAMETERS)[number];

export type MappingEntries = Readonly<Record<string, string>>;

/** Returns a problem description, or undefined when the entry is valid. */
export function checkMappingEntry(parameter: MqttMappingParameter, key: string, vhost: string): string | undefined {
  if (!NAME_PATTERN.test(vhost)) return `vhost ${JSON.stringify(vhost)} is not a tenant vhost name: ${NAME_RULE}`;
  if (parameter === "mqtt_port_to_vhost_mapping") {
    // The broker looks the listener port up as a decimal string.
    if (!/^[1-9][0-9]{0,4}$/.test(key) || Number(key) > 65535) {
      return `key ${JSON.stringify(key)} must be a TCP port number (1-65535) written in decimal`;
    }
  } else if (key.length === 0 || key.length > 1024 || key.trim() !== key) {
    return `key ${JSON.stringify(key)} must be the certificate login name exactly as the broker derives it (1-1024 characters, no surrounding spaces)`;
  }
  return undefined;
}

/** The shared object as the broker holds it: other stacks' values are kept as they are. */
export type SharedMapping = Readonly<Record<string, unknown>>;

export interface MappingConflict {
  readonly key: string;
  readonly desired: string;
  readonly current: unknown;
}

export interface MappingPlan {
  /** The whole object to write back. */
  readonly next: Record<string, unknown>;
  /** Entries another owner holds with a different vhost: the change must not proceed. */
  readonly conflicts: readonly MappingConflict[];
  /** True when `next` differs from `current`. */
  readonly changed: boolean;
}

/**
 * Moves the shared object from a stack's `owned` entries (what it wrote last time; {} on create) to
 * its `desired` entries ({} on delete), leaving every other key as it is.
 * - A desired key held by someone else with another vhost is a conflict (one certificate or port
 *   cannot land in two tenants). Held with the same vhost, it is adopted: that makes a retried
 *   create after a crash idempotent.
 * - A key this stack no longer wants is removed only if it still has the value this stack wrote.
 */
export function planMappingChange(
  current: SharedMapping,
  owned: MappingEntries,
  desired: MappingEntries,
): MappingPlan {
  const next: Record<string, unknown> = { ...current };
  const conflicts: MappingConflict[] = [];
  for (const [key, vhost] of Object.entries(desired)) {
    const now = Object.prototype.hasOwnProperty.call(current, key) ? current[key] : undefined;
    const mine = Object.prototype.hasOwnProperty.call(owned, key) ? owned[key] : undefined;
    if (now !== undefined && now !== vhost && now !== mine) {
      conflicts.push({ key, desired: vhost, current: now });
      continue;
    }
    // defineProperty, not assignment: a key such as "__proto__" must stay a plain entry.
    Object.defineProperty(next, key, { value: vhost, enumerable: true, writable: true, configurable: true });
  }
  for (const [key, vhost] of Object.entries(owned)) {
    if (Object.prototype.hasOwnProperty.call(desired, key)) continue;
    if (next[key] === vhost) delete next[key];
  }
  const changed =
    Object.keys(next).length !== Object.keys(current).length ||
    Object.entries(next).some(([k, v]) => current[k] !== v);
  return { next, conflicts, changed };
}

/** The subset of `current` that this stack's keys hold now (for refresh / drift detection). */
export function ownedView(current: SharedMapping, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of keys) {
    if (Object.prototype.hasOwnProperty.call(current, key)) {
      const v = current[key];
      if (typeof v === "string") out[key] = v;
    }
  }
  return out;
}

/**
 * What a lock declaration's answer means: ours, someone else's (wait and retry), or an error that
 * retrying will not cure. Two answers mean "someone else's": a declaration with another holder's
 * token (inequivalent x-max-length), and on RabbitMQ 4.x a lock queue that another holder is just
 * deleting, or whose lease just ran out: its record still exists but its process is gone, and the
 * declaration gets 404 "home node ... of durable queue ... is down or inaccessible" (seen on 4.0.5
 * under concurrent pulumi ups) until the record goes.
 */
export function lockDeclarationOutcome(status: number, reason: string): "taken" | "held" | "fatal" {
  if (status === 201 || status === 204) return "taken";
  if (status === 400 && /inequivalent arg/.test(reason)) return "held";
  if (status === 404 && /^home node .* of durable queue .* is down or inaccessible$/.test(reason)) return "held";
  return "fatal";
}
