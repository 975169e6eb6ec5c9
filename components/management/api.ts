/**
 * A minimal client for the RabbitMQ management HTTP API, used inside dynamic providers.
 *
 * Dynamic providers are serialized and run by the Pulumi engine in a separate Node process, so
 * everything here is plain functions: no captured clients, sockets or classes. Node's http/https
 * modules are taken with `process.getBuiltinModule` at call time (nothing captured), because the
 * platform's management API speaks HTTPS with a certificate from the platform's own CA, which
 * global `fetch` cannot be told to trust.
 * Error messages carry method, path, status and the broker's reason, never credentials.
 */

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

export async function managementRequest(
  conn: ManagementConnection,
  method: "GET" | "PUT" | "DELETE",
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<ApiResponse> {
  const url = new URL(`${conn.managementUrl.replace(/\/+$/, "")}/api/${path}`);
  const headers: Record<string, string> = {
    authorization: `Basic ${Buffer.from(`${conn.username}:${conn.password}`).toString("base64")}`,
  };
  const payload = body !== undefined ? JSON.stringify(body) : undefined;
  if (payload !== undefined) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(Buffer.byteLength(payload));
  }
  let status: number;
  let text: string;
  try {
    ({ status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const options = { method, headers, timeout: timeoutMs, ...(conn.caCertPem !== undefined ? { ca: conn.caCertPem } : {}) };
      const req =
        url.protocol === "https:"
          ? process.getBuiltinModule("node:https").request(url, options, (res) => collect(res, resolve, reject))
          : process.getBuiltinModule("node:http").request(url, options, (res) => collect(res, resolve, reject));
      req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on("error", reject);
      req.end(payload);
    }));
  } catch (e) {
    throw new Error(`RabbitMQ management API ${method} /api/${path} failed: ${(e as Error).message}`);
  }
  let parsed: unknown = text;
  if (text.length > 0) {
    try {
      parsed = JSON.parse(text) as unknown;
    } catch {
      parsed = text;
    }
  }
  return { status, body: parsed };
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
