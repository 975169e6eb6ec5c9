/**
 * Faults on the three-node `dev` cluster on Docker (E2E_CLUSTER=1): a node killed, a node
 * restarted, a node cut off its network for 20 s and for 120 s (past net_ticktime), and every
 * node restarted one by one. During each, a device publishes QoS 1 messages through a surviving
 * node and a service holds a persistent session (clean session false) subscribed to them. After
 * each fault:
 * - the cluster heals: every container healthy, every node running with no partition and taking
 *   an MQTT login (after the 120 s cut, when a node logged RabbitMQ's dist_info crash, only after
 *   the README's remedy, which the test applies and reports);
 * - the subscriber, whose node went away, reconnects through a surviving node and finds its
 *   session (session present) and its subscription, without subscribing again;
 * - every message the broker acknowledged to the publisher (PUBACK) is delivered: none lost
 *   (after a cut, possibly only once the subscriber reconnects: README, Faults).
 * Messages that were not acknowledged may or may not arrive; duplicates are allowed (QoS 1).
 */
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { versionAtLeast } from "../../../core/broker-baseline";
import { applyStack } from "../../support/apply-stack";
import { HOST, sleep } from "../../support/clients";
import { dockerApi, dockerCall, dockerExec } from "../../support/docker-engine";
import { adminMqttLoginRefusal, type BrokerInfo } from "../../support/broker";
import { adminApi } from "../../support/management";
import type { StackRunResult } from "../../support/run-stack";

const docker = inject("docker");
const nodes: BrokerInfo[] = [inject("broker"), ...inject("peers")];
const PLATFORM_REF = "organization/rabbitmq-mqtt/dev";
const TENANT = "fleet";
const TOPIC = "activity/u-1/reading";

let fleet: StackRunResult;
const pass = (name: string) => (fleet.outputs["identityPasswords"] as Record<string, string>)[name]!;

interface Session {
  client: MqttClient;
  node: number;
  sessionPresent: boolean;
}

type OnMessage = (payload: string) => void;

/**
 * Connects to node `node`'s published MQTT port; rejects if refused or closed before CONNACK.
 * `onMessage` listens from the start: a persistent session's queued messages can arrive in the same
 * read as the CONNACK, and mqtt.js acknowledges them whether or not anyone listens.
 */
function connect(node: number, identity: string, clientId: string, clean: boolean, connectTimeout = 5000, onMessage?: OnMessage): Promise<Session> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({
      host: HOST,
      port: nodes[node]!.mqttPort,
      clientId,
      username: `${TENANT}:${identity}@${TENANT}`,
      password: pass(identity),
      clean,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout,
      // Dead peers (a node cut off) are noticed in seconds, not the default minute.
      keepalive: 5,
      resubscribe: false,
    });
    if (onMessage !== undefined) client.on("message", (_topic, payload) => onMessage(payload.toString()));
    client.once("connect", (packet) => resolve({ client, node, sessionPresent: packet.sessionPresent }));
    client.once("error", (err) => {
      client.end(true);
      reject(err);
    });
    client.once("close", () => reject(new Error(`closed before CONNACK (node ${node})`)));
  });
}

/** Tries every node from `start` on, skipping `avoid`, until one accepts. */
async function connectAny(
  start: number,
  avoid: ReadonlySet<number>,
  identity: string,
  clientId: string,
  clean: boolean,
  onMessage?: OnMessage,
  timeoutMs = 120_000,
): Promise<Session> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let i = start; Date.now() < deadline; i++) {
    const node = i % nodes.length;
    if (avoid.has(node)) continue;
    try {
      return await connect(node, identity, clientId, clean, 5000, onMessage);
    } catch (err) {
      lastError = err;
      await sleep(500);
    }
  }
  throw new Error(`no node accepted ${clientId}: ${String(lastError)}`);
}

/** The end of every node's log, printed when the cluster does not heal: CI keeps no container. */
async function logNodeTails(lines = 80): Promise<void> {
  for (const c of docker.containers) {
    const r = await dockerExec(docker.socketPath, c, ["sh", "-c", `tail -n ${lines} /var/log/rabbitmq/*.log`]).catch((err: unknown) => ({ stdout: "", stderr: String(err) }));
    console.log(`[faults] ${c}: the last ${lines} lines of its log\n${r.stdout}${r.stderr}`);
  }
}

/** Node `i`'s whole log file, read inside its container. */
async function nodeLog(i: number): Promise<string> {
  const r = await dockerExec(docker.socketPath, container(i), ["sh", "-c", "cat /var/log/rabbitmq/rabbit@*.log"]);
  if (r.code !== 0) throw new Error(`reading ${container(i)}'s log: ${r.stderr}`);
  return r.stdout;
}

/**
 * RabbitMQ's crash after a node comes back from a long cut (README, Faults): rabbit_net:dist_info
 * finds two distribution sockets to one peer (the cut one not yet closed) and crashes the
 * management agent's statistics process. When that happens while the paused node's rabbit app
 * restarts, the start fails and nothing retries (rabbit_node_monitor logs
 * rabbit_outside_app_process); on a running node the crash repeats until the agent's supervisor
 * gives up, and the node's statistics are gone from the management API.
 */
const DIST_INFO_CRASH = /\{rabbit_net,dist_info,/;
const STUCK_AFTER_CRASH: readonly { what: string; pattern: RegExp }[] = [
  { what: "its rabbit app did not restart after the pause", pattern: /rabbit_outside_app_process:/ },
  { what: "its management agent stopped", pattern: /supervisor: \{local,rabbit_mgmt_agent_sup\}(?:(?!supervisor:)[\s\S]){0,300}?reached_max_restart_intensity/ },
];

/**
 * Heals after a fault: waits until the cluster is healed and stays healed for `holdMs` (the
 * dist_info crash can stop a node's management agent after the cluster first looks whole). A node
 * whose log since `logFrom` shows the dist_info crash and what it left behind gets the README's
 * remedy (its container restarted), and the wait goes on. Anything else that does not heal in
 * 240 s fails. A node gets the remedy at most once per `remedied` list, which collects what was
 * remedied, e.g. "node 1: its rabbit app did not restart after the pause", and is returned.
 */
async function healWithRemedy(logFrom: readonly number[], holdMs: number, remedied: string[] = []): Promise<string[]> {
  let deadline = Date.now() + 240_000;
  let healedSince: number | undefined;
  for (;;) {
    if ((await healState()).healed) {
      healedSince ??= Date.now();
      if (Date.now() - healedSince >= holdMs) return remedied;
    } else {
      healedSince = undefined;
    }
    for (const i of nodes.keys()) {
      if (remedied.some((r) => r.startsWith(`node ${i}:`))) continue;
      const log = (await nodeLog(i)).slice(logFrom[i]);
      const stuck = DIST_INFO_CRASH.test(log) ? STUCK_AFTER_CRASH.find((s) => s.pattern.test(log)) : undefined;
      if (stuck === undefined) continue;
      console.log(`[faults] node ${i} logged RabbitMQ's dist_info crash and ${stuck.what}: applying the README's remedy, restarting its container`);
      await dockerCall(docker.socketPath, "POST", `/containers/${container(i)}/restart?t=10`);
      remedied.push(`node ${i}: ${stuck.what}`);
      healedSince = undefined;
      deadline = Date.now() + 240_000;
    }
    if (healedSince === undefined && Date.now() > deadline) {
      await waitHealed(0);
      return remedied;
    }
    await sleep(2000);
  }
}

/** Where each node's log ends now: what a later healWithRemedy reads from. */
async function logEnds(): Promise<number[]> {
  return Promise.all(nodes.map(async (_, i) => (await nodeLog(i)).length));
}

/** One look at the cluster: healed, and what each container and node reports. */
async function healState(): Promise<{ healed: boolean; report: string }> {
  const health = await Promise.all(
    docker.containers.map(async (c) => {
      const s = await dockerCall<{ State: { Status: string; Health?: { Status: string; Log?: { Output: string }[] } } }>(docker.socketPath, "GET", `/containers/${c}/json`);
      return { status: s.State.Health?.Status ?? s.State.Status, last: s.State.Health?.Log?.at(-1)?.Output.slice(0, 200) };
    }),
  );
  const views = await Promise.all(
    nodes.map(async (n) => {
      try {
        const r = await adminApi(n, "GET", "nodes");
        // A node still starting is listed without its stats (no `partitions`): not healed yet.
        return r.status === 200 ? (r.body as { name: string; running: boolean; partitions?: string[] }[]) : undefined;
      } catch {
        return undefined;
      }
    }),
  );
  const report = JSON.stringify({ health, views: views.map((v) => v?.map((x) => ({ name: x.name, running: x.running, partitions: x.partitions }))) });
  const listed = views.every((v) => v !== undefined && v.length === nodes.length && v.every((x) => x.running && Array.isArray(x.partitions) && x.partitions.length === 0));
  if (!health.every((h) => h.status === "healthy") || !listed) return { healed: false, report };
  // And every node answers CONNECT: on 3.10 a CONNECT registers its client id in a Ra cluster of
  // all nodes, which refuses ("server unavailable") until it has a leader again.
  const refusals = await Promise.all(nodes.map((n, i) => adminMqttLoginRefusal(n, `heal-probe-${i}`)));
  return { healed: refusals.every((r) => r === undefined), report: `${report} MQTT refusals ${JSON.stringify(refusals)}` };
}

/** Every container healthy, every node lists all three running and no partition, every node takes an MQTT login. */
async function waitHealed(timeoutMs = 240_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await healState();
    if (state.healed) return;
    if (Date.now() > deadline) {
      await logNodeTails();
      throw new Error(`cluster not healed after ${timeoutMs} ms: ${state.report}`);
    }
    await sleep(1000);
  }
}

interface Run {
  /** Acknowledged payloads, with when the PUBACK came. */
  acked: Map<string, number>;
  received: Set<string>;
  /** Session-present flags of the subscriber's reconnections. */
  reconnections: { node: number; sessionPresent: boolean }[];
  /**
   * Acknowledged messages that had not arrived 60 s after publishing stopped, while the
   * subscriber stayed connected; stop() then reconnects it once (same session) and waits again.
   */
  stalled: number;
  stop(): Promise<void>;
}

/**
 * Starts the subscriber (persistent session on node `subscriberNode`) and the publisher (QoS 1,
 * one message every 25 ms, on `publisherNode`); both move to another node when theirs goes away.
 * `down` holds the nodes a fault has taken away, which reconnections avoid.
 */
async function startTraffic(label: string, subscriberNode: number, publisherNode: number, down: Set<number>): Promise<Run> {
  const subscriberId = "ingest";
  // A fresh session for this fault: connect clean (which deletes the last fault's session queue),
  // then persistent, and subscribe once.
  const t0 = Date.now();
  const fresh = await connect(subscriberNode, "ingest", subscriberId, true, 60_000);
  await new Promise<void>((r) => fresh.client.end(false, {}, () => r()));
  console.log(`[faults] ${label}: the subscriber's clean start took ${Date.now() - t0} ms`);
  const acked = new Map<string, number>();
  const received = new Set<string>();
  const reconnections: Run["reconnections"] = [];
  let stopping = false;

  const onMessage: OnMessage = (text) => {
    if (text.startsWith(`${label}:`)) received.add(text);
  };
  const followSubscriber = (s: Session) => {
    s.client.once("close", () => {
      if (stopping) return;
      void connectAny(s.node + 1, down, "ingest", subscriberId, false, onMessage).then((next) => {
        reconnections.push({ node: next.node, sessionPresent: next.sessionPresent });
        followSubscriber(next);
        subscriber = next;
      });
    });
  };
  // Setup, before any fault. Seen once in CI on 4.3.6, right after the 120 s cut had healed: the
  // broker closed the persistent connection during its first SUBSCRIBE (the clean session's
  // teardown may still be deleting the same session queue). The subscriber then connects and
  // subscribes again, as a client would, at most three times; the fault has not started yet.
  const subscribed = async (): Promise<Session> => {
    for (let attempt = 1; ; attempt++) {
      const s = await connect(subscriberNode, "ingest", subscriberId, false, 5000, onMessage);
      try {
        await new Promise<void>((resolve, reject) =>
          s.client.subscribe("activity/#", { qos: 1 }, (err, granted) => (err || granted?.[0]?.qos !== 1 ? reject(err ?? new Error(`granted ${JSON.stringify(granted)}`)) : resolve())),
        );
        return s;
      } catch (err) {
        s.client.end(true);
        if (attempt >= 3) throw err;
        console.log(`[faults] ${label}: the subscriber's SUBSCRIBE before the fault failed (${String(err)}); connecting again (attempt ${attempt + 1})`);
        await sleep(1000);
      }
    }
  };
  let subscriber = await subscribed();
  followSubscriber(subscriber);

  let publisher = await connect(publisherNode, "sensor", "sensor", true);
  const publishing = (async () => {
    for (let seq = 0; !stopping; seq++) {
      const payload = `${label}:${seq}`;
      const ok = await new Promise<boolean>((resolve) => {
        if (!publisher.client.connected) return resolve(false);
        const timer = setTimeout(() => resolve(false), 5000);
        publisher.client.publish(TOPIC, payload, { qos: 1 }, (err) => {
          clearTimeout(timer);
          resolve(err === undefined || err === null);
        });
      });
      if (ok) acked.set(payload, Date.now());
      else {
        publisher.client.end(true);
        publisher = await connectAny(publisher.node + 1, down, "sensor", "sensor", true);
      }
      await sleep(25);
    }
  })();

  const missing = () => [...acked.keys()].filter((m) => !received.has(m));
  const waitForAll = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (missing().length > 0 && Date.now() < deadline) await sleep(250);
  };
  const run: Run = {
    acked,
    received,
    reconnections,
    stalled: 0,
    stop: async () => {
      stopping = true;
      await publishing;
      publisher.client.end(true);
      // Let the last acknowledged messages arrive before the subscriber goes.
      await waitForAll(60_000);
      run.stalled = missing().length;
      if (run.stalled > 0) {
        // Stuck or lost? Show what the nodes hold, then take the session up again on a fresh
        // connection: what arrives now was stuck in the session queue, what does not is lost.
        console.log(`[faults] ${label}: ${run.stalled} acknowledged messages not delivered 60 s after publishing stopped: ${missing().slice(0, 5).join(", ")}...`);
        await logSessionQueues(label);
        subscriber.client.end(true);
        subscriber = await connectAny(subscriber.node + 1, new Set(), "ingest", subscriberId, false, onMessage);
        reconnections.push({ node: subscriber.node, sessionPresent: subscriber.sessionPresent });
        await waitForAll(60_000);
        console.log(`[faults] ${label}: after the subscriber reconnected, ${missing().length} still missing`);
      }
      subscriber.client.end(true);
    },
  };
  return run;
}

const container = (i: number) => docker.containers[i]!;

/** When messages are missing: what each node says of the tenant's queues and their consumers. */
async function logSessionQueues(label: string): Promise<void> {
  for (const [i, n] of nodes.entries()) {
    try {
      const r = await adminApi(n, "GET", `queues/${encodeURIComponent(TENANT)}`);
      const names = ((r.body as Record<string, unknown>[] | undefined) ?? []).map((q) => String(q["name"]));
      const qs = await Promise.all(names.map(async (name) => (await adminApi(n, "GET", `queues/${encodeURIComponent(TENANT)}/${encodeURIComponent(name)}`)).body as Record<string, unknown>));
      const view = qs.map((q) => ({
        name: q["name"], type: q["type"], state: q["state"], leader: q["leader"], members: q["members"], online: q["online"],
        ready: q["messages_ready"], unacked: q["messages_unacknowledged"], consumers: q["consumers"],
        consumer_details: (q["consumer_details"] as Record<string, unknown>[] | undefined)?.map((c) => ({ tag: c["consumer_tag"], ch: c["channel_details"], active: c["active"], prefetch: c["prefetch_count"] })),
      }));
      console.log(`[faults] ${label}: node ${i} sees ${r.status} ${JSON.stringify(view)}`);
      const conns = await adminApi(n, "GET", `vhosts/${encodeURIComponent(TENANT)}/connections`);
      console.log(`[faults] ${label}: node ${i} connections ${JSON.stringify(((conns.body as Record<string, unknown>[] | undefined) ?? []).map((c) => ({ name: c["name"], node: c["node"], user: c["user"], client: (c["variable_map"] as Record<string, unknown> | undefined)?.["client_id"] })))}`);
    } catch (err) {
      console.log(`[faults] ${label}: node ${i} did not answer: ${String(err)}`);
    }
  }
}

/**
 * Runs traffic across a fault on node `victim` (the subscriber's node) and returns what was
 * acknowledged and delivered; `outage` is how many messages were acknowledged while the fault
 * lasted (from the fault to the moment it is undone), i.e. whether publishing kept going, and
 * `ackedAfterFault` how many after it was undone.
 */
async function acrossFault(
  label: string,
  victim: number,
  fault: (down: Set<number>) => Promise<void>,
  heal: () => Promise<unknown> = waitHealed,
): Promise<Run & { outage: number; ackedAfterFault: number }> {
  const down = new Set<number>();
  const run = await startTraffic(label, victim, (victim + 1) % nodes.length, down);
  await sleep(1500);
  const from = Date.now();
  await fault(down);
  const to = Date.now();
  await heal();
  console.log(`[faults] ${label}: fault ${to - from} ms, healed ${Date.now() - to} ms later`);
  down.clear();
  await sleep(1500);
  await run.stop();
  const times = [...run.acked.values()];
  return { ...run, outage: times.filter((t) => t >= from && t <= to).length, ackedAfterFault: times.filter((t) => t > to).length };
}

/**
 * Asserts that no acknowledged message was lost and, unless `stallAllowed`, that all arrived
 * without the subscriber reconnecting; returns the longest pause between two PUBACKs (ms).
 */
function expectNoneLost(run: Run & { outage?: number }, label: string, stallAllowed = false): number {
  const lost = [...run.acked.keys()].filter((m) => !run.received.has(m));
  const times = [...run.acked.values()].sort((a, b) => a - b);
  const stall = times.reduce((max, t, i) => (i === 0 ? 0 : Math.max(max, t - times[i - 1]!)), 0);
  console.log(
    `[faults] RabbitMQ ${nodes[0]!.version} ${label}: ${run.acked.size} acknowledged (${run.outage ?? "-"} during the fault, longest pause ${stall} ms), ` +
      `${run.received.size} delivered, ${lost.length} lost, ${run.stalled} stalled until the subscriber reconnected; subscriber reconnections ${JSON.stringify(run.reconnections)}`,
  );
  expect(run.acked.size).toBeGreaterThan(50);
  expect(lost).toEqual([]);
  if (!stallAllowed) expect(run.stalled).toBe(0);
  return stall;
}

describe.skipIf(nodes.length < 3)(`faults on the three-node dev cluster (RabbitMQ ${nodes[0]!.version}, Docker)`, () => {
  beforeAll(async () => {
    fleet = await applyStack(
      TENANT,
      {
        broker: { stackReference: PLATFORM_REF },
        tenant: {
          name: TENANT,
          protect: false,
          identities: [
            { name: "sensor", kind: "device", role: "c2b", user: "u-1" },
            { name: "ingest", kind: "service", role: "b2b", grants: { subscribe: ["activity/#"] } },
          ],
        },
      },
      { [PLATFORM_REF]: docker.outputs },
    );
    await waitHealed();
  });

  afterAll(async () => {
    // Leave the cluster whole for the suites after this one, whatever failed.
    for (const c of docker.containers) {
      await dockerApi(docker.socketPath, "POST", `/networks/${docker.network}/connect`, { Container: c, EndpointConfig: { Aliases: [c] } });
      await dockerApi(docker.socketPath, "POST", `/containers/${c}/start`);
    }
    await waitHealed();
  });

  it("a node killed: clients move to a survivor, the session and its subscription survive, no acknowledged message is lost", async () => {
    const run = await acrossFault("kill", 1, async (down) => {
      down.add(1);
      await dockerCall(docker.socketPath, "POST", `/containers/${container(1)}/kill`);
      await sleep(8000);
      // Still down: the rest of the cluster serves (the restart policy does not revive a killed container).
      expect((await dockerCall<{ State: { Running: boolean } }>(docker.socketPath, "GET", `/containers/${container(1)}/json`)).State.Running).toBe(false);
      await dockerCall(docker.socketPath, "POST", `/containers/${container(1)}/start`);
    });
    expect(run.reconnections.length).toBeGreaterThan(0);
    for (const r of run.reconnections) expect(r).toMatchObject({ sessionPresent: true });
    expect(run.reconnections[0]?.node).not.toBe(1);
    expectNoneLost(run, "kill");
    // The subscriber's session queue stays available while its node is down: publishing goes on.
    expect(run.outage).toBeGreaterThan(50);
  });

  it("a node restarted: the same", async () => {
    const run = await acrossFault("restart", 2, async (down) => {
      down.add(2);
      await dockerCall(docker.socketPath, "POST", `/containers/${container(2)}/restart?t=10`);
    });
    expect(run.reconnections.length).toBeGreaterThan(0);
    for (const r of run.reconnections) expect(r).toMatchObject({ sessionPresent: true });
    expectNoneLost(run, "restart");
  });

  it("a node cut off the network for 20 s: clients move to the majority, nothing acknowledged is lost", async () => {
    const run = await acrossFault("partition", 1, async (down) => {
      down.add(1);
      await dockerCall(docker.socketPath, "POST", `/networks/${docker.network}/disconnect`, { Container: container(1), Force: false });
      // Shorter than the Erlang distribution notices (net_ticktime 60 s: no node goes down, no
      // partition is declared), longer than quorum queues take to elect a leader on the majority.
      await sleep(20_000);
      await dockerCall(docker.socketPath, "POST", `/networks/${docker.network}/connect`, { Container: container(1), EndpointConfig: { Aliases: [container(1)] } });
    });
    expect(run.reconnections.length).toBeGreaterThan(0);
    for (const r of run.reconnections) expect(r).toMatchObject({ sessionPresent: true });
    // Seen once in CI on 4.3.6 (README, Faults): after the network came back, nothing more reached
    // the subscriber on the majority. Delivery after its reconnection is what is required then.
    const stall = expectNoneLost(run, "partition", true);
    // Publishing goes on again once the fault is over, on every release.
    expect(run.ackedAfterFault).toBeGreaterThan(0);
    if (versionAtLeast(nodes[0]!, 4, 0)) {
      // 4.x usually keeps publishing through the cut (a new quorum leader on the majority after
      // about 10 s), but not always: seen once in CI on 4.3.6, 15 acknowledged in the 20 s. So how
      // much is acknowledged during the cut is reported, not promised (README, Faults).
      console.log(`[faults] partition: ${run.outage} acknowledged during the 20 s cut`);
    } else {
      // 3.10: publishing to the session whose queue leader was cut off waits until the network is
      // back (seen: a 27 s pause for a 20 s cut); nothing acknowledged is lost.
      expect(stall).toBeGreaterThan(15_000);
    }
  }, 300_000);

  it("a node cut off for 120 s, past net_ticktime: the cluster declares it down, clients move to the majority, nothing acknowledged is lost", async () => {
    let declaredDownAfter: number | undefined;
    let remedied: string[] = [];
    const logFrom = await logEnds();
    const run = await acrossFault("long-cut", 1, async (down) => {
      down.add(1);
      await dockerCall(docker.socketPath, "POST", `/networks/${docker.network}/disconnect`, { Container: container(1), Force: false });
      const cutAt = Date.now();
      // net_ticktime 60 s: each node declares a silent peer down about 45-75 s into the cut, on
      // its own clock (seen: the majority after 61-74 s, the cut node its second peer after 87 s).
      // 3.10 and 4.0 pause the cut node (pause_minority) once it has lost both peers; 4.3 keeps it
      // running outside Khepri's quorum. The cut lasts 120 s so that the cut node has noticed too:
      // one ending before leaves Mnesia partitioned after the network is back, which
      // pause_minority does not heal (README).
      while (declaredDownAfter === undefined && Date.now() - cutAt < 100_000) {
        const r = await adminApi(nodes[0]!, "GET", "nodes").catch(() => undefined);
        const listed = r?.status === 200 ? (r.body as { name: string; running: boolean }[]) : [];
        if (listed.some((x) => x.name.endsWith(`@${container(1)}`) && !x.running)) declaredDownAfter = Date.now() - cutAt;
        else await sleep(2000);
      }
      await sleep(Math.max(0, cutAt + 120_000 - Date.now()));
      await dockerCall(docker.socketPath, "POST", `/networks/${docker.network}/connect`, { Container: container(1), EndpointConfig: { Aliases: [container(1)] } });
    }, async () => (remedied = await healWithRemedy(logFrom, 30_000)));
    console.log(`[faults] long-cut: the majority declared node 1 down ${declaredDownAfter ?? "never"} ms into the cut`);
    expect(declaredDownAfter).toBeDefined();
    // The cut node's own log since the cut: before 4.2 it paused (rabbit_node_monitor's
    // pause_minority), from 4.2 nothing pauses it.
    const logs = (await nodeLog(1)).slice(logFrom[1]);
    expect(logs.includes("Cluster minority/secondary status detected")).toBe(!versionAtLeast(nodes[0]!, 4, 2));
    console.log(`[faults] long-cut: ${remedied.length === 0 ? "healed on its own" : `healed after the README's remedy for RabbitMQ's dist_info crash (${remedied.join("; ")})`}`);
    expect(run.reconnections.length).toBeGreaterThan(0);
    for (const r of run.reconnections) expect(r).toMatchObject({ sessionPresent: true });
    expectNoneLost(run, "long-cut", true);
  }, 480_000);

  it("every node restarted one by one (rolling): the same", async () => {
    const down = new Set<number>();
    const logFrom = await logEnds();
    const remedied: string[] = [];
    const run = await startTraffic("rolling", 0, 1, down);
    await sleep(1500);
    for (let i = 0; i < nodes.length; i++) {
      down.add(i);
      await dockerCall(docker.socketPath, "POST", `/containers/${container(i)}/restart?t=10`);
      // Seen once in CI on 3.10.8, right after the long cut: the cluster did not heal during the
      // rolling restart, one node listed without statistics (its management agent stopped).
      await healWithRemedy(logFrom, 10_000, remedied);
      down.delete(i);
      await sleep(1000);
    }
    console.log(`[faults] rolling: ${remedied.length === 0 ? "healed on its own after each restart" : `healed after the README's remedy for RabbitMQ's dist_info crash (${remedied.join("; ")})`}`);
    await run.stop();
    expect(run.reconnections.length).toBeGreaterThan(0);
    for (const r of run.reconnections) expect(r).toMatchObject({ sessionPresent: true });
    expectNoneLost(run, "rolling");
  }, 900_000);
});
