/**
 * Real MQTT (mqtt.js) and AMQP 0-9-1 (amqplib) clients for the e2e tests, with every outcome made
 * explicit: connected or refused, subscription granted / refused (0x80) / connection closed,
 * publish acknowledged or not, message delivered or not.
 */
import * as net from "node:net";
import * as amqp from "amqplib";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";

export const HOST = "127.0.0.1";

export interface MqttLogin {
  port: number;
  username?: string;
  password?: string;
  clientId: string;
  clean?: boolean;
  protocolVersion?: 4 | 5;
  /** MQTT over WebSocket (the Web MQTT plugin serves it at /ws). */
  websocket?: boolean;
  /** TLS (mqtts, or wss with websocket): the CA to trust and, for certificate login, the client's chain and key. */
  tls?: { ca: string; cert?: string; key?: string };
  /** How long to wait for the CONNACK (default 5 s); bursts of many connects on a busy machine need longer. */
  connectTimeoutMs?: number;
}

export interface ReceivedMessage {
  topic: string;
  payload: string;
  qos: number;
}

/**
 * `messages` collects from the moment the client exists: a persistent session's queued messages
 * can arrive in the same read as the CONNACK, before any listener added after connect().
 */
export type ConnectOutcome = { ok: true; client: MqttClient; messages: ReceivedMessage[] } | { ok: false; reason: string };

export function mqttConnect(login: MqttLogin): Promise<ConnectOutcome> {
  const opts: IClientOptions = {
    host: HOST,
    port: login.port,
    ...(login.websocket === true ? { protocol: login.tls ? ("wss" as const) : ("ws" as const), path: "/ws" } : login.tls ? { protocol: "mqtts" as const } : {}),
    ...(login.tls
      ? { ca: login.tls.ca, ...(login.tls.cert !== undefined ? { cert: login.tls.cert } : {}), ...(login.tls.key !== undefined ? { key: login.tls.key } : {}), rejectUnauthorized: true }
      : {}),
    clientId: login.clientId,
    clean: login.clean ?? true,
    protocolVersion: login.protocolVersion ?? 4,
    reconnectPeriod: 0,
    connectTimeout: login.connectTimeoutMs ?? 5000,
    keepalive: 30,
  };
  if (login.username !== undefined) opts.username = login.username;
  if (login.password !== undefined) opts.password = login.password;
  return new Promise((resolve) => {
    const client = mqtt.connect(opts);
    const messages: ReceivedMessage[] = [];
    client.on("message", (topic, payload, packet) => messages.push({ topic, payload: payload.toString(), qos: packet.qos }));
    let done = false;
    const finish = (o: ConnectOutcome) => {
      if (done) return;
      done = true;
      if (!o.ok) client.end(true);
      resolve(o);
    };
    client.once("connect", () => finish({ ok: true, client, messages }));
    client.once("error", (err) => finish({ ok: false, reason: err.message }));
    client.once("close", () => finish({ ok: false, reason: "connection closed before CONNACK" }));
  });
}

export function isOpen(client: MqttClient): boolean {
  return client.connected && !client.disconnecting;
}

export type SubscribeOutcome = "granted" | "refused" | "closed";

/** SUBSCRIBE; resolves with the broker's answer (granted QoS, 0x80, or the connection closing). */
export function trySubscribe(
  client: MqttClient,
  filter: string,
  qos: 0 | 1 | 2 = 1,
  timeoutMs = 5000,
): Promise<{ outcome: SubscribeOutcome; grantedQos?: number }> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: { outcome: SubscribeOutcome; grantedQos?: number }) => {
      if (done) return;
      done = true;
      client.off("close", onClose);
      resolve(r);
    };
    const onClose = () => finish({ outcome: "closed" });
    client.once("close", onClose);
    client.subscribe(filter, { qos }, (err, granted) => {
      if (err) return finish({ outcome: isOpen(client) ? "refused" : "closed" });
      const g = granted?.[0]?.qos;
      if (g === undefined || g === 128) return finish({ outcome: "refused" });
      finish({ outcome: "granted", grantedQos: g });
    });
    setTimeout(() => finish({ outcome: isOpen(client) ? "refused" : "closed" }), timeoutMs).unref();
  });
}

export type PublishOutcome = "acked" | "closed" | "no-ack";

/** PUBLISH with QoS 1 (or 0/2); for QoS >= 1 waits for the acknowledgement or the connection closing. */
export function tryPublish(client: MqttClient, topic: string, payload: string, qos: 0 | 1 | 2 = 1, timeoutMs = 3000): Promise<PublishOutcome> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: PublishOutcome) => {
      if (done) return;
      done = true;
      client.off("close", onClose);
      resolve(r);
    };
    const onClose = () => finish("closed");
    client.once("close", onClose);
    client.publish(topic, payload, { qos }, (err) => {
      if (err) return finish(isOpen(client) ? "no-ack" : "closed");
      finish("acked");
    });
    setTimeout(() => finish(isOpen(client) ? "no-ack" : "closed"), timeoutMs).unref();
  });
}


export async function endQuietly(client: MqttClient | undefined): Promise<void> {
  if (!client) return;
  await new Promise<void>((r) => {
    client.end(true, {}, () => r());
    setTimeout(r, 1000).unref();
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(cond: () => boolean, timeoutMs: number, stepMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await sleep(stepMs);
  }
  return cond();
}

export function amqpUrl(port: number, username: string, password: string, vhost: string): string {
  return `amqp://${encodeURIComponent(username)}:${encodeURIComponent(password)}@${HOST}:${port}/${encodeURIComponent(vhost)}`;
}

/** An admin-side observer of everything routed through amq.topic in one vhost. */
export async function topicObserver(url: string): Promise<{ seen: { routingKey: string; payload: string }[]; close(): Promise<void> }> {
  const conn = await amqp.connect(url);
  const ch = await conn.createChannel();
  const q = await ch.assertQueue("", { exclusive: true, autoDelete: true });
  await ch.bindQueue(q.queue, "amq.topic", "#");
  const seen: { routingKey: string; payload: string }[] = [];
  await ch.consume(q.queue, (m) => {
    if (m) seen.push({ routingKey: m.fields.routingKey, payload: m.content.toString() });
  }, { noAck: true });
  return {
    seen,
    close: async () => {
      await conn.close().catch(() => undefined);
    },
  };
}

export type AmqpOutcome = { ok: true } | { ok: false; reason: string };

/**
 * Runs one AMQP operation on a fresh connection and channel with `url`'s credentials, reporting
 * whether the broker allowed it (channel errors such as 403 ACCESS_REFUSED become ok: false).
 */
export async function amqpAttempt(url: string, op: (ch: amqp.Channel) => Promise<unknown>): Promise<AmqpOutcome> {
  let conn: amqp.ChannelModel;
  try {
    conn = await amqp.connect(url);
  } catch (e) {
    return { ok: false, reason: `connect: ${(e as Error).message}` };
  }
  conn.on("error", () => undefined);
  try {
    const ch = await conn.createChannel();
    let channelError: Error | undefined;
    ch.on("error", (e: Error) => {
      channelError = e;
    });
    await op(ch);
    // Publishes are asynchronous: a refused one closes the channel shortly after.
    await sleep(150);
    if (channelError) return { ok: false, reason: channelError.message };
    await ch.close();
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
