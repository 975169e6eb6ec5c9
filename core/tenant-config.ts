/**
 * The tenant stack config: schema, validation and the validated model the `Tenant` component
 * turns into resources. Pure: no Pulumi here, so every rule is unit-tested directly.
 */
import { z } from "zod";
import { STANDARD_BROKER_PORTS } from "./broker-baseline";
import { brokerLoginName, subjectProblems, type CertificateSubject, type CertLoginFrom } from "./dn";
import { HOURS_PER_YEAR, earlyRenewalHoursField, keySchema, validityHoursField, validityProblems } from "./pki-config";
import { ConfigError, formatPath, type ConfigIssue } from "./errors";
import type { ReadonlyFields } from "./readonly";
import { NAME_PATTERN, NAME_RULE, USER_ID_PATTERN, USER_ID_RULE, rabbitUsername } from "./names";
import {
  MAX_CLIENT_IDS_RANGE,
  MAX_QUEUE_NAME_BYTES,
  MQTT_SUBSCRIPTION_QUEUE_PREFIX,
  clientIdFitsQueueNames,
  clientIds,
  compilePermissions,
  type CompiledPermissions,
} from "./permissions";
import { ROLES, ROLE_NAMES, isRoleName, type RoleName } from "./roles";
import { buildTokenApps, tokenAppsSchema, type TokenApp } from "./token-apps";
import { compileFleetClass, parseRegistry, type FleetClass, type FleetDevice } from "./fleets";
import {
  bindFilter,
  filterWithin,
  formatFilter,
  parseTopicFilter,
  placeholdersOf,
  type TopicFilter,
} from "./topics";

/** Stack config keys (without the project prefix). */
export const TENANT_KEY = "tenant";
export const IDENTITY_PASSWORDS_KEY = "identityPasswords";

export const LIMIT_RANGES = {
  vhostMaxConnections: [1, 1_000_000],
  vhostMaxQueues: [1, 1_000_000],
  identityMaxConnections: [1, 100_000],
  // RabbitMQ's default channel_max is 2047.
  identityMaxChannels: [1, 2047],
  identityMaxClientIds: MAX_CLIENT_IDS_RANGE,
  queueExpiresSeconds: [60, 31_536_000],
  queueMaxLength: [1, 100_000_000],
  queueMaxLengthBytes: [1024, 1_099_511_627_776],
  policyPriority: [0, 1000],
  passwordLength: [16, 128],
} as const satisfies Record<string, readonly [number, number]>;

function intIn([min, max]: readonly [number, number]) {
  return z
    .number({ error: "must be a whole number" })
    .int({ error: "must be a whole number" })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });
}

const nameSchema = z
  .string({ error: "must be a string" })
  .regex(NAME_PATTERN, { error: (iss) => `${JSON.stringify(iss.input)} is not allowed: ${NAME_RULE}` });

const identityLimitsSchema = z.strictObject({
  maxConnections: intIn(LIMIT_RANGES.identityMaxConnections).optional().describe("connections at once, per user (a RabbitMQ user limit); absent: unlimited"),
  maxChannels: intIn(LIMIT_RANGES.identityMaxChannels).optional().describe("channels per user; absent: unlimited"),
  maxClientIds: intIn(LIMIT_RANGES.identityMaxClientIds)
    .optional()
    .describe("the MQTT client ids (`<name>`, `<name>_1`, …) it may use, which bounds its queues to 3 × this; not with auth: certificate (its one client id is its DN)"),
});

export const DEFAULT_MAX_CLIENT_IDS = 4;

/** The tenant's defaults for its identities: the same limits, with the client-id default here. */
const tenantIdentityLimitsSchema = identityLimitsSchema.extend({
  maxClientIds: intIn(LIMIT_RANGES.identityMaxClientIds)
    .default(DEFAULT_MAX_CLIENT_IDS)
    .describe("the MQTT client ids (`<identity>`, `<identity>_1`, …) each password identity may use, which bounds its queues to 3 × this"),
});

const grantList = (placeholders: string) =>
  z.array(z.string({ error: "must be a string (an MQTT topic filter)" })).default([]).describe(`MQTT topic filters within the role's ceiling, with ${placeholders}; absent grants: the role's defaults`);
const grantsSchema = (placeholders: string) => z.strictObject({ publish: grantList(placeholders), subscribe: grantList(placeholders) });

export const IDENTITY_KINDS = ["app", "device", "service"] as const;
/**
 * password: a generated (or given) password, MQTT username `<tenant>:<identity>@<tenant>`.
 * certificate: a client certificate signed by the tenant's issuer, no username, no password.
 */
export const AUTH_METHODS = ["password", "certificate"] as const;

const UNSTABLE_SUBJECT_FIELD =
  "cannot be set: RabbitMQ derives the login name of a street address or postal code from Erlang's undecoded form, " +
  "which differs between Erlang releases (RabbitMQ 4.3 on Erlang/OTP 29 names it differently from 3.10 and 4.0), so the " +
  "device could not log in after a broker upgrade; put that information in organizationalUnit, locality or serialNumber";

/**
 * Subject fields a certificate may carry besides its CN. The CN is always the identity's RabbitMQ
 * user name `<identity>@<tenant>`: tenant names are unique on a broker, so no two tenants' devices
 * can ever get the same login name, whether the broker reads the DN or the CN.
 */
const subjectFieldsSchema = z.strictObject({
  commonName: z
    .never({ error: "cannot be set: the common name is always the identity's user name <identity>@<tenant>, which keeps login names unique across tenants" })
    .optional()
    .describe("cannot be set: it is always `<identity>@<tenant>`, which keeps login names unique across tenants"),
  organization: z.string({ error: "must be a string" }).optional().describe("O; the tenant's default is the tenant name"),
  organizationalUnit: z.string({ error: "must be a string" }).optional().describe("OU"),
  country: z.string({ error: "must be a string" }).optional().describe("C: two capital letters"),
  province: z.string({ error: "must be a string" }).optional().describe("ST"),
  locality: z.string({ error: "must be a string" }).optional().describe("L"),
  // Erlang leaves these two attribute types undecoded and the broker prints the raw term, which
  // changed with Erlang/OTP 29 (RabbitMQ 4.3: `2.5.4.9={asn1_OPENTYPE,...}` instead of
  // `2.5.4.9=Unit 2`, seen on 4.3.6): the login name would depend on the broker's Erlang release.
  streetAddresses: z.never({ error: UNSTABLE_SUBJECT_FIELD }).optional().describe("cannot be set: its login name depends on the broker's Erlang release"),
  postalCode: z.never({ error: UNSTABLE_SUBJECT_FIELD }).optional().describe("cannot be set: its login name depends on the broker's Erlang release"),
  serialNumber: z.string({ error: "must be a string" }).optional().describe("serialNumber"),
});
type SubjectFields = z.output<typeof subjectFieldsSchema>;


const identitySchema = z.strictObject({
  name: nameSchema.describe(`${NAME_RULE}; unique in the tenant; no \`.\`, \`#\`, \`+\`, \`*\`, \`/\`, \`:\`, \`_\`, \`@\` or regex metacharacters`),
  kind: z.enum(IDENTITY_KINDS, { error: `must be one of: ${IDENTITY_KINDS.join(", ")}` }),
  // Checked in validateSemantics so the message can list the roles and what each allows.
  role: z.string({ error: `must be one of: ${ROLE_NAMES.join(", ")}` }).describe(`one of ${ROLE_NAMES.map((r) => `\`${r}\``).join(", ")} (see [Roles and grants](#roles-and-grants))`),
  auth: z
    .enum(AUTH_METHODS, { error: `must be one of: ${AUTH_METHODS.join(", ")}` })
    .default("password")
    .describe("`password`: MQTT username `<tenant>:<identity>@<tenant>` with a generated (or given) password; `certificate`: a client certificate signed by the tenant's issuer, no username, no password"),
  user: z
    .string({ error: "must be a string" })
    .regex(USER_ID_PATTERN, { error: (iss) => `${JSON.stringify(iss.input)} is not allowed: ${USER_ID_RULE}` })
    .optional()
    .describe(`${USER_ID_RULE}: the end user an app or device acts for; fills \`{user}\`, required when a grant uses it`),
  description: z.string().max(256).optional(),
  limits: identityLimitsSchema.optional().describe("the identity's own limits; absent keys: the tenant's identityLimits"),
  grants: grantsSchema("`{identity}`, `{user}`, `{tenant}`").optional(),
  certificate: z
    .strictObject({ subject: subjectFieldsSchema.prefault({}).describe("subject fields as in tenant.certificates.subject, over the tenant's") })
    .optional()
    .describe("only with auth: certificate"),
});

/** The registry path: relative to the project directory, inside it, a `.jsonl` file. */
const REGISTRY_PATH = /^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9_./-]+\.jsonl$/;

/** A device fleet (core/fleets.ts): the class; its devices are in the registry file. */
export const fleetSchema = z.strictObject({
  name: nameSchema.describe(`${NAME_RULE}; unique among the tenant's fleets`),
  role: z
    .string({ error: `must be one of: ${ROLE_NAMES.join(", ")}` })
    .describe(`one of ${ROLE_NAMES.map((r) => `\`${r}\``).join(", ")}: grants within its ceiling, \`{identity}\` being the device`),
  auth: z
    .enum(AUTH_METHODS, { error: `must be one of: ${AUTH_METHODS.join(", ")}` })
    .default("password")
    .describe(
      "`password`: registry lines carry the devices' `passwordHash`; `certificate`: they carry the devices' `csr`, which the fleet signs with the tenant's issuer, " +
        "and devices log in on the tenant's own TLS port (needs tenant.mqttPorts and broker.stackReference), so no broker-wide entry is made per device",
    ),
  registry: z
    .string({ error: "must be a path" })
    .regex(REGISTRY_PATH, { error: "must be a .jsonl file inside the project, relative to Pulumi.yaml, e.g. fleets/acme-thermostats.jsonl" })
    .describe("a `.jsonl` file inside the project, relative to `Pulumi.yaml` (no `..`, not absolute): one device per line (see [Device fleets](#device-fleets))"),
  grants: grantsSchema("`{device}`, `{user}`, `{tenant}`").optional(),
  limits: identityLimitsSchema.prefault({}).describe("per device; maxClientIds absent: 1"),
});
export type FleetConfig = z.output<typeof fleetSchema>;

export const tenantConfigSchema = z.strictObject({
  name: nameSchema.describe(`${NAME_RULE}; becomes the vhost`),
  description: z.string({ error: "must be a string" }).max(1024).default("").describe("the vhost's description"),
  tags: z
    .array(
      z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, {
        error: "tags use letters, digits, '_' and '-' (1-64 characters; RabbitMQ joins tags with commas)",
      }),
    )
    .default([])
    .describe("the vhost's tags, each 1–64 of `A-Z a-z 0-9 _ -`"),
  protect: z
    .boolean({ error: "must be true or false" })
    .default(true)
    .describe("deleting a vhost deletes every message queued in it, so it is protected: `pulumi destroy` fails until the stack sets this to false"),
  limits: z
    .strictObject({
      maxConnections: intIn(LIMIT_RANGES.vhostMaxConnections).optional().describe("connections to the vhost at once; absent: unlimited"),
      maxQueues: intIn(LIMIT_RANGES.vhostMaxQueues).optional().describe("queues in the vhost; absent: unlimited"),
    })
    .prefault({}),
  identityLimits: tenantIdentityLimitsSchema.prefault({}).describe("per identity, unless it sets its own limits"),
  subscriptionQueues: z
    .strictObject({
      expiresSeconds: intIn(LIMIT_RANGES.queueExpiresSeconds).optional().describe("delete an MQTT subscription queue unused this long"),
      maxLength: intIn(LIMIT_RANGES.queueMaxLength).optional().describe("messages a subscription queue holds"),
      maxLengthBytes: intIn(LIMIT_RANGES.queueMaxLengthBytes).optional().describe("bytes a subscription queue holds"),
      overflow: z
        .enum(["drop-head", "reject-publish"], { error: "must be drop-head or reject-publish" })
        .optional()
        .describe("what a full queue does; absent: the broker's default"),
      priority: intIn(LIMIT_RANGES.policyPriority).default(0).describe("the policy's priority"),
    })
    .optional()
    .describe("a policy on the tenant's MQTT subscription queues; absent: none"),
  mqttPorts: z
    .array(intIn([1, 65535]))
    .default([])
    .describe(
      "MQTT (or MQTT-over-TLS) listener ports dedicated to this tenant (they must exist on the broker, e.g. the platform's tenantMqtts): a connection on one lands in this vhost " +
        "without a `vhost:` prefix in its username, through the broker-wide `mqtt_port_to_vhost_mapping`; not a RabbitMQ standard port (1883, 8883, 5672, 15672, 15675, …)",
    ),
  certificates: z
    .strictObject({
      key: keySchema.prefault({}).describe("as the platform's pki.key"),
      validityHours: validityHoursField(HOURS_PER_YEAR),
      earlyRenewalHours: earlyRenewalHoursField(30 * 24),
      subject: subjectFieldsSchema.prefault({}).describe("subject fields (each at most 64 characters, no control characters) every identity's certificate gets unless it sets its own"),
    })
    .prefault({})
    .describe("client certificates of auth: certificate identities and fleets"),
  identities: z.array(identitySchema).min(1, { error: "declare at least one identity" }).describe("the tenant's apps, devices and services that have a broker user each"),
  apps: tokenAppsSchema.describe("apps whose end users sign in with tokens (see [Tokens for app users](#tokens-for-app-users)): no broker user and no Pulumi resource per app or user; exported as `tokenApps` for the platform's issuer"),
  fleets: z
    .array(fleetSchema)
    .default([])
    .describe("device fleets (see [Device fleets](#device-fleets)): a device class each, its members in a registry file; one Pulumi resource per fleet, whatever its size"),
});

export type TenantConfigInput = z.input<typeof tenantConfigSchema>;
type TenantConfigParsed = z.output<typeof tenantConfigSchema>;

type IdentityConfig = TenantConfigParsed["identities"][number];

export interface IdentityModel {
  readonly name: string;
  readonly kind: IdentityConfig["kind"];
  readonly role: RoleName;
  readonly auth: IdentityConfig["auth"];
  readonly user?: string;
  readonly description?: string;
  /** The broker-wide RabbitMQ user name (`<identity>@<tenant>`). */
  readonly username: string;
  readonly limits: { readonly maxConnections?: number; readonly maxChannels?: number; readonly maxClientIds: number };
  /** Grants as declared (or the role's defaults), placeholders unbound, for documentation. */
  readonly grants: { readonly publish: readonly string[]; readonly subscribe: readonly string[] };
  readonly permissions: CompiledPermissions;
  /** For `auth: certificate`: the certificate's subject and the login name it gives, per broker setting. */
  readonly certificate?: {
    readonly subject: CertificateSubject;
    readonly loginNames: Readonly<Record<CertLoginFrom, string>>;
  };
}

export interface SubscriptionQueuePolicyModel {
  readonly expiresMs?: number;
  readonly maxLength?: number;
  readonly maxLengthBytes?: number;
  readonly overflow?: "drop-head" | "reject-publish";
  readonly priority: number;
}

export interface TenantModel {
  readonly name: string;
  readonly vhost: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly protect: boolean;
  readonly limits: ReadonlyFields<TenantConfigParsed["limits"]>;
  readonly subscriptionQueues?: SubscriptionQueuePolicyModel;
  /** This tenant's entries in `mqtt_port_to_vhost_mapping` (port as a decimal string -> vhost). */
  readonly portMappings: Readonly<Record<string, string>>;
  readonly certificates: ReadonlyFields<Omit<TenantConfigParsed["certificates"], "subject">>;
  readonly identities: readonly IdentityModel[];
  /** Token apps, validated. */
  readonly apps: readonly TokenApp[];
  /**
   * The same apps as config, defaults filled in: what the tenant stack exports for the platform's
   * token issuer, whose file takes this form and validates it again (stacks/tenant.ts).
   */
  readonly appsConfig: z.output<typeof tokenAppsSchema>;
  /** Device fleets with their registries' devices, validated. */
  readonly fleets: readonly FleetModel[];
}

export interface FleetModel extends FleetClass {
  readonly devices: readonly FleetDevice[];
}

/** Reads a fleet's registry file (path relative to the project); throws with the system's reason. */
export type RegistryReader = (path: string) => string;

/** Parses and validates raw stack config. Throws ConfigError listing every problem. */
export function parseTenantConfig(
  raw: unknown,
  passwords: Readonly<Record<string, unknown>> = {},
  readRegistry?: RegistryReader,
): TenantModel {
  const parsed = tenantConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => ({ key: formatPath(TENANT_KEY, i.path), message: i.message })),
    );
  }
  const issues: ConfigIssue[] = [...validityProblems(parsed.data.certificates, `${TENANT_KEY}.certificates`)];
  const model = buildModel(parsed.data, issues, readRegistry);
  validatePasswords(model, passwords, issues);
  if (issues.length > 0) throw new ConfigError(issues);
  return model;
}

function buildModel(cfg: TenantConfigParsed, issues: ConfigIssue[], readRegistry: RegistryReader | undefined): TenantModel {
  const seen = new Map<string, number>();
  const identities: IdentityModel[] = [];
  cfg.identities.forEach((id, index) => {
    const key = (suffix: string) => `${TENANT_KEY}.identities[${index}]${suffix}`;
    const first = seen.get(id.name);
    if (first !== undefined) {
      issues.push({
        key: key(".name"),
        message: `duplicate identity '${id.name}' (also tenant.identities[${first}]); identity names are unique per tenant`,
      });
      return;
    }
    seen.set(id.name, index);
    if (!isRoleName(id.role)) {
      issues.push({
        key: key(".role"),
        message: `unknown role '${id.role}'; known roles: ${ROLE_NAMES.map((r) => `${r} (${ROLES[r].description})`).join("; ")}`,
      });
      return;
    }
    const role = ROLES[id.role];
    const declared = id.grants;
    const grants = declared ?? role.defaultGrants;
    if (grants === undefined || grants.publish.length + grants.subscribe.length === 0) {
      issues.push({
        key: key(".grants"),
        message: `role ${role.name} has no default grants: declare grants.publish and/or grants.subscribe (MQTT topic filters)`,
      });
      return;
    }
    const values = { identity: id.name, user: id.user, tenant: cfg.name };
    const bound = { publish: [] as TopicFilter[], subscribe: [] as TopicFilter[] };
    let ok = true;
    for (const direction of ["publish", "subscribe"] as const) {
      grants[direction].forEach((text, gi) => {
        const gkey = declared
          ? key(`.grants.${direction}[${gi}]`)
          : `${key(".role")} (default ${direction} grant '${text}')`;
        let filter: TopicFilter;
        try {
          filter = parseTopicFilter(text);
        } catch (e) {
          issues.push({ key: gkey, message: `'${text}': ${(e as Error).message}` });
          ok = false;
          return;
        }
        if (placeholdersOf(filter).includes("user") && id.user === undefined) {
          issues.push({
            key: key(".user"),
            message: `required: grant '${text}' uses {user}; set user to the end-user id this ${id.kind} acts for`,
          });
          ok = false;
          return;
        }
        const b = bindFilter(filter, values);
        const ceiling = role.ceiling[direction].map((c) => bindFilter(c, values));
        if (!ceiling.some((c) => filterWithin(b, c))) {
          issues.push({
            key: gkey,
            message:
              `'${text}' is wider than role ${role.name} allows for ${direction}: it must lie within ` +
              role.ceiling[direction].map(formatFilter).join(" or "),
          });
          ok = false;
          return;
        }
        bound[direction].push(b);
      });
    }
    if (!ok) return;
    const certificate = certificateOf(cfg, id, rabbitUsername(cfg.name, id.name), key, issues);
    if (certificate === null) return;
    // A certificate identity has one client id, its subject DN: RabbitMQ 4.x refuses any other
    // (mqtt.ssl_cert_client_id_from), and on 3.x any other can subscribe to nothing.
    const ids = certificate !== undefined ? [certificate.loginNames.distinguished_name] : undefined;
    if (ids !== undefined && id.limits?.maxClientIds !== undefined) {
      issues.push({
        key: key(".limits.maxClientIds"),
        message: "not for auth: certificate: a certificate identity's only MQTT client id is its certificate's subject DN; remove it",
      });
      return;
    }
    // A key a program sets to undefined is absent: it keeps the tenant's value.
    const own = Object.fromEntries(Object.entries(id.limits ?? {}).filter(([, v]) => v !== undefined));
    const limits = { ...cfg.identityLimits, ...own, ...(ids ? { maxClientIds: 1 } : {}) };
    identities.push({
      name: id.name,
      kind: id.kind,
      role: role.name,
      auth: id.auth,
      ...(id.user !== undefined ? { user: id.user } : {}),
      ...(id.description !== undefined ? { description: id.description } : {}),
      username: rabbitUsername(cfg.name, id.name),
      limits,
      grants: { publish: [...grants.publish], subscribe: [...grants.subscribe] },
      permissions: compilePermissions(bound, ids ?? clientIds(id.name, limits.maxClientIds)),
      ...(certificate !== undefined ? { certificate } : {}),
    });
  });

  const portMappings: Record<string, string> = {};
  cfg.mqttPorts.forEach((port, i) => {
    if (String(port) in portMappings) {
      issues.push({ key: `${TENANT_KEY}.mqttPorts[${i}]`, message: `port ${port} is listed twice` });
    }
    const standard = STANDARD_BROKER_PORTS[port];
    if (standard !== undefined) {
      issues.push({
        key: `${TENANT_KEY}.mqttPorts[${i}]`,
        message: `port ${port} is RabbitMQ's standard ${standard} port, shared by every tenant; a dedicated port must be a listener of its own`,
      });
    }
    portMappings[String(port)] = cfg.name;
  });

  const q = cfg.subscriptionQueues;
  return {
    name: cfg.name,
    vhost: cfg.name,
    description: cfg.description,
    tags: [...new Set(cfg.tags)],
    protect: cfg.protect,
    limits: cfg.limits,
    ...(q
      ? {
          subscriptionQueues: {
            ...(q.expiresSeconds !== undefined ? { expiresMs: q.expiresSeconds * 1000 } : {}),
            ...(q.maxLength !== undefined ? { maxLength: q.maxLength } : {}),
            ...(q.maxLengthBytes !== undefined ? { maxLengthBytes: q.maxLengthBytes } : {}),
            ...(q.overflow !== undefined ? { overflow: q.overflow } : {}),
            priority: q.priority,
          },
        }
      : {}),
    portMappings,
    certificates: { key: cfg.certificates.key, validityHours: cfg.certificates.validityHours, earlyRenewalHours: cfg.certificates.earlyRenewalHours },
    identities,
    apps: buildTokenApps(cfg.apps, `${TENANT_KEY}.apps`, issues),
    appsConfig: cfg.apps,
    fleets: buildFleets(cfg, identities, issues, readRegistry),
  };
}

function buildFleets(cfg: TenantConfigParsed, identities: readonly IdentityModel[], issues: ConfigIssue[], readRegistry: RegistryReader | undefined): FleetModel[] {
  const taken = new Map<string, string>(identities.map((id, i) => [id.name, `identity tenant.identities[${i}]`]));
  const fleetNames = new Map<string, number>();
  const fleets: FleetModel[] = [];
  cfg.fleets.forEach((f, index) => {
    const key = `${TENANT_KEY}.fleets[${index}]`;
    const first = fleetNames.get(f.name);
    if (first !== undefined) {
      issues.push({ key: `${key}.name`, message: `duplicate fleet '${f.name}' (also ${TENANT_KEY}.fleets[${first}])` });
      return;
    }
    fleetNames.set(f.name, index);
    const cls = compileFleetClass(cfg.name, f, key, issues, { organization: cfg.name, ...cfg.certificates.subject });
    if (cls === undefined) return;
    if (cls.auth === "certificate" && cfg.mqttPorts.length === 0) {
      issues.push({
        key: `${key}.auth`,
        message:
          "a certificate fleet's devices log in on the tenant's own MQTT-over-TLS port, mapped to its vhost by one " +
          "mqtt_port_to_vhost_mapping entry (not one mqtt_default_vhosts entry per device): set tenant.mqttPorts to a port of the platform's listeners.tenantMqtts",
      });
      return;
    }
    if (readRegistry === undefined) {
      issues.push({ key: `${key}.registry`, message: "registry files are read by the tenant stack program; none was given" });
      return;
    }
    let text: string;
    try {
      text = readRegistry(f.registry);
    } catch (e) {
      issues.push({ key: `${key}.registry`, message: `cannot read ${f.registry}: ${(e as Error).message}` });
      return;
    }
    const devices = parseRegistry(text, f.registry, cls, taken, issues);
    for (const d of devices) taken.set(d.name, `a device of fleet ${f.name}`);
    fleets.push({ ...cls, devices });
  });
  return fleets;
}

/**
 * The certificate of an identity: undefined for password identities, null when invalid (issues
 * recorded). The subject is the tenant's defaults, then the identity's own fields, with the CN set
 * to the identity's user name.
 */
function certificateOf(
  cfg: TenantConfigParsed,
  id: TenantConfigParsed["identities"][number],
  username: string,
  key: (suffix: string) => string,
  issues: ConfigIssue[],
): IdentityModel["certificate"] | null | undefined {
  if (id.auth !== "certificate") {
    if (id.certificate !== undefined) {
      issues.push({ key: key(".certificate"), message: "only for auth: certificate; remove it or set auth: certificate" });
      return null;
    }
    return undefined;
  }
  const fields: SubjectFields = { organization: cfg.name, ...cfg.certificates.subject, ...id.certificate?.subject };
  const { commonName: _never, streetAddresses: _street, postalCode: _postal, ...rest } = fields;
  const subject: CertificateSubject = {
    ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)),
    commonName: username,
  };
  const problems = subjectProblems(subject, "distinguished_name");
  if (problems.length > 0) {
    issues.push(...problems.map((message) => ({ key: key(".certificate.subject"), message })));
    return null;
  }
  const dn = brokerLoginName(subject, "distinguished_name");
  if (!clientIdFitsQueueNames(dn)) {
    issues.push({
      key: key(".certificate.subject"),
      message:
        `the subject ${JSON.stringify(dn)} is too long: it is the device's MQTT client id, and its session queue ` +
        `(${MQTT_SUBSCRIPTION_QUEUE_PREFIX}<client id>qos1) must fit RabbitMQ's ${MAX_QUEUE_NAME_BYTES}-byte queue names; shorten the subject fields`,
    });
    return null;
  }
  return {
    subject,
    loginNames: { distinguished_name: dn, common_name: brokerLoginName(subject, "common_name") },
  };
}

/** What is wrong with an identity's password value (its length), never echoing it; undefined when fine. */
export function passwordIssue(name: string, value: unknown): ConfigIssue | undefined {
  const [min, max] = LIMIT_RANGES.passwordLength;
  if (typeof value === "string" && value.length >= min && value.length <= max) return undefined;
  // Never echo the value: it is a secret.
  return { key: `${IDENTITY_PASSWORDS_KEY}.${name}`, message: `must be a string of ${min}-${max} characters (set it with --secret)` };
}

function validatePasswords(
  model: TenantModel,
  passwords: Readonly<Record<string, unknown>>,
  issues: ConfigIssue[],
): void {
  const byName = new Map(model.identities.map((i) => [i.name, i]));
  for (const [name, value] of Object.entries(passwords)) {
    const key = `${IDENTITY_PASSWORDS_KEY}.${name}`;
    const identity = byName.get(name);
    if (identity === undefined) {
      issues.push({ key, message: `no identity '${name}' in tenant.identities; remove it or fix the name` });
    } else if (identity.auth !== "password") {
      issues.push({ key, message: `identity '${name}' uses ${String(identity.auth)} auth and takes no password` });
    } else {
      const issue = passwordIssue(name, value);
      if (issue !== undefined) issues.push(issue);
    }
  }
}
