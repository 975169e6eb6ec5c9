/**
 * Device fleets: a device class declared once in the tenant's stack config, its members listed in a
 * registry file of the repository (JSON lines, one device a line), not one YAML entry per device.
 *
 * A registry line of a password fleet: `{"name": "thermostat-0001", "passwordHash": "<base64>", "user": "home-42"}`;
 * of a certificate fleet: `{"name": "camera-0001", "csr": "-----BEGIN CERTIFICATE REQUEST-----\n..."}`.
 * - `name`: the device's name (identity-name rules); its broker user is `<name>@<tenant>`, its MQTT
 *   client ids `<name>`, `<name>_1`, ... (the class's maxClientIds).
 * - `passwordHash`: RabbitMQ's own salted SHA-256 hash of the device's password
 *   (base64 of a 4-byte salt followed by sha256(salt ++ password); hashDevicePassword makes one).
 *   The device's password never reaches the repository, the stack or Pulumi's state: whoever
 *   provisions the device keeps it and registers only the hash.
 * - `csr` (certificate fleets): the device's PKCS #10 request, PEM (core/fleet-certificates.ts). The
 *   device keeps its key; the fleet signs the request with the tenant's issuer. Its subject must be
 *   the one the fleet issues (CN `<name>@<tenant>`, O the tenant, the tenant's certificate subject
 *   defaults) or a part of it; its broker user is the login name of that subject, its only MQTT
 *   client id the subject's DN, as for a certificate identity.
 * - `user`: the end-user id the device acts for, required when the class's grants use `{user}`.
 * Every line is validated like config, naming the file and line, before any resource exists.
 *
 * Pure: no Pulumi, no file system (stacks/tenant.ts reads the file).
 */
import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";
import type { ConfigIssue } from "./errors";
import { brokerLoginName, subjectProblems, type CertificateSubject, type CertLoginFrom } from "./dn";
import { csrSubjectProblem, parseCsr } from "./fleet-certificates";
import { DEVICE_TOKEN, TOKEN_MARK, USER_TOKEN, deviceSubject, type FleetTemplate } from "./fleet-template";
import { NAME_PATTERN, NAME_RULE, USER_ID_PATTERN, USER_ID_RULE } from "./names";
import { MAX_QUEUE_NAME_BYTES, MQTT_SUBSCRIPTION_QUEUE_PREFIX, clientIdFitsQueueNames, compilePermissions, clientIds } from "./permissions";
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
  readonly auth: "password" | "certificate";
  readonly registry: string;
  /** For a certificate fleet, `username` is the DN login name; see `certificate.usernames`. */
  readonly template: FleetTemplate;
  /** Certificate fleets: the subject every device's certificate gets, with DEVICE_TOKEN in its CN. */
  readonly certificate?: {
    readonly subject: CertificateSubject;
    /** The device's broker user per `ssl_cert_login_from`, with DEVICE_TOKEN. */
    readonly usernames: Readonly<Record<CertLoginFrom, string>>;
  };
  readonly limits: { readonly maxConnections?: number; readonly maxChannels?: number; readonly maxClientIds: number };
}

/** A device of the registry: a password fleet's carry `passwordHash`, a certificate fleet's `csr`. */
export type FleetDevice =
  | { readonly name: string; readonly passwordHash: string; readonly csr?: undefined; readonly user?: string }
  | { readonly name: string; readonly csr: string; readonly passwordHash?: undefined; readonly user?: string };

/**
 * Compiles a fleet's class once. `key` is the config key of the fleet (`tenant.fleets[0]`).
 * Returns undefined (issues recorded) when the class is invalid.
 */
export function compileFleetClass(
  tenant: string,
  cfg: FleetConfig,
  key: string,
  issues: ConfigIssue[],
  subjectDefaults: Omit<CertificateSubject, "commonName"> = { organization: tenant },
): FleetClass | undefined {
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
  const certificate = cfg.auth === "certificate" ? certificateClass(tenant, cfg, key, issues, subjectDefaults) : undefined;
  if (certificate === null) return undefined;
  const maxClientIds = certificate !== undefined ? 1 : (cfg.limits.maxClientIds ?? DEFAULT_DEVICE_MAX_CLIENT_IDS);
  // A certificate device's only client id is its certificate's DN, as for a certificate identity.
  const ids = certificate !== undefined ? [certificate.usernames.distinguished_name] : clientIds(DEVICE_TOKEN, maxClientIds);
  const p = compilePermissions(bound, ids);
  return {
    name: cfg.name,
    role: role.name,
    auth: cfg.auth,
    registry: cfg.registry,
    ...(certificate !== undefined ? { certificate } : {}),
    limits: { ...(cfg.limits.maxConnections !== undefined ? { maxConnections: cfg.limits.maxConnections } : {}), ...(cfg.limits.maxChannels !== undefined ? { maxChannels: cfg.limits.maxChannels } : {}), maxClientIds },
    template: {
      username: certificate !== undefined ? certificate.usernames.distinguished_name : `${DEVICE_TOKEN}@${tenant}`,
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

/** The certificate part of a certificate fleet's class; null when invalid (issues recorded). */
function certificateClass(
  tenant: string,
  cfg: FleetConfig,
  key: string,
  issues: ConfigIssue[],
  defaults: Omit<CertificateSubject, "commonName">,
): FleetClass["certificate"] | null {
  if (cfg.limits.maxClientIds !== undefined) {
    issues.push({ key: `${key}.limits.maxClientIds`, message: "not for auth: certificate: a certificate device's only MQTT client id is its certificate's subject DN; remove it" });
    return null;
  }
  const subject: CertificateSubject = {
    ...Object.fromEntries(Object.entries(defaults).filter(([k, v]) => v !== undefined && k !== "commonName")),
    commonName: `${DEVICE_TOKEN}@${tenant}`,
  };
  // The subject's own fields, checked once; each device's full subject is checked with its line.
  const problems = subjectProblems({ ...subject, commonName: `x@${tenant}` }, "distinguished_name");
  if (problems.length > 0) {
    issues.push(...problems.map((message) => ({ key: `${TENANT_CERTIFICATES_KEY}.subject`, message: `for fleet ${cfg.name}: ${message}` })));
    return null;
  }
  const dn = brokerLoginName(subject, "distinguished_name");
  return { subject, usernames: { distinguished_name: dn, common_name: brokerLoginName(subject, "common_name") } };
}

const TENANT_CERTIFICATES_KEY = "tenant.certificates";

const nameField = z.string({ error: "must be a string" }).regex(NAME_PATTERN, { error: (iss) => `${JSON.stringify(iss.input)} is not allowed: ${NAME_RULE}` });
const userField = z
  .string({ error: "must be a string" })
  .regex(USER_ID_PATTERN, { error: (iss) => `${JSON.stringify(iss.input)} is not allowed: ${USER_ID_RULE}` })
  .optional();

const certificateLineSchema = z.strictObject({
  name: nameField,
  csr: z.string({ error: "must be a string: the device's certificate signing request (PKCS #10, PEM)" }),
  user: userField,
});

const lineSchema = z.strictObject({
  name: nameField,
  passwordHash: z
    .string({ error: "must be a string: RabbitMQ's base64 salted SHA-256 hash of the device's password" })
    .refine((h) => /^[A-Za-z0-9+/]{48}$/.test(h) && Buffer.from(h, "base64").length === 36, {
      error: "must be RabbitMQ's rabbit_password_hashing_sha256 hash: base64 of a 4-byte salt and the 32-byte SHA-256 (48 characters)",
    }),
  user: userField,
});

/**
 * Parses a registry file's text. Problems name `<file>:<line>` and the field; a line's content is
 * never echoed beyond its name (a hash is a credential). `taken` are names the tenant already uses
 * (identities, other fleets' devices), by name -> where.
 */
export function parseRegistry(
  text: string,
  file: string,
  cls: Pick<FleetClass, "template" | "certificate">,
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
    const parsed = (cls.certificate !== undefined ? certificateLineSchema : lineSchema).safeParse(raw);
    if (!parsed.success) {
      for (const iss of parsed.error.issues) {
        const field = iss.path.length > 0 ? iss.path.join(".") : "(line)";
        const other = cls.certificate !== undefined ? "passwordHash" : "csr";
        const message = iss.code === "unrecognized_keys" && iss.keys.includes(other) ? `${iss.message}: '${other}' is for ${other === "csr" ? "auth: certificate" : "auth: password"} fleets` : iss.message;
        issues.push({ key: `${where} ${field}`, message });
      }
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
    const user = d.user !== undefined ? { user: d.user } : {};
    if ("csr" in d) {
      const subject = deviceSubject(cls.certificate!.subject, d.name);
      const problem = subjectFitProblem(subject) ?? csrProblem(d.csr, subject);
      if (problem !== undefined) {
        issues.push({ key: `${where} csr`, message: problem });
        return;
      }
      seen.set(d.name, i + 1);
      devices.push({ name: d.name, csr: d.csr, ...user });
      return;
    }
    seen.set(d.name, i + 1);
    devices.push({ name: d.name, passwordHash: d.passwordHash, ...user });
  });
  if (devices.length > MAX_FLEET_DEVICES) issues.push({ key: file, message: `${devices.length} devices; a fleet holds at most ${MAX_FLEET_DEVICES}: split it` });
  return devices;
}

/** Whether a device's subject is one the broker reads, and its DN fits as a client id in queue names. */
function subjectFitProblem(subject: CertificateSubject): string | undefined {
  const problems = subjectProblems(subject, "distinguished_name");
  if (problems.length > 0) return `the device's certificate subject: ${problems.join("; ")}; use a shorter name`;
  const dn = brokerLoginName(subject, "distinguished_name");
  if (!clientIdFitsQueueNames(dn)) {
    return (
      `the device's subject ${JSON.stringify(dn)} is its MQTT client id, and its session queue ` +
      `(${MQTT_SUBSCRIPTION_QUEUE_PREFIX}<client id>qos1) would not fit RabbitMQ's ${MAX_QUEUE_NAME_BYTES}-byte queue names; use a shorter name`
    );
  }
  return undefined;
}

function csrProblem(pem: string, subject: CertificateSubject): string | undefined {
  try {
    return csrSubjectProblem(parseCsr(pem), subject);
  } catch (e) {
    return (e as Error).message;
  }
}

/** RabbitMQ's rabbit_password_hashing_sha256 hash of a password, for provisioning tools and tests. */
export function hashDevicePassword(password: string, salt: Buffer = randomBytes(4)): string {
  if (salt.length !== 4) throw new Error("the salt is 4 bytes");
  return Buffer.concat([salt, createHash("sha256").update(salt).update(password, "utf8").digest()]).toString("base64");
}

/**
 * A short fingerprint of what the broker holds for a device (its hash or CSR, and user): the fleet's
 * `members` map, which `pulumi preview` diffs per device. Not the hash itself.
 */
export function deviceFingerprint(d: FleetDevice): string {
  const credential = d.csr !== undefined ? `csr\0${d.csr.replace(/\s/g, "")}` : d.passwordHash;
  return createHash("sha256").update(credential).update("\0").update(d.user ?? "").digest("hex").slice(0, 16);
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
