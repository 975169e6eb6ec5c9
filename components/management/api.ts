/**
 * A minimal client for the RabbitMQ management HTTP API, used inside dynamic providers.
 *
 * Dynamic providers are serialized and run by the Pulumi engine in a separate Node process, so
 * everything here is plain functions over global `fetch`: no captured clients, sockets or classes.
 * Error messages carry method, path, status and the broker's reason, never credentials.
 */

export interface ManagementConnection {
  readonly managementUrl: string;
  readonly username: string;
  readonly password: string;
}

export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
}

export async function managementRequest(
  conn: ManagementConnection,
  method: "GET" | "PUT" | "DELETE",
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<ApiResponse> {
  const url = `${conn.managementUrl.replace(/\/+$/, "")}/api/${path}`;
  const headers: Record<string, string> = {
    authorization: `Basic ${Buffer.from(`${conn.username}:${conn.password}`).toString("base64")}`,
  };
  if (body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    throw new Error(`RabbitMQ management API ${method} /api/${path} failed: ${(e as Error).message}`);
  }
  const text = await res.text();
  let parsed: unknown = text;
  if (text.length > 0) {
    try {
      parsed = JSON.parse(text) as unknown;
    } catch {
      parsed = text;
    }
  }
  return { status: res.status, body: parsed };
}

/** Like managementRequest, but throws unless the status is one of `ok`. */
export async function managementCall(
  conn: ManagementConnection,
  method: "GET" | "PUT" | "DELETE",
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
