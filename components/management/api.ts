/**
 * A minimal client for the RabbitMQ management HTTP API, used inside dynamic providers.
 *
 * Dynamic providers are serialized and run by the Pulumi engine in a separate Node process, so
 * everything here is plain functions: no captured clients, sockets or classes. Node's http/https
 * modules are taken with `process.getBuiltinModule` at call time (nothing captured), because the
 * platform's management API speaks HTTPS with a certificate from the platform's own CA, which
 * global `fetch` cannot be told to trust.
 * Error messages carry method, path, status and the broker's reason, never credentials.
 *
 * Bounded and retried: `pulumi up` runs resource operations with unbounded parallelism by default,
 * and a large tenant's calls all at once overload the management listener: over HTTPS, 6,000 to
 * 9,000 calls at once had it close hundreds to thousands of connections before answering ("socket
 * hang up", or closed during the TLS handshake) on 3.10.8, 4.0.5 and 4.3.6
 * (tests/e2e/management-load.e2e.test.ts). So every call waits for one of MANAGEMENT_CONCURRENCY slots, shared by every dynamic resource in
 * the process (each resource's provider is deserialized on its own, so the slots live on
 * globalThis, not in this module), and a call that fails in transit or answers 502/503/504 is
 * sent again after a backoff, up to MANAGEMENT_ATTEMPTS times. Every method used here is
 * idempotent (GET, PUT, DELETE, a definitions import, a bulk delete), so sending again is safe.
 */

/** Calls in flight to the management API from one process, at most. */
export const MANAGEMENT_CONCURRENCY = 16;
/** Attempts per call (the first and the retries). */
export const MANAGEMENT_ATTEMPTS = 6;

export type ManagementMethod = "GET" | "PUT" | "DELETE" | "POST";

export interface ManagementConnection {
  readonly managementUrl: string;
  readonly username: string;
  readonly password: string;
  /** For https URLs: the CA certificate (PEM) the server's certificate must chain to. */
  readonly caCertPem?: string;
}

export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
}

interface Slots {
  limit: number;
  inFlight: number;
  waiting: (() => void)[];
  /** Calls that had to wait, and calls sent again: for tests and benchmarks. */
  stats: { calls: number; waited: number; retried: number; maxInFlight: number };
}

/** The process-wide slots (see the module comment); `limit` may be lowered by tests. */
export function managementSlots(): Slots {
  const key = Symbol.for("rabbitmq-mqtt-provisioner.management-slots");
  const g = globalThis as unknown as Record<symbol, Slots | undefined>;
  let slots = g[key];
  if (slots === undefined) {
    slots = { limit: MANAGEMENT_CONCURRENCY, inFlight: 0, waiting: [], stats: { calls: 0, waited: 0, retried: 0, maxInFlight: 0 } };
    g[key] = slots;
  }
  return slots;
}

async function withSlot<T>(fn: () => Promise<T>): Promise<T> {
  const slots = managementSlots();
  if (slots.inFlight >= slots.limit) {
    slots.stats.waited++;
    await new Promise<void>((resolve) => slots.waiting.push(resolve));
  }
  slots.inFlight++;
  slots.stats.maxInFlight = Math.max(slots.stats.maxInFlight, slots.inFlight);
  try {
    return await fn();
  } finally {
    slots.inFlight--;
    slots.waiting.shift()?.();
  }
}

/** Failures in transit that a new attempt may not meet (the listener was full, a reset, a timeout). */
function transient(message: string): boolean {
  return /socket hang up|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|ECONNABORTED|EAI_AGAIN|no answer within/i.test(message);
}

/** Gateway and overload answers: the broker (or a proxy in front of it) could not take the call now. */
const TRANSIENT_STATUSES = [502, 503, 504];

export async function managementRequest(
  conn: ManagementConnection,
  method: ManagementMethod,
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<ApiResponse> {
  const payload = body !== undefined ? JSON.stringify(body) : undefined;
  const slots = managementSlots();
  for (let attempt = 1; ; attempt++) {
    let res: ApiResponse;
    try {
      slots.stats.calls++;
      res = await withSlot(() => sendOnce(conn, method, path, payload, timeoutMs));
    } catch (e) {
      const message = (e as Error).message;
      if (attempt >= MANAGEMENT_ATTEMPTS || !transient(message)) {
        throw new Error(`RabbitMQ management API ${method} /api/${path} failed${attempt > 1 ? ` (attempt ${attempt})` : ""}: ${message}`);
      }
      slots.stats.retried++;
      await backoff(attempt);
      continue;
    }
    if (TRANSIENT_STATUSES.includes(res.status) && attempt < MANAGEMENT_ATTEMPTS) {
      slots.stats.retried++;
      await backoff(attempt);
      continue;
    }
    return res;
  }
}

/** 0.2 s, 0.4 s, 0.8 s ... up to 5 s, with jitter so that many waiting calls do not return at once. */
function backoff(attempt: number): Promise<void> {
  const ms = Math.min(5000, 200 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function sendOnce(conn: ManagementConnection, method: ManagementMethod, path: string, payload: string | undefined, timeoutMs: number): Promise<ApiResponse> {
  const url = new URL(`${conn.managementUrl.replace(/\/+$/, "")}/api/${path}`);
  const headers: Record<string, string> = {
    authorization: `Basic ${Buffer.from(`${conn.username}:${conn.password}`).toString("base64")}`,
  };
  if (payload !== undefined) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(Buffer.byteLength(payload));
  }
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const options = { method, headers, timeout: timeoutMs, ...(conn.caCertPem !== undefined ? { ca: conn.caCertPem } : {}) };
    const req =
      url.protocol === "https:"
        ? process.getBuiltinModule("node:https").request(url, options, (res) => collect(res, resolve, reject))
        : process.getBuiltinModule("node:http").request(url, options, (res) => collect(res, resolve, reject));
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(payload);
  }).then(({ status, text }) => {
    let parsed: unknown = text;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text) as unknown;
      } catch {
        parsed = text;
      }
    }
    return { status, body: parsed };
  });
}

function collect(
  res: import("node:http").IncomingMessage,
  resolve: (r: { status: number; text: string }) => void,
  reject: (e: Error) => void,
): void {
  const chunks: Buffer[] = [];
  res.on("data", (c: Buffer) => chunks.push(c));
  res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
  res.on("error", reject);
}

/** Like managementRequest, but throws unless the status is one of `ok`. */
export async function managementCall(
  conn: ManagementConnection,
  method: ManagementMethod,
  path: string,
  body?: unknown,
  ok: readonly number[] = [200, 201, 204],
  timeoutMs?: number,
): Promise<ApiResponse> {
  const res = await managementRequest(conn, method, path, body, timeoutMs);
  if (!ok.includes(res.status)) {
    const reason =
      typeof res.body === "object" && res.body !== null && "reason" in res.body
        ? String((res.body).reason)
        : typeof res.body === "string"
          ? res.body.slice(0, 300)
          : "";
    throw new Error(`RabbitMQ management API ${method} /api/${path} answered ${res.status}${reason ? `: ${reason}` : ""}`);
  }
  return res;
}

export function seg(value: string): string {
  return encodeURIComponent(value);
}
