/**
 * Device fleets: a device class declared once in the tenant's stack config, its members listed in a
 * registry file of the repository (JSON lines, one device a line), not one YAML entry per device.
 *
 * A registry line: `{"name": "thermostat-0001", "passwordHash": "<base64>", "user": "home-42"}`.
 * - `name`: the device's name (identity-name rules); its broker user is `<name>@<tenant>`, its MQTT
 *   client ids `<name>`, `<name>_1`, ... (the class's maxClientIds).
 * - `passwordHash`: RabbitMQ's own salted SHA-256 hash of the device's password
 *   (base64 of a 4-byte salt followed by sha256(salt ++ password); hashDevicePassword makes one).
 *   The device's password never reaches the repository, the stack or Pulumi's state: whoever
 *   provisions the device keeps it and registers only the hash.
 * - `user`: the end-user id the device acts for, required when the class's grants use `{user}`.
 * Every line is validated like config, naming the file and line, before any resource exists.
 *
 * Pure: no Pulumi, no file system (stacks/tenant.ts reads the file).
 */
import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";
import type { ConfigIssue } from "./errors";
import { DEVICE_TOKEN, TOKEN_MARK, USER_TOKEN, type FleetTemplate } from "./fleet-template";
import { NAME_PATTERN, NAME_RULE, USER_ID_PATTERN, USER_ID_RULE } from "./names";
import { compilePermissions, clientIds } from "./permissions";
import { ROLES, ROLE_NAMES, isRoleName } from "./roles";
import { bindFilter, filterWithin, formatFilter, parseTopicFilter, type TopicFilter } from "./topics";

export const FLEET_HASHING_ALGORITHM = "rabbit_password_hashing_sha256";
/** A registry may list at most this many devices (the benchmarks go to 100,000). */
export const MAX_FLEET_DEVICES = 200_000;
export const DEFAULT_DEVICE_MAX_CLIENT_IDS = 1;

/** How a fleet is declared in stack config: `fleetSchema` in core/tenant-config.ts. */
export type { FleetConfig } from "./tenant-config";
import type { FleetConfig } from "./tenant-config";

export interface FleetClass {
  readonly name: string;
  readonly role: string;
  readonly registry: string;
  readonly template: FleetTemplate;
  readonly limits: { readonly maxConnections?: number; readonly maxChannels?: number; readonly maxClientIds: number };
}

export interface FleetDevice {
  readonly name: string;
  readonly passwordHash: string;
  readonly user?: string;
}

/**
 * Compiles a fleet's class once. `key` is the config key of the fleet (`tenant.fleets[0]`).
 * Returns undefined (issues recorded) when the class is invalid.
 */
export function compileFleetClass(tenant: string, cfg: FleetConfig, key: string, issues: ConfigIssue[]): FleetClass | undefined {
  if (!isRoleName(cfg.role)) {
    issues.push({ key: `${key}.role`, message: `unknown role '${cfg.role}'; known roles: ${ROLE_NAMES.join(", ")}` });
    return undefined;
  }
  const role = ROLES[cfg.role];
  const grants = cfg.grants ?? role.defaultGrants;
  if (grants === undefined || grants.publish.length + grants.subscribe.length === 0) {
    issues.push({ key: `${key}.grants`, message: `role ${role.name} has no default grants: declare grants.publish and/or grants.subscribe, with {device} for the device's name` });
    return undefined;
  }
  // {device} is the device's own name, the role's {identity}.
  const values = { identity: DEVICE_TOKEN, user: USER_TOKEN, tenant };
  const bound = { publish: [] as TopicFilter[], subscribe: [] as TopicFilter[] };
  let usesUser = false;
  let ok = true;
  for (const direction of ["publish", "subscribe"] as const) {
    grants[direction].forEach((text, gi) => {
      const gkey = cfg.grants ? `${key}.grants.${direction}[${gi}]` : `${key}.role (default ${direction} grant '${text}')`;
      if (text.includes(TOKEN_MARK)) {
        issues.push({ key: gkey, message: `'${text}': '${TOKEN_MARK}' is reserved in fleet grants` });
        ok = false;
        return;
      }
      let filter: TopicFilter;
      try {
        filter = parseTopicFilter(text.split("{device}").join("{identity}"));
      } catch (e) {
        issues.push({ key: gkey, message: `'${text}': ${(e as Error).message.replace("{identity}", "{device}")} (fleet grants use {device}, {user}, {tenant})` });
        ok = false;
        return;
      }
      if (filter.some((l) => l.kind === "placeholder" && l.name === "user")) usesUser = true;
      const b = bindFilter(filter, values);
      if (!role.ceiling[direction].some((c) => filterWithin(b, bindFilter(c, values)))) {
        issues.push({
          key: gkey,
          message: `'${text}' is wider than role ${role.name} allows for ${direction}: it must lie within ${role.ceiling[direction].map(formatFilter).join(" or ").split("{identity}").join("{device}")}`,
        });
        ok = false;
        return;
      }
      bound[direction].push(b);
    });
  }
  if (!ok) return undefined;
  const maxClientIds = cfg.limits.maxClientIds ?? DEFAULT_DEVICE_MAX_CLIENT_IDS;
  const p = compilePermissions(bound, clientIds(DEVICE_TOKEN, maxClientIds));
  return {
    name: cfg.name,
    role: role.name,
    registry: cfg.registry,
    limits: { ...(cfg.limits.maxConnections !== undefined ? { maxConnections: cfg.limits.maxConnections } : {}), ...(cfg.limits.maxChannels !== undefined ? { maxChannels: cfg.limits.maxChannels } : {}), maxClientIds },
    template: {
      username: `${DEVICE_TOKEN}@${tenant}`,
      configure: p.vhost.configure,
      write: p.vhost.write,
      read: p.vhost.read,
      exchange: p.topic.exchange,
      topicWrite: p.topic.write,
      topicRead: p.topic.read,
      queues: p.queues,
      usesUser,
    },
  };
}

const lineSchema = z.strictObject({
  name: z.string({ error: "must be a string" }).regex(NAME_PATTERN, { error: (iss) => `${JSON.stringify(iss.input)} is not allowed: ${NAME_RULE}` }),
  passwordHash: z
    .string({ error: "must be a string: RabbitMQ's base64 salted SHA-256 hash of the device's password" })
    .refine((h) => /^[A-Za-z0-9+/]{48}$/.test(h) && Buffer.from(h, "base64").length === 36, {
      error: "must be RabbitMQ's rabbit_password_hashing_sha256 hash: base64 of a 4-byte salt and the 32-byte SHA-256 (48 characters)",
    }),
  user: z
    .string({ error: "must be a string" })
    .regex(USER_ID_PATTERN, { error: (iss) => `${JSON.stringify(iss.input)} is not allowed: ${USER_ID_RULE}` })
    .optional(),
});

/**
 * Parses a registry file's text. Problems name `<file>:<line>` and the field; a line's content is
 * never echoed beyond its name (a hash is a credential). `taken` are names the tenant already uses
 * (identities, other fleets' devices), by name -> where.
 */
export function parseRegistry(
  text: string,
  file: string,
  cls: Pick<FleetClass, "template">,
  taken: ReadonlyMap<string, string>,
  issues: ConfigIssue[],
): FleetDevice[] {
  const devices: FleetDevice[] = [];
  const seen = new Map<string, number>();
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  lines.forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    if (line.trim() === "") {
      issues.push({ key: where, message: "empty line; one device a line, as a JSON object" });
      return;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      issues.push({ key: where, message: "not a JSON object; one device a line, e.g. {\"name\":\"thermostat-0001\",\"passwordHash\":\"...\"}" });
      return;
    }
    const parsed = lineSchema.safeParse(raw);
    if (!parsed.success) {
      for (const iss of parsed.error.issues) issues.push({ key: `${where} ${iss.path.length > 0 ? iss.path.join(".") : "(line)"}`, message: iss.message });
      return;
    }
    const d = parsed.data;
    const first = seen.get(d.name);
    if (first !== undefined) {
      issues.push({ key: `${where} name`, message: `duplicate device '${d.name}' (also line ${first}); device names are unique per tenant` });
      return;
    }
    const other = taken.get(d.name);
    if (other !== undefined) {
      issues.push({ key: `${where} name`, message: `'${d.name}' is already ${other}; a device's broker user <name>@<tenant> must be unique in the tenant` });
      return;
    }
    if (cls.template.usesUser && d.user === undefined) {
      issues.push({ key: `${where} user`, message: "required: the fleet's grants use {user}; set the end-user id this device acts for" });
      return;
    }
    seen.set(d.name, i + 1);
    devices.push({ name: d.name, passwordHash: d.passwordHash, ...(d.user !== undefined ? { user: d.user } : {}) });
  });
  if (devices.length > MAX_FLEET_DEVICES) issues.push({ key: file, message: `${devices.length} devices; a fleet holds at most ${MAX_FLEET_DEVICES}: split it` });
  return devices;
}

/** RabbitMQ's rabbit_password_hashing_sha256 hash of a password, for provisioning tools and tests. */
export function hashDevicePassword(password: string, salt: Buffer = randomBytes(4)): string {
  if (salt.length !== 4) throw new Error("the salt is 4 bytes");
  return Buffer.concat([salt, createHash("sha256").update(salt).update(password, "utf8").digest()]).toString("base64");
}

/**
 * A short fingerprint of what the broker holds for a device (its hash and user): the fleet's
 * `members` map, which `pulumi preview` diffs per device. Not the hash itself.
 */
export function deviceFingerprint(d: FleetDevice): string {
  return createHash("sha256").update(d.passwordHash).update("\0").update(d.user ?? "").digest("hex").slice(0, 16);
}

export interface FleetPlan {
  readonly added: readonly string[];
  readonly changed: readonly string[];
  readonly removed: readonly string[];
}

/** What changes between two `members` maps (name -> fingerprint). */
export function planFleet(olds: Readonly<Record<string, string>>, news: Readonly<Record<string, string>>): FleetPlan {
  const added: string[] = [];
  const changed: string[] = [];
  for (const [name, fp] of Object.entries(news)) {
    const old = olds[name];
    if (old === undefined) added.push(name);
    else if (old !== fp) changed.push(name);
  }
  const removed = Object.keys(olds).filter((n) => !(n in news));
  return { added, changed, removed };
}

/** A readable one-line summary of a plan, for logs and previews. */
export function summarizePlan(plan: FleetPlan, total: number, show = 5): string {
  const part = (label: string, names: readonly string[]) =>
    names.length === 0 ? [] : [`${names.length} ${label} (${names.slice(0, show).join(", ")}${names.length > show ? ", ..." : ""})`];
  const parts = [...part("added", plan.added), ...part("changed", plan.changed), ...part("removed", plan.removed)];
  return `${total} devices${parts.length > 0 ? `: ${parts.join("; ")}` : ", no change"}`;
}
