/**
 * This stack's entries in a broker-wide MQTT mapping (`mqtt_default_vhosts` or
 * `mqtt_port_to_vhost_mapping`). Each is one JSON object that every tenant stack shares, and the
 * management API can only replace it whole, so a read-modify-write from two stacks at once would
 * lose one of them. Every change therefore runs under a broker-side lock:
 *
 * - The lock is a durable classic queue in vhost `/` (LOCK_VHOST, the same for every stack) whose
 *   `x-max-length` argument is a random token. Declaring a queue is atomic in the broker, and
 *   redeclaring it with a different `x-max-length` fails ("inequivalent arg", HTTP 400), so exactly
 *   one holder succeeds. The queue never holds messages; the argument is only the token.
 * - `x-expires` makes the lock a lease: if a holder dies, the broker deletes the queue after
 *   LOCK_LEASE_MS and others proceed. Every request inside the locked section has a timeout well
 *   below the lease, and the holder checks it still owns the lock right before writing.
 * - After writing, the holder reads the object back and checks its entries (guards against writers
 *   that bypass the lock, e.g. an operator with rabbitmqctl).
 * Keys of other stacks are written back exactly as read, whatever their values.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  checkMappingEntry,
  lockDeclarationOutcome,
  ownedView,
  planMappingChange,
  type MappingEntries,
  type MqttMappingParameter,
} from "../../core/mqtt-mappings";
import { managementCall, managementRequest, seg, type ManagementConnection } from "./api";
import { SECRET_OUTPUTS } from "../../core/secret-outputs";

export const LOCK_VHOST = "/";
export const LOCK_LEASE_MS = 60_000;
export const LOCK_WAIT_MS = 180_000;
/** Per request inside the locked section: far below the lease. */
const LOCKED_REQUEST_TIMEOUT_MS = 10_000;

export interface MqttVhostMappingProps {
  readonly connection: ManagementConnection;
  readonly parameter: MqttMappingParameter;
  readonly entries: MappingEntries;
  /** Port mappings only: refuse ports without an MQTT listener (default true). */
  readonly verifyListeners?: boolean;
}

function lockQueuePath(p: MqttVhostMappingProps): string {
  return `queues/${seg(LOCK_VHOST)}/${seg(`rabbitmq-mqtt.lock.${p.parameter}`)}`;
}

function reasonOf(body: unknown): string {
  if (typeof body === "object" && body !== null && "reason" in body) return String((body).reason);
  return typeof body === "string" ? body.slice(0, 300) : "";
}

async function acquireLock(p: MqttVhostMappingProps): Promise<number> {
  // 1 .. 2^31-1: a token no other holder will pick in practice (collision needs the same value).
  const token = 1 + Math.floor(Math.random() * 2_147_483_646);
  const body = {
    durable: true,
    auto_delete: false,
    // classic: a vhost whose default queue type is stream or quorum would refuse x-expires.
    arguments: { "x-queue-type": "classic", "x-max-length": token, "x-expires": LOCK_LEASE_MS },
  };
  const deadline = Date.now() + LOCK_WAIT_MS;
  let delay = 20;
  for (;;) {
    const res = await managementRequest(p.connection, "PUT", lockQueuePath(p), body, LOCKED_REQUEST_TIMEOUT_MS);
    const reason = reasonOf(res.body);
    const outcome = lockDeclarationOutcome(res.status, reason);
    if (outcome === "taken") return token;
    if (outcome === "fatal") {
      throw new Error(
        `cannot take the ${p.parameter} lock (a queue in vhost '${LOCK_VHOST}'): management API answered ${res.status}` +
          (reason ? `: ${reason}` : "") +
          (res.status === 404 ? `; vhost '${LOCK_VHOST}' must exist and the admin user needs permissions there` : ""),
      );
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${LOCK_WAIT_MS / 1000}s waiting for the ${p.parameter} lock held by another stack; ` +
          `if no other pulumi up is running, the lock expires by itself within ${LOCK_LEASE_MS / 1000}s`,
      );
    }
    await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
    delay = Math.min(delay * 2, 1000);
  }
}

async function lockToken(p: MqttVhostMappingProps): Promise<unknown> {
  const res = await managementRequest(p.connection, "GET", lockQueuePath(p), undefined, LOCKED_REQUEST_TIMEOUT_MS);
  return res.status === 200 ? (res.body as { arguments?: Record<string, unknown> } | undefined)?.arguments?.["x-max-length"] : undefined;
}

async function releaseLock(p: MqttVhostMappingProps, token: number): Promise<void> {
  // Only delete our own lock: after a lease ran out, the queue may be another holder's.
  if ((await lockToken(p)) === token) {
    await managementRequest(p.connection, "DELETE", lockQueuePath(p), undefined, LOCKED_REQUEST_TIMEOUT_MS);
  }
}

/** The whole current object, values as they are (other stacks' keys are not ours to judge). */
async function readParameter(p: MqttVhostMappingProps): Promise<Record<string, unknown>> {
  const res = await managementCall(p.connection, "GET", `global-parameters/${seg(p.parameter)}`, undefined, [200, 404], LOCKED_REQUEST_TIMEOUT_MS);
  if (res.status === 404) return {};
  const value = (res.body as { value?: unknown }).value;
  // The broker answers an empty object as [] (an empty Erlang proplist).
  if (Array.isArray(value) && value.length === 0) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(
      `global parameter ${p.parameter} is not a JSON object (found ${Array.isArray(value) ? "an array" : typeof value}); ` +
        "the MQTT plugin cannot use it either: fix or delete it by hand, then run pulumi up again",
    );
  }
  return value as Record<string, unknown>;
}

/**
 * A port mapping only makes sense for a port where the broker runs an MQTT listener (plain or TLS):
 * a Web MQTT or AMQP port, or one nobody listens on, is refused before anything is written.
 */
async function verifyMqttListeners(p: MqttVhostMappingProps, ports: readonly string[]): Promise<void> {
  if (p.parameter !== "mqtt_port_to_vhost_mapping" || ports.length === 0 || p.verifyListeners === false) return;
  const res = await managementCall(p.connection, "GET", "overview", undefined, [200], LOCKED_REQUEST_TIMEOUT_MS);
  const listeners = ((res.body as { listeners?: unknown }).listeners ?? []) as { protocol?: unknown; port?: unknown }[];
  const mqttPorts = new Set(listeners.filter((l) => l.protocol === "mqtt" || l.protocol === "mqtt/ssl").map((l) => String(l.port)));
  const missing = ports.filter((port) => !mqttPorts.has(port));
  if (missing.length > 0) {
    throw new Error(
      `mqtt_port_to_vhost_mapping: no MQTT listener on port ${missing.join(", ")} ` +
        `(the broker's MQTT listeners: ${[...mqttPorts].join(", ") || "none"}); a tenant's dedicated port must be an MQTT listener of the platform`,
    );
  }
}

/** Moves this stack's entries from `owned` to `desired` under the lock. */
export async function applyMappingChange(
  p: MqttVhostMappingProps,
  owned: MappingEntries,
  desired: MappingEntries,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const token = await acquireLock(p);
    try {
      const current = await readParameter(p);
      const plan = planMappingChange(current, owned, desired);
      if (plan.conflicts.length > 0) {
        throw new Error(
          `${p.parameter}: ` +
            plan.conflicts
              .map(
                (c) =>
                  `entry ${JSON.stringify(c.key)} already maps to vhost ` +
                  `${typeof c.current === "string" ? `'${c.current}'` : JSON.stringify(c.current)}, not '${c.desired}' (another stack owns it)`,
              )
              .join("; "),
        );
      }
      if (plan.changed) {
        if ((await lockToken(p)) !== token) throw new Error(`${p.parameter}: lost the lock before writing (lease expired); nothing written, run pulumi up again`);
        await managementCall(
          p.connection,
          "PUT",
          `global-parameters/${seg(p.parameter)}`,
          { name: p.parameter, component: "global", value: plan.next },
          [200, 201, 204],
          LOCKED_REQUEST_TIMEOUT_MS,
        );
      }
      const after = await readParameter(p);
      const desiredOk = Object.entries(desired).every(([k, v]) => after[k] === v);
      const removedOk = Object.entries(owned).every(([k, v]) => k in desired || after[k] !== v);
      if (desiredOk && removedOk) return;
      if (attempt >= 5) {
        throw new Error(`${p.parameter}: entries did not stick after ${attempt} attempts; something is writing it without the lock`);
      }
    } finally {
      await releaseLock(p, token);
    }
  }
}

function validateProps(p: MqttVhostMappingProps): string[] {
  return Object.entries(p.entries ?? {}).flatMap(([k, v]) => {
    const problem = checkMappingEntry(p.parameter, k, v);
    return problem === undefined ? [] : [problem];
  });
}

export const mqttVhostMappingProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: MqttVhostMappingProps, news: MqttVhostMappingProps) {
    return { inputs: news, failures: validateProps(news).map((reason) => ({ property: "entries", reason })) };
  },
  async diff(_id: string, olds: MqttVhostMappingProps, news: MqttVhostMappingProps) {
    const replaces = olds.parameter !== news.parameter ? ["parameter"] : [];
    const sameEntries =
      Object.keys(olds.entries).length === Object.keys(news.entries).length &&
      Object.entries(news.entries).every(([k, v]) => olds.entries[k] === v);
    const changes = replaces.length > 0 || !sameEntries || JSON.stringify(olds.connection) !== JSON.stringify(news.connection);
    return { changes, replaces, deleteBeforeReplace: true };
  },
  async create(inputs: MqttVhostMappingProps) {
    await verifyMqttListeners(inputs, Object.keys(inputs.entries));
    await applyMappingChange(inputs, {}, inputs.entries);
    return { id: `${inputs.parameter}/${Object.keys(inputs.entries).sort().join(",")}`.slice(0, 200), outs: inputs };
  },
  async read(id: string, props: MqttVhostMappingProps) {
    // Drift: the state shows what our keys hold now; a missing or changed entry makes the next
    // `pulumi up` write it back.
    const current = await readParameter(props);
    return { id, props: { ...props, entries: ownedView(current, Object.keys(props.entries)) } };
  },
  async update(_id: string, olds: MqttVhostMappingProps, news: MqttVhostMappingProps) {
    await verifyMqttListeners(news, Object.keys(news.entries).filter((k) => olds.entries[k] !== news.entries[k]));
    await applyMappingChange(news, olds.entries, news.entries);
    return { outs: news };
  },
  async delete(_id: string, props: MqttVhostMappingProps) {
    await applyMappingChange(props, props.entries, {});
  },
};

export interface MqttVhostMappingArgs {
  connection: pulumi.Input<ManagementConnection>;
  parameter: MqttMappingParameter;
  entries: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

export class MqttVhostMapping extends pulumi.dynamic.Resource {
  declare public readonly entries: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: MqttVhostMappingArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      mqttVhostMappingProvider,
      name,
      { connection: args.connection, parameter: args.parameter, entries: args.entries },
      { ...opts, additionalSecretOutputs: [...SECRET_OUTPUTS.MqttVhostMapping] },
      "rabbitmq-mqtt",
      "MqttVhostMapping",
    );
  }
}
