/**
 * The management API client every dynamic resource uses: at most MANAGEMENT_CONCURRENCY calls in
 * flight per process, and a call that fails in transit or answers 502/503/504 sent again, against
 * a local HTTP server that misbehaves on purpose. (The overload of a real broker's listener is
 * reproduced in tests/e2e/management-load.e2e.test.ts.)
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { MANAGEMENT_ATTEMPTS, MANAGEMENT_CONCURRENCY, managementCall, managementRequest, managementSlots } from "../../components/management/api";

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;
const servers: http.Server[] = [];

async function serve(handler: Handler): Promise<{ url: string; seen: () => number }> {
  let n = 0;
  const server = http.createServer((req, res) => handler(req, res, ++n));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen: () => n };
}

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

const conn = (url: string) => ({ managementUrl: url, username: "admin", password: "s3cret-password" });

describe("management API client", () => {
  it("never has more than MANAGEMENT_CONCURRENCY calls in flight, however many are started at once", async () => {
    let inFlight = 0;
    let most = 0;
    const { url, seen } = await serve((_req, res) => {
      inFlight++;
      most = Math.max(most, inFlight);
      setTimeout(() => {
        inFlight--;
        res.end("{}");
      }, 20);
    });
    const results = await Promise.all(Array.from({ length: 200 }, () => managementRequest(conn(url), "GET", "overview")));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(seen()).toBe(200);
    expect(most).toBe(MANAGEMENT_CONCURRENCY);
    expect(managementSlots().inFlight).toBe(0);
  });

  it("sends a call again when the server hangs up before answering", async () => {
    const { url, seen } = await serve((req, res, n) => {
      if (n <= 2) req.socket.destroy();
      else res.end(JSON.stringify({ ok: n }));
    });
    const r = await managementRequest(conn(url), "GET", "overview");
    expect(r).toEqual({ status: 200, body: { ok: 3 } });
    expect(seen()).toBe(3);
  });

  it("sends a call again on 503, with the same body", async () => {
    const bodies: string[] = [];
    const { url } = await serve((req, res, n) => {
      let b = "";
      req.on("data", (c: Buffer) => (b += c.toString()));
      req.on("end", () => {
        bodies.push(`${req.method} ${b}`);
        res.statusCode = n === 1 ? 503 : 201;
        res.end();
      });
    });
    const r = await managementCall(conn(url), "POST", "definitions", { users: [{ name: "a" }] });
    expect(r.status).toBe(201);
    expect(bodies).toEqual([`POST {"users":[{"name":"a"}]}`, `POST {"users":[{"name":"a"}]}`]);
  });

  it("does not retry an answer that is the broker's decision (401, 400, 404)", async () => {
    for (const status of [401, 400, 404]) {
      const { url, seen } = await serve((_req, res) => {
        res.statusCode = status;
        res.end(JSON.stringify({ reason: `status ${status}` }));
      });
      const r = await managementRequest(conn(url), "GET", "users/x");
      expect(r.status).toBe(status);
      expect(seen()).toBe(1);
    }
  });

  it("gives up after MANAGEMENT_ATTEMPTS, naming the call and never the credentials", async () => {
    const { url, seen } = await serve((req) => req.socket.destroy());
    const err = await managementRequest(conn(url), "PUT", "users/x", { password: "p" }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(new RegExp(`PUT /api/users/x failed \\(attempt ${MANAGEMENT_ATTEMPTS}\\): socket hang up`));
    expect((err as Error).message).not.toContain("s3cret-password");
    expect(seen()).toBe(MANAGEMENT_ATTEMPTS);
  }, 30_000);
});
