/**
 * `DeviceFleet`: one Pulumi resource for a whole fleet of devices (core/fleets.ts), whatever its
 * size, applied to the broker in bulk and only where something changed.
 *
 * - Inputs: the class's template (core/fleet-template.ts), `members` (device name -> fingerprint,
 *   not secret: `pulumi preview` shows per device what is added, changed or removed) and
 *   `credentials` (the devices' password hashes and users, secret).
 * - create: the devices' users, permissions and topic permissions by definitions import
 *   (IMPORT_CHUNK devices a call), their user limits, and bindings that an earlier device of the
 *   same name left on its queues and that its grants no longer allow are removed.
 * - update: added and changed devices imported; changed devices' connections closed (a new
 *   password or user takes effect at once); removed devices' connections closed, users deleted
 *   (bulk) and queues deleted. Adding one device: 1 import + 1 call per user limit; removing one:
 *   1 close + 1 bulk delete + 3 queue deletes. A new class (grants, limits) re-imports every device,
 *   trims bindings and closes every device's connections, as IdentitySessions does for identities.
 * - delete: every device's connections, users and queues.
 * - certificate fleets: the devices' CSRs are signed with the tenant's issuer here, in bulk
 *   (core/fleet-certificates.ts): all at create; at update those of added and changed devices, those
 *   inside their renewal window (diff reports a change once one is) and all of them when the
 *   issuer, the subject or the validity changes. The users have an empty password hash: they log in
 *   by certificate only. Renewal keeps the device's key and closes nothing: the old certificate
 *   stays valid until it expires.
 * Every call goes through the bounded, retried client (./api).
 */
import * as pulumi from "@pulumi/pulumi";
import type { CertificateSubject } from "../../core/dn";
import { loadIssuer, parseCsr, renewalDue, signDeviceCertificate } from "../../core/fleet-certificates";
import { deviceQueues, deviceSubject, deviceUsername, renderDevice, type FleetTemplate } from "../../core/fleet-template";
import { managementCall, seg, type ManagementConnection } from "./api";
import { SECRET_OUTPUTS } from "../../core/secret-outputs";

/** A password device's hash, or a certificate device's CSR (PEM). */
export interface DeviceCredential {
  readonly passwordHash?: string;
  readonly csr?: string;
  readonly user?: string;
}

export interface FleetCertificateSettings {
  /** The subject of every device's certificate, DEVICE_TOKEN in its CN. */
  readonly subject: CertificateSubject;
  readonly validityHours: number;
  readonly earlyRenewalHours: number;
}

export interface FleetIssuerInput {
  readonly certPem: string;
  /** Secret. */
  readonly privateKeyPem: string;
  /** The issuer's own chain up to (not including) the root; empty for the root. */
  readonly chainPem: string;
}

export interface IssuedDeviceCertificate {
  readonly pem: string;
  /** ISO 8601. */
  readonly notAfter: string;
}

export interface DeviceFleetProps {
  readonly connection: ManagementConnection;
  readonly vhost: string;
  readonly fleet: string;
  readonly template: FleetTemplate;
  /** User limits of every device, by RabbitMQ's names (max-connections, max-channels). */
  readonly limits: Readonly<Record<string, number>>;
  readonly members: Readonly<Record<string, string>>;
  readonly credentials: Readonly<Record<string, DeviceCredential>>;
  /** e.g. "10000 devices (registry fleets/acme-thermostats.jsonl)". */
  readonly summary: string;
  /** Certificate fleets only. */
  readonly certificate?: FleetCertificateSettings;
  /** Certificate fleets only: the tenant's issuer (its key is a secret). */
  readonly issuer?: FleetIssuerInput;
}

/** What the resource holds after an apply. */
export interface DeviceFleetState extends DeviceFleetProps {
  /** Certificate fleets: each device's certificate (leaf only; `issuerChainPem` follows it). */
  readonly certificates?: Readonly<Record<string, IssuedDeviceCertificate>>;
}

/** Devices per definitions import: about 1 KB each, far below the management body limit. */
const IMPORT_CHUNK = 2000;
const USER_CHUNK = 1000;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function importDevices(p: DeviceFleetProps, names: readonly string[]): Promise<void> {
  for (const part of chunks(names, IMPORT_CHUNK)) {
    const devices = part.map((n) => {
      const c = p.credentials[n];
      if (c === undefined) throw new Error(`fleet ${p.fleet}: no credentials for device ${n}`);
      return { c, d: renderDevice(p.template, n, c.user) };
    });
    await managementCall(p.connection, "POST", "definitions", {
      // A certificate device: an empty hash, which no password matches (see CertificateUser).
      users: devices.map(({ c, d }) => ({ name: d.username, password_hash: c.passwordHash ?? "", hashing_algorithm: "rabbit_password_hashing_sha256", tags: [] })),
      permissions: devices.map(({ d }) => ({ user: d.username, vhost: p.vhost, configure: d.configure, write: d.write, read: d.read })),
      topic_permissions: devices.map(({ d }) => ({ user: d.username, vhost: p.vhost, exchange: d.exchange, write: d.topicWrite, read: d.topicRead })),
    });
  }
  // 3.10 ignores `limits` in an imported user: set them one by one (bounded by the client's slots).
  const limits = Object.entries(p.limits);
  if (limits.length === 0) return;
  for (const part of chunks(names, USER_CHUNK)) {
    await Promise.all(
      part.flatMap((n) => {
        const username = usernameOf(p, n);
        return limits.map(([k, v]) => managementCall(p.connection, "PUT", `user-limits/${seg(username)}/${seg(k)}`, { value: v }));
      }),
    );
  }
}

async function forEachBounded(names: readonly string[], fn: (name: string) => Promise<unknown>): Promise<void> {
  for (const part of chunks(names, USER_CHUNK)) await Promise.all(part.map(fn));
}

const usernameOf = (p: Pick<DeviceFleetProps, "template">, name: string) => deviceUsername(p.template, name);

/**
 * Above this many devices, connections and queues are found by one listing of the vhost instead
 * of one call per device (a fleet of 10,000 would otherwise cost 40,000 calls to delete).
 */
const PER_DEVICE_CALLS_UP_TO = 50;

async function closeConnections(p: DeviceFleetProps, names: readonly string[]): Promise<void> {
  if (names.length <= PER_DEVICE_CALLS_UP_TO) {
    // By user name, through connection tracking: immediate, unlike the stats-based listing.
    await forEachBounded(names, (n) => managementCall(p.connection, "DELETE", `connections/username/${seg(usernameOf(p, n))}`, undefined, [200, 204, 404]));
    return;
  }
  const users = new Set(names.map((n) => usernameOf(p, n)));
  const res = await managementCall(p.connection, "GET", `vhosts/${seg(p.vhost)}/connections?columns=name,user`);
  const conns = Array.isArray(res.body) ? (res.body as { name: string; user: string }[]) : [];
  await Promise.all(conns.filter((c) => users.has(c.user)).map((c) => managementCall(p.connection, "DELETE", `connections/${seg(c.name)}`, undefined, [200, 204, 404])));
}

async function deleteUsers(p: DeviceFleetProps, names: readonly string[]): Promise<void> {
  for (const part of chunks(names, USER_CHUNK)) {
    const users = part.map((n) => usernameOf(p, n));
    const res = await managementCall(p.connection, "POST", "users/bulk-delete", { users }, [200, 204, 400]);
    // 3.10 stops at the first user that is already gone (400): delete the rest one by one.
    if (res.status === 400) await forEachBounded(users, (u) => managementCall(p.connection, "DELETE", `users/${seg(u)}`, undefined, [200, 204, 404]));
  }
}

async function deleteQueues(p: DeviceFleetProps, names: readonly string[]): Promise<void> {
  let queues = names.flatMap((n) => deviceQueues(p.template, n));
  if (names.length > PER_DEVICE_CALLS_UP_TO) {
    const res = await managementCall(p.connection, "GET", `queues/${seg(p.vhost)}?columns=name`);
    const existing = new Set(Array.isArray(res.body) ? (res.body as { name: string }[]).map((q) => q.name) : []);
    queues = queues.filter((q) => existing.has(q));
  }
  await forEachBounded(queues, (q) => managementCall(p.connection, "DELETE", `queues/${seg(p.vhost)}/${seg(q)}`, undefined, [200, 204, 404]));
}

/** Removes bindings on the devices' queues that their read grants do not allow (one listing for the vhost). */
async function trimBindings(p: DeviceFleetProps): Promise<number> {
  const owner = new Map<string, RegExp>();
  for (const [n, c] of Object.entries(p.credentials)) {
    const d = renderDevice(p.template, n, c.user);
    const read = new RegExp(d.topicRead);
    for (const q of d.queues) owner.set(q, read);
  }
  const res = await managementCall(p.connection, "GET", `bindings/${seg(p.vhost)}`);
  const bindings = Array.isArray(res.body) ? (res.body as { source: string; destination: string; destination_type: string; routing_key: string; properties_key: string }[]) : [];
  const stale = bindings.filter((b) => b.destination_type === "queue" && b.source === p.template.exchange && owner.get(b.destination)?.test(b.routing_key) === false);
  await Promise.all(
    stale.map((b) =>
      managementCall(p.connection, "DELETE", `bindings/${seg(p.vhost)}/e/${seg(b.source)}/q/${seg(b.destination)}/${seg(b.properties_key)}`, undefined, [200, 204, 404]),
    ),
  );
  return stale.length;
}

/**
 * JSON with object keys sorted: the engine hands back old state with keys in its own order (a
 * protobuf Struct sorts them), so insertion order must not count as a change.
 */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

const classOf = (p: DeviceFleetProps) => canonical([p.template, p.limits]);
/** What every certificate depends on besides the device's CSR. */
const signingOf = (p: DeviceFleetProps) => canonical([p.certificate ?? null, p.issuer?.certPem ?? null]);

/** Signs the CSRs of `names`, in one pass with the issuer read once. */
function signDevices(p: DeviceFleetProps, names: readonly string[], now: Date): Record<string, IssuedDeviceCertificate> {
  const settings = p.certificate;
  if (settings === undefined || p.issuer === undefined) throw new Error(`fleet ${p.fleet}: a certificate fleet needs the tenant's issuer and certificate settings`);
  const issuer = loadIssuer(p.issuer);
  const notAfter = new Date(now.getTime() + settings.validityHours * 3_600_000);
  const out: Record<string, IssuedDeviceCertificate> = {};
  for (const n of names) {
    const csr = p.credentials[n]?.csr;
    if (csr === undefined) throw new Error(`fleet ${p.fleet}: no CSR for device ${n}`);
    let spki: Buffer;
    try {
      spki = parseCsr(csr).spki;
    } catch (e) {
      throw new Error(`fleet ${p.fleet}: device ${n}: the CSR ${(e as Error).message}`);
    }
    out[n] = { pem: signDeviceCertificate(issuer, { spki, subject: deviceSubject(settings.subject, n), notBefore: now, notAfter }), notAfter: notAfter.toISOString() };
  }
  return out;
}

/** Devices whose certificate is missing or inside its renewal window. */
function dueForRenewal(state: DeviceFleetState, now: Date): string[] {
  if (state.certificate === undefined) return [];
  const certs = state.certificates ?? {};
  return Object.keys(state.members).filter((n) => {
    const c = certs[n];
    return c === undefined || renewalDue(c.notAfter, now, state.certificate!.earlyRenewalHours);
  });
}

/** The certificates after an update: kept, or signed for `resign` (all of them when the signing changed). */
function certificatesAfter(olds: DeviceFleetState, news: DeviceFleetProps, resign: readonly string[], now: Date): Pick<DeviceFleetState, "certificates"> {
  if (news.certificate === undefined) return {};
  const all = Object.keys(news.members);
  const kept: Record<string, IssuedDeviceCertificate> = {};
  let todo: string[];
  if (olds.certificate === undefined || signingOf(olds) !== signingOf(news)) {
    todo = all;
  } else {
    const again = new Set([...resign, ...dueForRenewal({ ...olds, members: news.members }, now)]);
    for (const n of all) {
      const c = olds.certificates?.[n];
      if (c !== undefined && !again.has(n)) kept[n] = c;
    }
    todo = all.filter((n) => !(n in kept));
  }
  return { certificates: { ...kept, ...signDevices(news, todo, now) } };
}

export const deviceFleetProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: DeviceFleetState, news: DeviceFleetProps) {
    const replaces = olds.vhost !== news.vhost || olds.fleet !== news.fleet || (olds.certificate === undefined) !== (news.certificate === undefined) ? ["vhost"] : [];
    const changes =
      replaces.length > 0 ||
      classOf(olds) !== classOf(news) ||
      signingOf(olds) !== signingOf(news) ||
      canonical(olds.members) !== canonical(news.members) ||
      canonical(olds.connection) !== canonical(news.connection) ||
      // Renewal is a fleet operation: the next up after a certificate enters its window signs it again.
      dueForRenewal(olds, new Date()).length > 0;
    return { changes, replaces, deleteBeforeReplace: true };
  },
  async create(inputs: DeviceFleetProps) {
    const all = Object.keys(inputs.members);
    // Signed first: a CSR the issuer cannot sign fails the create before the broker is touched.
    const certificates = inputs.certificate !== undefined ? { certificates: signDevices(inputs, all, new Date()) } : {};
    await importDevices(inputs, all);
    await trimBindings(inputs);
    return { id: `${inputs.vhost}/${inputs.fleet}`, outs: { ...inputs, ...certificates } };
  },
  async update(_id: string, olds: DeviceFleetState, news: DeviceFleetProps) {
    const addedOrChanged = Object.keys(news.members).filter((n) => olds.members[n] !== news.members[n]);
    const certificates = certificatesAfter(olds, news, addedOrChanged, new Date());
    const removed = Object.keys(olds.members).filter((n) => !(n in news.members));
    if (removed.length > 0) {
      await closeConnections(olds, removed);
      await deleteUsers(olds, removed);
      await deleteQueues(olds, removed);
    }
    if (classOf(olds) !== classOf(news)) {
      const all = Object.keys(news.members);
      await importDevices(news, all);
      const dropped = Object.keys(olds.limits).filter((k) => !(k in news.limits));
      await forEachBounded(all, async (n) => {
        for (const k of dropped) await managementCall(news.connection, "DELETE", `user-limits/${seg(usernameOf(news, n))}/${seg(k)}`, undefined, [200, 204, 404]);
      });
      await trimBindings(news);
      await closeConnections(news, all);
      return { outs: { ...news, ...certificates } };
    }
    const added = Object.keys(news.members).filter((n) => !(n in olds.members));
    const changed = Object.keys(news.members).filter((n) => n in olds.members && olds.members[n] !== news.members[n]);
    if (added.length + changed.length > 0) await importDevices(news, [...added, ...changed]);
    if (changed.length > 0) await closeConnections(news, changed);
    return { outs: { ...news, ...certificates } };
  },
  async delete(_id: string, props: DeviceFleetProps) {
    const all = Object.keys(props.members);
    await closeConnections(props, all);
    await deleteUsers(props, all);
    await deleteQueues(props, all);
  },
};

export interface DeviceFleetArgs {
  connection: pulumi.Input<ManagementConnection>;
  vhost: pulumi.Input<string>;
  fleet: string;
  /** A certificate fleet's username follows the broker's ssl_cert_login_from, known when the platform is. */
  template: pulumi.Input<FleetTemplate>;
  limits: Record<string, number>;
  members: Record<string, string>;
  credentials: pulumi.Input<Record<string, DeviceCredential>>;
  summary: string;
  certificate?: FleetCertificateSettings;
  /** Secret. */
  issuer?: pulumi.Input<FleetIssuerInput>;
}

export class DeviceFleet extends pulumi.dynamic.Resource {
  /** Certificate fleets: device name -> its certificate (public). */
  declare public readonly certificates: pulumi.Output<Record<string, IssuedDeviceCertificate> | undefined>;

  constructor(name: string, args: DeviceFleetArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      deviceFleetProvider,
      name,
      { ...args, credentials: pulumi.secret(args.credentials), ...(args.issuer !== undefined ? { issuer: pulumi.secret(args.issuer) } : {}), certificates: undefined },
      { ...opts, additionalSecretOutputs: [...SECRET_OUTPUTS.DeviceFleet] },
      "rabbitmq-mqtt",
      "DeviceFleet",
    );
  }
}
