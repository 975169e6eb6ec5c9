/**
 * The shipped `dev` platform stack on a real Docker engine (tests/support/docker-global-setup.ts):
 * the containers as the stack declared them, every listener on its published port, the tuning seen
 * from inside the container, and what the machine could not give reported by the stack. The
 * TLS-login suite (on dev platforms of its own) and the tenant-access suite (on these containers)
 * run in the same vitest run, through the published ports.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import * as https from "node:https";
import * as tls from "node:tls";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { versionAtLeast } from "../../../core/broker-baseline";
import { appScopes, parseAppGrant } from "../../../core/token-scopes";
import { connectionMax, tuningFor } from "../../../core/tuning";
import { jwtVerify } from "jose";
import { endQuietly, mqttConnect, portOpen, tryPublish, trySubscribe } from "../../support/clients";
import { dockerCall, dockerExec } from "../../support/docker-engine";
import { applyDockerResource } from "../../support/docker-hooks";
import { hostOpenFilesLimit } from "../../support/docker-platform";
import { idpToken } from "../../support/idp-container";
import { adminApiOk } from "../../support/management";
import { rs256, rsaSigningKey, type SigningKey } from "../../support/tokens";

const broker = inject("broker");
const docker = inject("docker");
const [container] = docker.containers as [string];
const caCertPem = docker.outputs["caCertificatePem"] as string;

interface Inspect {
  Config: { Hostname: string; Env: string[]; Healthcheck: { Test: string[]; Interval: number; Retries: number } };
  State: { Running: boolean; Health: { Status: string } };
  HostConfig: {
    RestartPolicy: { Name: string };
    Ulimits: { Name: string; Soft: number; Hard: number }[];
    Sysctls: Record<string, string>;
    PortBindings: Record<string, { HostIp: string; HostPort: string }[]>;
  };
  Mounts: { Type: string; Name: string; Destination: string }[];
  NetworkSettings: { Networks: Record<string, { Aliases: string[] | null }> };
}

const exec = async (cmd: string[]) => {
  const r = await dockerExec(docker.socketPath, container, cmd);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
};
const evalErl = (expr: string) => exec(["rabbitmqctl", "eval", expr]);

const tuning = tuningFor({ profile: "default", expectedConnections: 10000 });

describe("the containers, as the dev stack declares them", () => {
  let info: Inspect;
  beforeAll(async () => {
    info = await dockerCall<Inspect>(docker.socketPath, "GET", `/containers/${container}/json`);
  });

  it("is running and healthy, restarts unless stopped, and keeps its data in its volume", () => {
    expect(info.State.Running).toBe(true);
    expect(info.State.Health.Status).toBe("healthy");
    expect(info.Config.Healthcheck.Test).toEqual(["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"]);
    expect(info.HostConfig.RestartPolicy.Name).toBe("unless-stopped");
    expect(info.Mounts).toContainEqual(expect.objectContaining({ Type: "volume", Name: `${container}-data`, Destination: "/var/lib/rabbitmq/mnesia" }));
    expect(info.NetworkSettings.Networks[docker.network]?.Aliases).toContain(container);
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual([docker.network]);
  });

  it("publishes every listener on 127.0.0.1 only", () => {
    const bindings = Object.values(info.HostConfig.PortBindings).flat();
    expect(bindings).toHaveLength(9);
    for (const b of bindings) expect(b.HostIp).toBe("127.0.0.1");
  });

  it("runs the broker as the image's rabbitmq user (uid 999) as PID 1, not as root", async () => {
    expect(await exec(["sh", "-c", "awk '/^Uid:/ { print $2 }' /proc/1/status"])).toBe("999\n");
    expect(await exec(["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"])).toMatch(/beam\.smp/);
  });

  it("loads only the rendered configuration, not the image's own conf.d defaults", async () => {
    const status = JSON.parse(await exec(["rabbitmq-diagnostics", "status", "--formatter", "json"])) as { config_files: string[] };
    expect(status.config_files).toEqual(["/etc/rabbitmq/rabbitmq-mqtt.d/10-rendered.conf"]);
    // conf.d/10-defaults.conf would let guest in from anywhere (loopback_users = []).
    expect(await exec(["cat", "/etc/rabbitmq/conf.d/10-defaults.conf"])).toContain("loopback_users.guest = false");
    expect(await evalErl("application:get_env(rabbit, loopback_users).")).toContain('{ok,[<<"guest">>]}');
  });
});

describe("listeners on the published ports", () => {
  const tlsHandshake = (p: number) =>
    new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: "127.0.0.1", port: p, ca: caCertPem, servername: "localhost" }, () => {
        const protocol = s.getProtocol() ?? "";
        s.destroy();
        resolve(protocol);
      });
      s.once("error", reject);
    });

  it("answers TLS with the platform's CA on MQTT, Web MQTT, management and the tenant port", async () => {
    const t = broker.tls!;
    for (const p of [t.mqttsPort, t.webMqttsPort, t.managementHttpsPort, t.tenantMqttsPort]) expect(await tlsHandshake(p)).toMatch(/^TLSv1\.[23]$/);
  });

  it("answers on the plaintext ports the dev stack keeps", async () => {
    for (const p of [broker.mqttPort, broker.webMqttPort, broker.managementPort, broker.amqpPort, broker.tenantMqttPort]) expect(await portOpen(p)).toBe(true);
  });

  it("serves the management API over HTTPS on the URL the stack exports", async () => {
    const url = new URL(String(docker.outputs["managementUrl"]));
    expect(Number(url.port)).toBe(broker.tls!.managementHttpsPort);
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request(
        { host: url.hostname, port: url.port, path: "/api/overview", ca: caCertPem, auth: `${broker.adminUsername}:${broker.adminPassword}` },
        (r) => {
          let body = "";
          r.on("data", (c: Buffer) => (body += c.toString()));
          r.on("end", () => resolve({ status: r.statusCode ?? 0, body }));
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body) as { rabbitmq_version: string }).rabbitmq_version).toBe(broker.version);
  });
});

describe("token sign-in, as the stack renders it into the container", () => {
  const VHOST = "token-signin";
  const tokens = docker.outputs["tokens"] as { resourceServerId: string; signingKeyId: string; publicKeysPem: Record<string, string> };
  const signing = (): SigningKey => {
    const pem = docker.tokenSigningKeys[tokens.signingKeyId];
    if (pem === undefined) throw new Error(`no private key for ${tokens.signingKeyId}`);
    return { kid: tokens.signingKeyId, privateKey: createPrivateKey(pem), publicKeyPem: tokens.publicKeysPem[tokens.signingKeyId] ?? "" };
  };
  const token = (user: string) => {
    const now = Math.floor(Date.now() / 1000);
    const scope = appScopes(
      { publish: [parseAppGrant("activity/{user}/#")], subscribe: [parseAppGrant("client/{client}/#")] },
      { vhost: VHOST, resourceServerId: tokens.resourceServerId, user, clientIds: 1 },
    );
    return rs256(signing(), { sub: user, aud: [tokens.resourceServerId], iat: now, exp: now + 300, scope });
  };

  beforeAll(async () => {
    await adminApiOk(broker, "PUT", `vhosts/${VHOST}`, {});
  });

  it("holds the public key the stack made in the file the config names, and nothing of the private key", async () => {
    expect(await exec(["cat", `/etc/rabbitmq/oauth2/${tokens.signingKeyId}.pem`])).toBe(tokens.publicKeysPem[tokens.signingKeyId]);
    expect(await exec(["sh", "-c", "grep -rl 'PRIVATE KEY' /etc/rabbitmq/oauth2 || true"])).toBe("");
  });

  it.each([
    ["MQTT over TLS", false],
    ["Web MQTT over TLS (wss)", true],
  ])("takes a token signed with the stack's signing key over %s, scoped to the user's own topics", async (_what, websocket) => {
    const port = websocket ? broker.tls!.webMqttsPort : broker.tls!.mqttsPort;
    const c = await mqttConnect({ port, websocket, tls: { ca: caCertPem }, clientId: "u1~1", username: `${VHOST}:app`, password: token("u1") });
    if (!c.ok) throw new Error(`refused: ${c.reason}`);
    try {
      expect((await trySubscribe(c.client, "client/u1~1/#")).outcome).toBe("granted");
      expect((await trySubscribe(c.client, "client/u2~1/#")).outcome).not.toBe("granted");
    } finally {
      await endQuietly(c.client);
    }
  });

  it("refuses a token signed with any other key", async () => {
    // The stack's key id, another key: what someone without the issuer's key could sign.
    const other = rsaSigningKey(tokens.signingKeyId);
    const now = Math.floor(Date.now() / 1000);
    const forged = rs256(other, { sub: "u1", aud: [tokens.resourceServerId], iat: now, exp: now + 300, scope: [`${tokens.resourceServerId}.read:${VHOST}/*`] });
    const c = await mqttConnect({ port: broker.tls!.mqttsPort, tls: { ca: caCertPem }, clientId: "u1~1", username: `${VHOST}:app`, password: forged });
    if (c.ok) await endQuietly(c.client);
    expect(c.ok).toBe(false);
  });
});

describe("the token issuer the dev stack deploys: a container built from issuer/, on the published port", () => {
  const ti = docker.tokenIssuer;
  const tokens = docker.outputs["tokens"] as { resourceServerId: string; signingKeyId: string; publicKeysPem: Record<string, string>; issuerUrl: string };
  const signIn = (idToken: string) =>
    new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
      const req = https.request(`${ti.url}/v1/tenants/${ti.tenant}/apps/${ti.app}/token`, { method: "POST", headers: { authorization: `Bearer ${idToken}` }, ca: caCertPem }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as Record<string, unknown> }));
      });
      req.on("error", reject);
      req.end();
    });
  const issuerExec = async (cmd: string[]) => {
    const r = await dockerExec(docker.socketPath, ti.container, cmd);
    if (r.code !== 0) throw new Error(`${cmd.join(" ")} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };

  beforeAll(async () => {
    await adminApiOk(broker, "PUT", `vhosts/${ti.vhost}`, {});
  });

  it("runs healthy as the image's unprivileged user, published on 127.0.0.1, with the key and config the stack uploaded", async () => {
    const info = await dockerCall<Inspect & { Config: { User: string } }>(docker.socketPath, "GET", `/containers/${ti.container}/json`);
    expect(info.State.Health.Status).toBe("healthy");
    expect(info.Config.User).toBe("1000:1000");
    expect(info.HostConfig.RestartPolicy.Name).toBe("unless-stopped");
    expect(ti.url).toBe(`https://127.0.0.1:${new URL(ti.url).port}`);
    expect(Object.values(info.HostConfig.PortBindings).flat()).toEqual([{ HostIp: "127.0.0.1", HostPort: new URL(ti.url).port }]);
    expect(await issuerExec(["stat", "-c", "%u %a", "/etc/token-issuer/keys/signing-key.pem", "/etc/token-issuer/tls/key.pem"])).toBe("1000 400\n1000 400\n");
    const file = JSON.parse(await issuerExec(["cat", "/etc/token-issuer/issuer.json"])) as { signingKeyId: string; issuerUrl: string; tenants: Record<string, { vhost: string }> };
    expect(file).toMatchObject({ signingKeyId: tokens.signingKeyId, issuerUrl: ti.url, tenants: { [ti.tenant]: { vhost: ti.vhost } } });
    // The broker's key file holds the public half of the very key the issuer signs with.
    const signingPem = await issuerExec(["cat", "/etc/token-issuer/keys/signing-key.pem"]);
    expect(createPublicKey(signingPem).export({ type: "spki", format: "pem" })).toBe(tokens.publicKeysPem[tokens.signingKeyId]);
  });

  it("signs a user in with its provider's ID token, and the broker token opens only that user's topics, over MQTT and Web MQTT", async () => {
    const res = await signIn(await idpToken(ti.idp, ti.audience, { sub: "alice" }));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ username: `${ti.vhost}:${ti.app}`, vhost: ti.vhost, user: "alice", clientIds: ["alice~1", "alice~2"] });
    const token = String(res.body["token"]);
    const { payload, protectedHeader } = await jwtVerify(token, createPublicKey(tokens.publicKeysPem[tokens.signingKeyId] ?? ""), { algorithms: ["RS256"], issuer: ti.url, audience: tokens.resourceServerId });
    expect(protectedHeader.kid).toBe(tokens.signingKeyId);
    expect(payload.sub).toBe("alice");
    for (const websocket of [false, true]) {
      const port = websocket ? broker.tls!.webMqttsPort : broker.tls!.mqttsPort;
      const c = await mqttConnect({ port, websocket, tls: { ca: caCertPem }, clientId: "alice~1", username: `${ti.vhost}:${ti.app}`, password: token });
      if (!c.ok) throw new Error(`refused: ${c.reason}`);
      try {
        expect((await trySubscribe(c.client, "client/alice~1/#")).outcome).toBe("granted");
        expect(await tryPublish(c.client, "activity/alice/login", "hello")).toBe("acked");
        expect((await trySubscribe(c.client, "client/bob~1/#")).outcome).not.toBe("granted");
      } finally {
        await endQuietly(c.client);
      }
    }
  });

  it.each([
    ["a user id that could widen a scope", async () => idpToken(ti.idp, ti.audience, { sub: "*" }), 403],
    ["an ID token for another app", async () => idpToken(ti.idp, "another-app", { sub: "alice" }), 401],
    ["an ID token signed by a key the provider does not publish", async () => idpToken(ti.idp, ti.audience, { sub: "alice" }, generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey), 401],
  ])("refuses %s", async (_what, make, status) => {
    const res = await signIn(await make());
    expect(res.status).toBe(status);
    expect(res.body["token"]).toBeUndefined();
  });
});

describe("the tuning, seen from inside the container", () => {
  it("gives the broker the open-files limit the stack set: the machine's hard limit, since it is below the tuning's", async () => {
    const limit = hostOpenFilesLimit();
    expect(limit).toBeLessThan(tuning.openFiles);
    expect(await exec(["sh", "-c", "awk '/^Max open files/ { print $4, $5 }' /proc/1/limits"])).toBe(`${limit} ${limit}\n`);
    const status = JSON.parse(await exec(["rabbitmq-diagnostics", "status", "--formatter", "json"])) as {
      file_descriptors?: { total_limit: number };
      processes: { limit: number };
    };
    if (versionAtLeast(broker, 4, 3)) {
      // Seen on 4.3.6: `status` has no file-descriptor section any more (3.10.8 and 4.0.5 have one);
      // /proc (above) is the proof there.
      expect(status.file_descriptors).toBeUndefined();
    } else {
      // RabbitMQ keeps a few descriptors for itself: its limit follows the ulimit.
      expect(status.file_descriptors?.total_limit).toBeGreaterThan(limit - 200);
      expect(status.file_descriptors?.total_limit).toBeLessThanOrEqual(limit);
    }
    expect(status.processes.limit).toBe(tuning.erlMaxProcesses);
    expect(await evalErl("erlang:system_info(port_limit).")).toBe(`${tuning.erlMaxPorts}\n`);
  });

  it("reports what the machine could not give, instead of hiding it", () => {
    expect(docker.outputs["tuningNotApplied"]).toEqual([
      `nofile ${tuning.openFiles}: the Docker host allows at most ${hostOpenFilesLimit()} (platform.docker.maxOpenFiles), so each node holds fewer ` +
        `than ${tuning.openFiles} sockets and files; raise the host's limit (fs.nr_open, the engine's LimitNOFILE) to get the rest`,
    ]);
  });

  it("sets every net.* sysctl of the tuning in the container's network namespace", async () => {
    for (const [key, value] of Object.entries(tuning.sysctls)) {
      expect(await exec(["cat", `/proc/sys/${key.replaceAll(".", "/")}`]), key).toBe(`${value}\n`);
    }
  });

  it("caps each listener's connections below the open files the node really has (and all MQTT connections on 4.3)", async () => {
    const cap = connectionMax(hostOpenFilesLimit());
    const ranchKey = versionAtLeast(broker, 4, 0) ? "ranch_connection_max" : "connection_max";
    expect(await evalErl(`application:get_env(rabbit, ${ranchKey}).`)).toBe(`{ok,${cap}}\n`);
    expect(await evalErl("application:get_env(rabbitmq_web_mqtt, max_connections).")).toBe(`{ok,${cap}}\n`);
    expect(await evalErl("application:get_env(rabbitmq_mqtt, max_connections).")).toBe(versionAtLeast(broker, 4, 3) ? `{ok,${cap}}\n` : "undefined\n");
    // The MQTT listeners' ranch max_connections, as the node runs them.
    const listeners = await evalErl("lists:sort([{maps:get(port, I), maps:get(max_connections, I)} || {_, I} <- maps:to_list(ranch:info())]).");
    const listenerPorts = (docker.platformConfig["broker"] as { listeners: { mqtt: number; mqtts: number } }).listeners;
    for (const port of [listenerPorts.mqtt, listenerPorts.mqtts]) expect(listeners).toContain(`{${port},${cap}}`);
  });

  it("opens the MQTT listeners with the tuning's socket options", async () => {
    const opts = await evalErl("application:get_env(rabbitmq_mqtt, tcp_listen_options).");
    expect(opts).toContain(`{backlog,${tuning.mqttListen.backlog}}`);
    expect(opts).toContain("{nodelay,true}");
    expect(opts).toContain("{keepalive,true}");
  });
});

describe("the hooks refuse what they cannot apply", () => {
  it("a container asking for more open files than the machine allows does not start: the engine refuses it", async () => {
    const name = `${docker.prefix}-nofile`;
    await dockerCall(docker.socketPath, "DELETE", `/containers/${name}?force=true`).catch(() => undefined);
    const image = docker.image;
    const attempt = applyDockerResource(
      { socketPath: docker.socketPath, images: {} },
      "docker:index/container:Container",
      name,
      { name, image, ulimits: [{ name: "nofile", soft: hostOpenFilesLimit() + 1, hard: hostOpenFilesLimit() + 1 }] },
    );
    await expect(attempt).rejects.toThrow(/rlimit|operation not permitted/i);
    await dockerCall(docker.socketPath, "DELETE", `/containers/${name}?force=true`).catch(() => undefined);
  });

  it("an input with no rule to apply it fails the registration", async () => {
    await expect(
      applyDockerResource({ socketPath: docker.socketPath, images: {} }, "docker:index/container:Container", "x", { name: "x", image: docker.image, privileged: true }),
    ).rejects.toThrow(/cannot apply input\(s\) privileged/);
  });
});
