/**
 * The platform stack program and the DockerBroker component under mocks: what is registered for
 * the shipped dev stack and for a cluster, with which settings, and that bad config fails before
 * any resource.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { describe, expect, it, vi } from "vitest";
import { ConfigError } from "../../core/errors";
import { RecordingMocks, drain, settle, type Recorded } from "../support/recording-mocks";

const PROJECT = "rabbitmq-mqtt";
const devConfig = (parse(readFileSync(path.join(__dirname, "../../Pulumi.dev.yaml"), "utf8")) as { config: Record<string, unknown> }).config;

async function runPlatform(platform: unknown) {
  vi.resetModules();
  const mocks = new RecordingMocks();
  await pulumi.runtime.setMocks(mocks, PROJECT, "dev", false);
  pulumi.runtime.setAllConfig({ [`${PROJECT}:stackType`]: "platform", [`${PROJECT}:platform`]: JSON.stringify(platform) });
  const mod = (await import("../../stacks/index")) as unknown as { default: Record<string, pulumi.Output<unknown>> };
  return { mocks, outputs: mod.default };
}

/** The broker's containers (the token issuer's is another component's). */
const brokerContainers = (mocks: RecordingMocks) => mocks.byType("docker:index/container:Container").filter((c) => c.parent.includes("DockerBroker"));

const upload = (c: Recorded, file: string) =>
  (c.inputs["uploads"] as { file: string; content: string; permissions: string; owner: string }[]).find((u) => u.file === file);

describe("the shipped dev platform stack (Docker, one node)", async () => {
  const { mocks, outputs } = await runPlatform(devConfig[`${PROJECT}:platform`]);
  const out = await settle(outputs["adminPassword"]!);
  await drain();
  const [container] = brokerContainers(mocks);

  it("declares one network, the pinned image, one data volume and one container", () => {
    expect(mocks.byType("docker:index/network:Network").map((n) => n.inputs["name"])).toEqual(["rabbitmq-mqtt-dev"]);
    expect(mocks.byType("docker:index/remoteImage:RemoteImage").map((i) => i.inputs["name"])).toEqual(["rabbitmq:4.3.6-management"]);
    expect(mocks.byType("docker:index/volume:Volume")).toHaveLength(1);
    expect(container?.inputs).toMatchObject({ name: "rabbitmq-0", hostname: "rabbitmq-0", image: "sha256:image-of-rabbitmq:4.3.6-management", restart: "unless-stopped" });
  });

  it("uploads the rendered rabbitmq.conf (with the generated admin password) as a secret, owner-only", () => {
    expect(container?.secretInputs).toContain("uploads");
    const conf = upload(container!, "/etc/rabbitmq/rabbitmq-mqtt.d/10-rendered.conf");
    expect(conf?.permissions).toBe("0600");
    expect(conf?.content).toContain("# Rendered by rabbitmq-mqtt for RabbitMQ 4.3.6");
    expect(conf?.content).toContain("default_pass = generated-rabbitmq-admin-password");
    expect(conf?.content).toContain("mqtt.listeners.ssl.tenant_18883 = 18883");
    expect(conf?.content).toContain("ssl_options.cacertfile = /etc/rabbitmq/tls/ca.pem");
    // acme has an intermediate CA: one intermediate may sit between a client and the root.
    expect(conf?.content).toContain("ssl_options.depth = 1");
    expect(conf?.content).not.toMatch(/cluster_formation/);
    expect(upload(container!, "/etc/rabbitmq/enabled_plugins")?.content).toBe("[rabbitmq_management,rabbitmq_mqtt,rabbitmq_web_mqtt,rabbitmq_auth_backend_oauth2].\n");
    expect(upload(container!, "/var/lib/rabbitmq/.erlang.cookie")).toMatchObject({ content: "generated-rabbitmq-erlang-cookie", permissions: "0400" });
  });

  it("publishes every listener on 127.0.0.1 only: TLS ones, and the plaintext ones the dev stack keeps", () => {
    expect(container?.inputs["ports"]).toEqual([
      { internal: 8883, external: 8883, ip: "127.0.0.1" },
      { internal: 15676, external: 15676, ip: "127.0.0.1" },
      { internal: 15671, external: 15671, ip: "127.0.0.1" },
      { internal: 18883, external: 18883, ip: "127.0.0.1" },
      { internal: 1883, external: 1883, ip: "127.0.0.1" },
      { internal: 15675, external: 15675, ip: "127.0.0.1" },
      { internal: 15672, external: 15672, ip: "127.0.0.1" },
      { internal: 5672, external: 5672, ip: "127.0.0.1" },
      { internal: 11883, external: 11883, ip: "127.0.0.1" },
    ]);
  });

  it("uploads the CA, the broker's certificate chain and its key (secret, owner-only)", () => {
    expect(upload(container!, "/etc/rabbitmq/tls/ca.pem")).toMatchObject({ content: "CERT of pki-root-cert", permissions: "0644" });
    expect(upload(container!, "/etc/rabbitmq/tls/cert.pem")).toMatchObject({ content: "CERT of pki-broker-cert\n", permissions: "0644" });
    expect(upload(container!, "/etc/rabbitmq/tls/key.pem")).toMatchObject({ content: "PRIVATE KEY of pki-broker-key", permissions: "0600", owner: "999" });
  });

  it("issues a root CA, acme's intermediate and a broker certificate with the node's names", () => {
    const root = mocks.one("tls:index/selfSignedCert:SelfSignedCert", "pki-root-cert");
    expect(root.inputs).toMatchObject({ isCaCertificate: true, subject: { commonName: "rabbitmq-mqtt dev root CA", organization: "Example Dev" }, validityPeriodHours: 87600 });
    expect(mocks.one("tls:index/privateKey:PrivateKey", "pki-root-key").inputs).toMatchObject({ algorithm: "ECDSA", ecdsaCurve: "P256" });
    const acme = mocks.one("tls:index/locallySignedCert:LocallySignedCert", "pki-tenant-acme-cert");
    expect(acme.inputs).toMatchObject({ isCaCertificate: true, caCertPem: "CERT of pki-root-cert", allowedUses: ["cert_signing", "crl_signing", "digital_signature", "client_auth"] });
    expect(acme.secretInputs).toContain("caPrivateKeyPem");
    const csr = mocks.one("tls:index/certRequest:CertRequest", "pki-broker-csr");
    expect(csr.inputs).toMatchObject({ dnsNames: ["rabbitmq-0", "localhost"], ipAddresses: ["127.0.0.1"] });
    expect(mocks.one("tls:index/locallySignedCert:LocallySignedCert", "pki-broker-cert").inputs).toMatchObject({
      allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
      isCaCertificate: false,
      validityPeriodHours: 8760,
      earlyRenewalHours: 720,
    });
  });

  it("applies the tuning: sysctls, nofile ulimit, Erlang flags (and no +A)", () => {
    expect(container?.inputs["sysctls"]).toMatchObject({ "net.core.somaxconn": "8192", "net.ipv4.tcp_max_syn_backlog": "8192", "net.ipv4.tcp_fin_timeout": "30" });
    expect(container?.inputs["ulimits"]).toEqual([{ name: "nofile", soft: 65536, hard: 65536 }]);
    expect(container?.inputs["envs"]).toEqual([
      "RABBITMQ_NODENAME=rabbit@rabbitmq-0",
      // Only the rendered file: the image's own conf.d defaults would otherwise override it.
      "RABBITMQ_CONFIG_FILES=/etc/rabbitmq/rabbitmq-mqtt.d",
      "ERL_MAX_PORTS=65536",
      "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=+P 1048576",
    ]);
  });

  it("replaces a container by removing the old one first: its name and host ports are fixed", () => {
    expect(container?.deleteBeforeReplace).toBe(true);
  });

  it("checks health with rabbitmq-diagnostics and keeps data on the volume", () => {
    expect(container?.inputs["healthcheck"]).toMatchObject({ tests: ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"] });
    expect(container?.inputs["volumes"]).toEqual([{ volumeName: "rabbitmq-0-data", containerPath: "/var/lib/rabbitmq/mnesia" }]);
  });

  it("exports what tenant stacks read, the admin password only as a secret", async () => {
    expect(out.secret).toBe(true);
    expect((await settle(outputs["managementUrl"]!)).value).toBe("https://127.0.0.1:15671");
    expect((await settle(outputs["adminUsername"]!)).value).toBe("admin");
    const endpoints = await settle(outputs["mqttEndpoints"]!);
    expect(endpoints).toEqual({
      value: ["mqtts://127.0.0.1:8883", "wss://127.0.0.1:15676/ws", "mqtts://127.0.0.1:18883", "mqtt://127.0.0.1:1883", "ws://127.0.0.1:15675/ws", "mqtt://127.0.0.1:11883"],
      secret: false,
    });
    expect(await settle(outputs["caCertificatePem"]!)).toEqual({ value: "CERT of pki-root-cert", secret: false });
    expect(await settle(outputs["certificateLoginFrom"]!)).toEqual({ value: "distinguished_name", secret: false });
    const issuers = await settle(outputs["certificateIssuers"]!);
    expect(issuers.secret).toBe(true);
    expect(issuers.value).toEqual({
      root: { certPem: "CERT of pki-root-cert", privateKeyPem: "PRIVATE KEY of pki-root-key", chainPem: "" },
      tenants: { acme: { certPem: "CERT of pki-tenant-acme-cert", privateKeyPem: "PRIVATE KEY of pki-tenant-acme-key", chainPem: "CERT of pki-tenant-acme-cert\n" } },
    });
  });

  it("token sign-in: an RSA 3072 signing key, its public key uploaded for the broker and exported, its private key nowhere else", async () => {
    const [key, ...more] = mocks.byType("tls:index/privateKey:PrivateKey").filter((k) => k.name.startsWith("token-keys-"));
    expect(more).toEqual([]);
    expect(key).toMatchObject({ name: "token-keys-k1", inputs: { algorithm: "RSA", rsaBits: 3072 } });
    expect(key?.additionalSecretOutputs).toEqual(expect.arrayContaining(["privateKeyPem"]));
    expect(upload(container!, "/etc/rabbitmq/oauth2/k1.pem")).toMatchObject({ content: "PUBLIC KEY of token-keys-k1", permissions: "0644" });
    expect(upload(container!, "/etc/rabbitmq/rabbitmq-mqtt.d/10-rendered.conf")?.content).toContain("auth_oauth2.signing_keys.k1 = /etc/rabbitmq/oauth2/k1.pem");
    expect(await settle(outputs["tokens"]!)).toEqual({
      value: { resourceServerId: "rabbitmq", algorithm: "RS256", signingKeyId: "k1", publicKeysPem: { k1: "PUBLIC KEY of token-keys-k1" }, issuerUrl: "https://127.0.0.1:8443" },
      secret: false,
    });
    const everything = JSON.stringify([brokerContainers(mocks).map((c) => c.inputs), await Promise.all(Object.values(outputs).map((o) => settle(o)))]);
    expect(everything).not.toContain("PRIVATE KEY of token-keys");
    // The one place it goes: the token issuer's container, as a secret (tests/unit/token-issuer-deploy.test.ts).
  });
});

describe("a key rotation: two signing keys in force, the newest first", async () => {
  const platform = devConfig[`${PROJECT}:platform`] as { broker: Record<string, unknown> };
  const { mocks, outputs } = await runPlatform({ ...platform, broker: { ...platform.broker, tokens: { signingKeys: ["k2", "k1"] } } });
  await settle(outputs["adminPassword"]!);
  await drain();
  const [container] = brokerContainers(mocks);

  it("keeps a key per id, uploads both public keys, renders both, and signs with the first", async () => {
    expect(mocks.byType("tls:index/privateKey:PrivateKey").map((k) => k.name).filter((n) => n.startsWith("token-keys-"))).toEqual(["token-keys-k2", "token-keys-k1"]);
    for (const id of ["k1", "k2"]) {
      expect(upload(container!, `/etc/rabbitmq/oauth2/${id}.pem`)?.content).toBe(`PUBLIC KEY of token-keys-${id}`);
      expect(upload(container!, "/etc/rabbitmq/rabbitmq-mqtt.d/10-rendered.conf")?.content).toContain(`auth_oauth2.signing_keys.${id} = /etc/rabbitmq/oauth2/${id}.pem`);
    }
    expect(((await settle(outputs["tokens"]!)).value as { signingKeyId: string }).signingKeyId).toBe("k2");
  });
});

describe("a platform without token sign-in", async () => {
  const platform = devConfig[`${PROJECT}:platform`] as { broker: Record<string, unknown> };
  const { tokens: _tokens, ...broker } = platform.broker;
  const { mocks, outputs } = await runPlatform({ ...platform, broker });
  await settle(outputs["adminPassword"]!);
  await drain();
  const [container] = brokerContainers(mocks);

  it("has no signing key, no key file, no OAuth 2 backend, and exports no token settings", async () => {
    expect(mocks.byType("tls:index/privateKey:PrivateKey").filter((k) => k.name.startsWith("token-keys-"))).toEqual([]);
    expect((container?.inputs["uploads"] as { file: string }[]).map((u) => u.file).filter((f) => f.includes("oauth2"))).toEqual([]);
    expect(upload(container!, "/etc/rabbitmq/rabbitmq-mqtt.d/10-rendered.conf")?.content).not.toMatch(/auth_oauth2|auth_backends/);
    expect((await settle(outputs["tokens"]!)).value).toBeUndefined();
  });
});

describe("a three-node Docker cluster", async () => {
  const { mocks } = await runPlatform({ target: "docker", image: "rabbitmq:4.0.9-management", nodes: 3, broker: { version: "4.0.9" } });
  await drain();
  const containers = brokerContainers(mocks);

  it("renders classic peer discovery of all three nodes into every node, with one shared cookie", () => {
    expect(containers.map((c) => c.inputs["hostname"])).toEqual(["rabbitmq-0", "rabbitmq-1", "rabbitmq-2"]);
    for (const c of containers) {
      const conf = upload(c, "/etc/rabbitmq/rabbitmq-mqtt.d/10-rendered.conf")?.content ?? "";
      expect(conf).toContain("cluster_formation.classic_config.nodes.3 = rabbit@rabbitmq-2");
      expect(conf).toContain("cluster_partition_handling = pause_minority");
      expect(conf).toContain("mqtt.durable_queue_type = quorum");
      expect(upload(c, "/var/lib/rabbitmq/.erlang.cookie")?.content).toBe("generated-rabbitmq-erlang-cookie");
    }
    expect(mocks.byType("random:index/randomPassword:RandomPassword").map((r) => r.name)).toEqual(["rabbitmq-admin-password", "rabbitmq-erlang-cookie"]);
  });

  it("publishes node i's ports at port + 100 x i", () => {
    expect((containers[2]?.inputs["ports"] as { external: number }[]).map((p) => p.external)).toEqual([9083, 15876, 15871]);
  });

  it("creates the nodes of a 4.0 cluster at once, without waiting for health", () => {
    for (const c of containers) expect(c.inputs["wait"]).toBeUndefined();
  });
});

describe("a three-node Docker cluster of 3.10", async () => {
  const { mocks } = await runPlatform({ target: "docker", image: "rabbitmq:3.10.8-management", nodes: 3, broker: { version: "3.10.8" } });
  await drain();
  const containers = brokerContainers(mocks);

  it("starts its nodes one by one: each container waits for its health check (MQTT client-id Raft before 3.13)", () => {
    expect(containers).toHaveLength(3);
    for (const c of containers) expect(c.inputs).toMatchObject({ wait: true, waitTimeout: 300 });
  });
});

describe("a three-node Kubernetes cluster of 3.10", async () => {
  const platform = structuredClone(prodConfig[`${PROJECT}:platform`]) as { image: string; broker: Record<string, unknown> };
  const { mocks } = await runPlatform({ ...platform, image: "rabbitmq:3.10.8-management", broker: { ...platform.broker, version: "3.10.8" } });
  await drain();

  it("starts its pods one by one, each once the previous is ready (MQTT client-id Raft before 3.13)", () => {
    const [sts] = mocks.byType("kubernetes:apps/v1:StatefulSet");
    expect((sts?.inputs["spec"] as { podManagementPolicy: string }).podManagementPolicy).toBe("OrderedReady");
  });
});

describe("two platforms on one Docker host: docker.namePrefix, and a host that caps open files", async () => {
  const { mocks, outputs } = await runPlatform({
    target: "docker",
    image: "rabbitmq:4.3.6-management",
    nodes: 2,
    broker: { version: "4.3.6" },
    docker: { network: "mqtt-staging", namePrefix: "mqtt-staging", maxOpenFiles: 20000 },
  });
  const gaps = await settle(outputs["tuningNotApplied"]!);
  await drain();
  const containers = brokerContainers(mocks);

  it("names containers, host names, Erlang nodes and volumes after the prefix; logical names stay the component's", () => {
    expect(containers.map((c) => [c.name, c.inputs["name"], c.inputs["hostname"]])).toEqual([
      ["rabbitmq-0", "mqtt-staging-0", "mqtt-staging-0"],
      ["rabbitmq-1", "mqtt-staging-1", "mqtt-staging-1"],
    ]);
    expect(containers[1]?.inputs["envs"]).toContain("RABBITMQ_NODENAME=rabbit@mqtt-staging-1");
    expect(upload(containers[0]!, "/etc/rabbitmq/rabbitmq-mqtt.d/10-rendered.conf")?.content).toContain("cluster_formation.classic_config.nodes.2 = rabbit@mqtt-staging-1");
    expect(mocks.byType("docker:index/volume:Volume").map((v) => v.inputs["name"])).toEqual(["mqtt-staging-0-data", "mqtt-staging-1-data"]);
    expect(mocks.one("tls:index/certRequest:CertRequest", "pki-broker-csr").inputs["dnsNames"]).toEqual(expect.arrayContaining(["mqtt-staging-0", "mqtt-staging-1"]));
  });

  it("gives each container the host's open-files limit and reports what the tuning wanted", () => {
    for (const c of containers) expect(c.inputs["ulimits"]).toEqual([{ name: "nofile", soft: 20000, hard: 20000 }]);
    // A full listener leaves the node 500 descriptors of the 20000 it really has, not of the 65536 wanted.
    expect(upload(containers[0]!, "/etc/rabbitmq/rabbitmq-mqtt.d/10-rendered.conf")?.content).toContain("ranch_connection_max = 19500\n");
    expect(gaps.value).toEqual([expect.stringMatching(/^nofile 65536: the Docker host allows at most 20000 \(platform\.docker\.maxOpenFiles\)/)]);
  });
});

describe("a Docker host with no open-files cap", async () => {
  const { mocks, outputs } = await runPlatform({ target: "docker", image: "rabbitmq:4.3.6-management", broker: { version: "4.3.6" } });
  const gaps = await settle(outputs["tuningNotApplied"]!);
  await drain();

  it("gets the tuning's nofile and reports nothing missing", () => {
    expect(brokerContainers(mocks)[0]?.inputs["ulimits"]).toEqual([{ name: "nofile", soft: 65536, hard: 65536 }]);
    expect(gaps.value).toEqual([]);
  });
});

const prodConfig = (parse(readFileSync(path.join(__dirname, "../../Pulumi.platform-prod.yaml"), "utf8")) as { config: Record<string, unknown> }).config;

describe("the shipped production platform stack (Kubernetes, three nodes)", async () => {
  const { mocks, outputs } = await runPlatform(prodConfig[`${PROJECT}:platform`]);
  await settle(outputs["adminPassword"]!);
  await drain();
  const [sts] = mocks.byType("kubernetes:apps/v1:StatefulSet");
  const spec = sts?.inputs["spec"] as {
    replicas: number;
    serviceName: string;
    podManagementPolicy: string;
    template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[]; initContainers: Record<string, unknown>[] } };
    volumeClaimTemplates: { spec: { resources: { requests: { storage: string } } } }[];
  };
  const pod = spec.template.spec;

  it("runs three replicas behind a headless service, with a volume claim each", () => {
    expect(spec.replicas).toBe(3);
    expect(spec.serviceName).toBe("rabbitmq-nodes");
    expect(spec.volumeClaimTemplates[0]?.spec.resources.requests.storage).toBe("50Gi");
    const headless = mocks.one("kubernetes:core/v1:Service", "rabbitmq-nodes").inputs["spec"] as Record<string, unknown>;
    expect(headless).toMatchObject({ clusterIP: "None", publishNotReadyAddresses: true });
  });

  it("starts all pods at once: a new 4.3 cluster's first node does not boot until its peers are up", () => {
    // With OrderedReady the first pod would never become ready (seen with local 4.3.6 nodes: README).
    expect(spec.podManagementPolicy).toBe("Parallel");
  });

  it("renders classic peer discovery of the pods' stable DNS names into a Secret, with the memory limit", () => {
    const secret = mocks.one("kubernetes:core/v1:Secret", "rabbitmq-config");
    expect(secret.secretInputs).toContain("stringData");
    const conf = (secret.inputs["stringData"] as Record<string, string>)["rabbitmq.conf"] ?? "";
    expect(conf).toContain("cluster_formation.classic_config.nodes.3 = rabbit@rabbitmq-2.rabbitmq-nodes.rabbitmq.svc.cluster.local");
    expect(conf).toContain(`total_memory_available_override_value = ${8 * 2 ** 30}`);
    expect(conf).toContain("mqtt.tcp_listen_options.backlog = 65535");
    const env = (pod.containers[0]?.["env"] as { name: string; value?: string }[]).filter((e) => e.value !== undefined);
    expect(env).toEqual(expect.arrayContaining([{ name: "RABBITMQ_USE_LONGNAME", value: "true" }, { name: "RABBITMQ_NODENAME", value: "rabbit@$(MY_POD_NAME).rabbitmq-nodes.rabbitmq.svc.cluster.local" }]));
  });

  it("exposes one Service per listener; management and AMQP stay inside the cluster", () => {
    const services = Object.fromEntries(
      mocks.byType("kubernetes:core/v1:Service").filter((s) => s.parent.includes("KubernetesBroker")).map((s) => [s.name, (s.inputs["spec"] as { type?: string }).type ?? "headless"]),
    );
    expect(services).toEqual({
      "rabbitmq-nodes": "headless",
      "rabbitmq-mqtts": "LoadBalancer",
      "rabbitmq-web-mqtts": "LoadBalancer",
      "rabbitmq-management-tls": "ClusterIP",
      "rabbitmq-mqtts-18883": "LoadBalancer",
    });
  });

  it("mounts the TLS Secret read-only and rolls the pods when the certificate changes", () => {
    const tlsSecret = mocks.one("kubernetes:core/v1:Secret", "rabbitmq-tls");
    expect(tlsSecret.secretInputs).toContain("stringData");
    expect(Object.keys(tlsSecret.inputs["stringData"] as object)).toEqual(["ca.pem", "cert.pem", "key.pem"]);
    expect(pod.containers[0]?.["volumeMounts"]).toEqual(expect.arrayContaining([{ name: "tls", mountPath: "/etc/rabbitmq/tls", readOnly: true }]));
    expect(pod["volumes"]).toEqual(expect.arrayContaining([{ name: "tls", secret: { secretName: "rabbitmq-tls", defaultMode: 0o440 } }]));
    const annotations = (sts?.inputs["spec"] as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations;
    expect(annotations["rabbitmq-mqtt/tls-certificate"]).toMatch(/^[0-9a-f]{16}$/);
  });

  it("mounts the token signing keys' public keys from a ConfigMap and rolls the pods when they change", () => {
    const keys = mocks.one("kubernetes:core/v1:ConfigMap", "rabbitmq-token-keys");
    expect(keys.inputs["data"]).toEqual({ "k1.pem": "PUBLIC KEY of token-keys-k1" });
    expect(pod.containers[0]?.["volumeMounts"]).toEqual(expect.arrayContaining([{ name: "token-keys", mountPath: "/etc/rabbitmq/oauth2", readOnly: true }]));
    expect(pod["volumes"]).toEqual(expect.arrayContaining([{ name: "token-keys", configMap: { name: "rabbitmq-token-keys" } }]));
    const annotations = (sts?.inputs["spec"] as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations;
    expect(annotations["rabbitmq-mqtt/token-keys"]).toMatch(/^[0-9a-f]{16}$/);
    const conf = (mocks.one("kubernetes:core/v1:Secret", "rabbitmq-config").inputs["stringData"] as Record<string, string>)["rabbitmq.conf"];
    expect(conf).toContain("auth_oauth2.signing_keys.k1 = /etc/rabbitmq/oauth2/k1.pem");
    expect(conf).toContain("auth_oauth2.require_exp = true");
  });

  it("names every pod and Service in the broker certificate, plus the configured public name", () => {
    const names = mocks.one("tls:index/certRequest:CertRequest", "pki-broker-csr").inputs["dnsNames"] as string[];
    expect(names).toEqual(
      expect.arrayContaining([
        "rabbitmq-0.rabbitmq-nodes.rabbitmq.svc.cluster.local",
        "rabbitmq-2.rabbitmq-nodes.rabbitmq.svc",
        "rabbitmq-mqtts",
        "rabbitmq-mqtts.rabbitmq.svc.cluster.local",
        "rabbitmq-management-tls.rabbitmq.svc",
        "mqtt.example.com",
      ]),
    );
    expect(mocks.one("tls:index/privateKey:PrivateKey", "pki-broker-key").inputs).toMatchObject({ algorithm: "ECDSA", ecdsaCurve: "P384" });
    const conf = (mocks.one("kubernetes:core/v1:Secret", "rabbitmq-config").inputs["stringData"] as Record<string, string>)["rabbitmq.conf"] ?? "";
    expect(conf).toContain("mqtt.listeners.tcp = none");
    expect(conf).not.toMatch(/management\.tcp|listeners\.tcp\.default/);
  });

  it("probes readiness on the MQTT-over-TLS port and liveness with rabbitmq-diagnostics", () => {
    const c = pod.containers[0]!;
    expect(c["readinessProbe"]).toMatchObject({ tcpSocket: { port: 8883 } });
    expect(c["livenessProbe"]).toMatchObject({ exec: { command: ["rabbitmq-diagnostics", "-q", "ping"] } });
  });

  it("mounts rabbitmq.conf and the cookie from the Secret readable by the rabbitmq group only, and copies the cookie owner-only", () => {
    expect(pod.containers[0]?.["volumeMounts"]).toEqual(
      expect.arrayContaining([{ name: "config", mountPath: "/etc/rabbitmq/rabbitmq-mqtt.d/10-rendered.conf", subPath: "rabbitmq.conf" }]),
    );
    expect(pod.containers[0]?.["env"]).toEqual(expect.arrayContaining([{ name: "RABBITMQ_CONFIG_FILES", value: "/etc/rabbitmq/rabbitmq-mqtt.d" }]));
    expect(pod["volumes"]).toEqual(
      expect.arrayContaining([{ name: "config", secret: { secretName: "rabbitmq-config", defaultMode: 0o440 } }]),
    );
    const setup = pod.initContainers.find((c) => c["name"] === "setup");
    expect((setup?.["command"] as string[])[2]).toContain("chmod 400 /var/lib/rabbitmq/.erlang.cookie");
  });

  it("keeps a quorum through voluntary disruptions and spreads pods over nodes, with requests = limits", () => {
    expect(mocks.one("kubernetes:policy/v1:PodDisruptionBudget", "rabbitmq-pdb").inputs["spec"]).toMatchObject({ maxUnavailable: 1 });
    expect(pod["affinity"]).toMatchObject({ podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: "kubernetes.io/hostname" }] } });
    expect(pod.containers[0]?.["resources"]).toEqual({ requests: { cpu: "4", memory: "8Gi" }, limits: { cpu: "4", memory: "8Gi" } });
  });

  it("sets the pod-safe sysctls in the pod and the others in an opted-in privileged init container", () => {
    expect((pod["securityContext"] as { sysctls: { name: string }[] }).sysctls.map((s) => s.name).sort()).toEqual([
      "net.ipv4.tcp_fin_timeout",
      "net.ipv4.tcp_keepalive_intvl",
      "net.ipv4.tcp_keepalive_probes",
      "net.ipv4.tcp_keepalive_time",
    ]);
    const init = pod.initContainers.find((c) => c["name"] === "sysctls");
    expect(init?.["securityContext"]).toMatchObject({ privileged: true });
    expect((init?.["command"] as string[])[2]).toBe("sysctl -w net.core.somaxconn=65535 && sysctl -w net.ipv4.tcp_max_syn_backlog=65535");
  });

  it("tells the stack what Kubernetes cannot apply (the nofile ulimit)", async () => {
    const gaps = (await settle(outputs["tuningNotApplied"]!)).value as string[];
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatch(/^nofile 300000: Kubernetes has no per-pod ulimit/);
  });
});

describe("bad platform config fails before any resource is registered", () => {
  it.each<[string, unknown, RegExp]>([
    ["no platform", undefined, /platform: required/],
    ["unknown target", { target: "nomad", image: "rabbitmq:4.0.9", broker: { version: "4.0.9" } }, /platform\.target: must be one of: docker, kubernetes/],
    ["unpinned image", { target: "docker", image: "rabbitmq:latest", broker: { version: "4.0.9" } }, /platform\.image: must be pinned/],
    ["untagged image", { target: "docker", image: "rabbitmq", broker: { version: "4.0.9" } }, /platform\.image: must be pinned/],
    ["image on a word tag", { target: "docker", image: "rabbitmq:management", broker: { version: "4.0.9" } }, /platform\.image: must be pinned/],
    ["image and version disagree", { target: "docker", image: "rabbitmq:3.13.7-management", broker: { version: "4.0.9" } }, /platform\.broker\.version: is 4\.0\.9 but the image tag says 3\.13\.7/],
    ["too many nodes", { target: "docker", image: "rabbitmq:4.0.9", nodes: 10, broker: { version: "4.0.9" } }, /platform\.nodes: must be at most 9/],
    ["bad publish address", { target: "docker", image: "rabbitmq:4.0.9", broker: { version: "4.0.9" }, docker: { publishAddress: "localhost" } }, /platform\.docker\.publishAddress/],
    ["listener clash", { target: "docker", image: "rabbitmq:4.0.9", broker: { version: "4.0.9", listeners: { amqps: 8883 } } }, /platform\.broker\.listeners\.amqps: port 8883 is already used/],
    ["imported CA without its keys", { target: "docker", image: "rabbitmq:4.0.9", broker: { version: "4.0.9" }, pki: { ca: { source: "import" } } }, /pkiCaCertificate: required with platform\.pki\.ca\.source import[\s\S]*pkiCaPrivateKey: required/],
    ["kubernetes with two nodes", { target: "kubernetes", image: "rabbitmq:4.0.9", nodes: 2, broker: { version: "4.0.9" } }, /platform\.nodes: is 2; production on Kubernetes needs an odd number of at least 3/],
    ["kubernetes version", { target: "kubernetes", image: "rabbitmq:4.0.9", nodes: 3, broker: { version: "4.0.9" }, kubernetes: { version: "1.9" } }, /platform\.kubernetes\.version/],
    ["kubernetes memory", { target: "kubernetes", image: "rabbitmq:4.0.9", nodes: 3, broker: { version: "4.0.9" }, kubernetes: { memory: "4GB" } }, /platform\.kubernetes\.memory: a memory size such as 4Gi/],
    ["token issuer on kubernetes without image or url", { target: "kubernetes", image: "rabbitmq:4.0.9", nodes: 3, broker: { version: "4.0.9", tokens: { signingKeys: ["k1"], issuer: {} } } }, /platform\.broker\.tokens\.issuer\.image: required on kubernetes[\s\S]*platform\.broker\.tokens\.issuer\.url: required on kubernetes/],
    ["token issuer with one replica", { target: "kubernetes", image: "rabbitmq:4.0.9", nodes: 3, broker: { version: "4.0.9", tokens: { signingKeys: ["k1"], issuer: { replicas: 1 } } } }, /platform\.broker\.tokens\.issuer\.replicas: must be at least 2/],
    ["token issuer image unpinned", { target: "docker", image: "rabbitmq:4.0.9", broker: { version: "4.0.9", tokens: { signingKeys: ["k1"], issuer: { image: "token-issuer:latest" } } } }, /platform\.broker\.tokens\.issuer\.image: must be pinned/],
    ["token issuer on a listener's port", { target: "docker", image: "rabbitmq:4.0.9", broker: { version: "4.0.9", tokens: { signingKeys: ["k1"], issuer: { port: 8883 } } } }, /platform\.broker\.tokens\.issuer\.port: port 8883 is already used by platform\.broker\.listeners\.mqtts/],
    ["token issuer url over http", { target: "docker", image: "rabbitmq:4.0.9", broker: { version: "4.0.9", tokens: { signingKeys: ["k1"], issuer: { url: "http://127.0.0.1:8443" } } } }, /platform\.broker\.tokens\.issuer\.url: must be an https URL/],
    ["a tenant stack that is not <org>/<project>/<stack>", { target: "docker", image: "rabbitmq:4.0.9", broker: { version: "4.0.9", tokens: { signingKeys: ["k1"], issuer: { tenantStacks: ["acme"] } } } }, /platform\.broker\.tokens\.issuer\.tenantStacks\[0\]: must be <organization>\/<project>\/<stack>/],
    ["a tenant stack listed twice", { target: "docker", image: "rabbitmq:4.0.9", broker: { version: "4.0.9", tokens: { signingKeys: ["k1"], issuer: { tenantStacks: ["organization/rabbitmq-mqtt/acme", "organization/rabbitmq-mqtt/acme"] } } } }, /platform\.broker\.tokens\.issuer\.tenantStacks\[1\]: stack 'organization\/rabbitmq-mqtt\/acme' is listed twice/],
  ])("%s", async (_label, platform, message) => {
    vi.resetModules();
    const mocks = new RecordingMocks();
    await pulumi.runtime.setMocks(mocks, PROJECT, "dev", false);
    pulumi.runtime.setAllConfig({
      [`${PROJECT}:stackType`]: "platform",
      ...(platform !== undefined ? { [`${PROJECT}:platform`]: JSON.stringify(platform) } : {}),
    });
    const err = await import("../../stacks/index").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).name).toBe(ConfigError.name);
    expect((err as Error).message).toMatch(message);
    await drain();
    expect(mocks.records).toEqual([]);
  });
});

describe("an imported certificate authority", async () => {
  const CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBimported\n-----END CERTIFICATE-----\n";
  const KEY_PEM = "-----BEGIN EC PRIVATE KEY-----\nMHcimportedkey\n-----END EC PRIVATE KEY-----\n";
  vi.resetModules();
  const mocks = new RecordingMocks();
  await pulumi.runtime.setMocks(mocks, PROJECT, "dev", false);
  pulumi.runtime.setAllConfig(
    {
      [`${PROJECT}:stackType`]: "platform",
      [`${PROJECT}:platform`]: JSON.stringify({ target: "docker", image: "rabbitmq:4.0.9-management", broker: { version: "4.0.9" }, pki: { ca: { source: "import" } } }),
      [`${PROJECT}:pkiCaCertificate`]: CA_PEM,
      [`${PROJECT}:pkiCaPrivateKey`]: KEY_PEM,
    },
    [`${PROJECT}:pkiCaPrivateKey`],
  );
  const outputs = ((await import("../../stacks/index")) as unknown as { default: Record<string, pulumi.Output<unknown>> }).default;
  const issuers = await settle(outputs["certificateIssuers"]!);
  await drain();

  it("generates no root: the broker certificate is signed with the imported certificate and key (a secret)", () => {
    expect(mocks.byType("tls:index/selfSignedCert:SelfSignedCert")).toEqual([]);
    const broker = mocks.one("tls:index/locallySignedCert:LocallySignedCert", "pki-broker-cert");
    expect(broker.inputs).toMatchObject({ caCertPem: CA_PEM, caPrivateKeyPem: KEY_PEM });
    expect(broker.secretInputs).toContain("caPrivateKeyPem");
    expect(issuers).toEqual({ value: { root: { certPem: CA_PEM, privateKeyPem: KEY_PEM, chainPem: "" }, tenants: {} }, secret: true });
  });

  it("keeps the imported key out of every plain output and plain input", async () => {
    expect((await settle(outputs["caCertificatePem"]!)).value).toBe(CA_PEM);
    for (const r of mocks.records) {
      for (const [k, v] of Object.entries(r.inputs)) if (JSON.stringify(v).includes("MHcimportedkey")) expect(r.secretInputs, `${r.type} ${r.name} ${k}`).toContain(k);
    }
  });
});

it("refuses a CA certificate in config while the CA is generated, before any resource", async () => {
  vi.resetModules();
  const mocks = new RecordingMocks();
  await pulumi.runtime.setMocks(mocks, PROJECT, "dev", false);
  pulumi.runtime.setAllConfig({
    [`${PROJECT}:stackType`]: "platform",
    [`${PROJECT}:platform`]: JSON.stringify({ target: "docker", image: "rabbitmq:4.0.9", broker: { version: "4.0.9" } }),
    [`${PROJECT}:pkiCaCertificate`]: "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n",
  });
  const err = await import("../../stacks/index").then(
    () => undefined,
    (e: unknown) => e,
  );
  expect((err as Error).message).toMatch(/pkiCaCertificate: is set but platform\.pki\.ca\.source is generate/);
  await drain();
  expect(mocks.records).toEqual([]);
});
