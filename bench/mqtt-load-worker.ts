/**
 * A child process of the Docker benchmarks that opens plain MQTT 3.1.1 connections and holds them:
 * raw sockets and a hand-written CONNECT (a few hundred bytes per connection, so one process holds
 * thousands). Keep-alive 0: idle connections send nothing. It reports to its parent over IPC.
 *
 * Messages from the parent: { cmd: "open", count, ratePerSec (0 = all at once), ... } and
 * { cmd: "close" }. To the parent: { held, failed, firstError, lastConnackMs }.
 */
import * as net from "node:net";

export interface OpenCommand {
  cmd: "open";
  host: string;
  port: number;
  username: string;
  password: string;
  clientIdPrefix: string;
  count: number;
  /** Connections started per second; 0 starts them all at once. */
  ratePerSec: number;
  /** Stop opening more after the first failure. */
  stopOnFailure: boolean;
  timeoutMs: number;
}

export interface WorkerReport {
  held: number;
  failed: number;
  firstError?: string;
  /** When the last CONNACK arrived, ms after the open command. */
  lastConnackMs: number;
  done: boolean;
}

function utf8Field(s: string): Buffer {
  const b = Buffer.from(s, "utf8");
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

/** MQTT 3.1.1 CONNECT: clean session, keep-alive 0, username and password. */
export function connectPacket(clientId: string, username: string, password: string): Buffer {
  const variable = Buffer.concat([utf8Field("MQTT"), Buffer.from([4, 0b11000010, 0, 0])]);
  const payload = Buffer.concat([utf8Field(clientId), utf8Field(username), utf8Field(password)]);
  const body = Buffer.concat([variable, payload]);
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]);
}

const sockets: net.Socket[] = [];
const report: WorkerReport = { held: 0, failed: 0, lastConnackMs: 0, done: false };
let stopped = false;

function send(): void {
  process.send?.({ ...report });
}

function openOne(c: OpenCommand, i: number, started: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: c.host, port: c.port });
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      report.failed++;
      report.firstError ??= why;
      if (c.stopOnFailure) stopped = true;
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(() => fail("no CONNACK in time"), c.timeoutMs);
    socket.setNoDelay(true);
    socket.once("connect", () => socket.write(connectPacket(`${c.clientIdPrefix}-${i}`, c.username, c.password)));
    socket.once("data", (d: Buffer) => {
      clearTimeout(timer);
      if (d.length >= 4 && d[0] === 0x20 && d[3] === 0) {
        if (settled) return;
        settled = true;
        report.held++;
        report.lastConnackMs = Date.now() - started;
        sockets.push(socket);
        // A held connection that the broker closes later counts as lost.
        socket.once("close", () => {
          report.held--;
          report.failed++;
          report.firstError ??= "a held connection was closed";
        });
        resolve();
      } else fail(`CONNACK refused (return code ${d[3] ?? "?"})`);
    });
    socket.once("error", (e) => {
      clearTimeout(timer);
      fail(e.message);
    });
    socket.once("close", () => {
      clearTimeout(timer);
      fail("closed before CONNACK");
    });
  });
}

async function open(c: OpenCommand): Promise<void> {
  const started = Date.now();
  const pending: Promise<void>[] = [];
  const ticker = setInterval(send, 1000);
  for (let i = 0; i < c.count && !stopped; i++) {
    pending.push(openOne(c, i, started));
    if (c.ratePerSec > 0) {
      const due = started + ((i + 1) * 1000) / c.ratePerSec;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }
  await Promise.all(pending);
  clearInterval(ticker);
  report.done = true;
  send();
}

process.on("message", (m: OpenCommand | { cmd: "close" }) => {
  if (m.cmd === "open") void open(m);
  else {
    for (const s of sockets) {
      s.removeAllListeners("close");
      s.destroy();
    }
    process.exit(0);
  }
});
