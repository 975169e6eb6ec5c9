/**
 * The management HTTP API as the tests speak it, with the broker's admin credentials: directly,
 * not through components/management/api.ts (which is under test).
 */
import type { BrokerInfo } from "./broker";

export interface Reply {
  status: number;
  body: unknown;
}

export type Method = "GET" | "PUT" | "DELETE" | "POST";

export async function adminApi(on: BrokerInfo, method: Method, pathname: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`${on.managementUrl}/api/${pathname}`, {
    method,
    headers: {
      authorization: `Basic ${Buffer.from(`${on.adminUsername}:${on.adminPassword}`).toString("base64")}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  return { status: res.status, body: text.length > 0 ? (JSON.parse(text) as unknown) : undefined };
}

/** Like adminApi, but throws unless the status is 2xx. */
export async function adminApiOk(on: BrokerInfo, method: Method, pathname: string, body?: unknown): Promise<Reply> {
  const r = await adminApi(on, method, pathname, body);
  if (r.status < 200 || r.status > 299) throw new Error(`${method} /api/${pathname} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r;
}
