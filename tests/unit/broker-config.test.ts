import { describe, expect, it } from "vitest";
import { clusterStartsOneByOne, renderBrokerFiles, renderEnabledPlugins, renderEnv, renderRabbitmqConf } from "../../core/broker-config";
import { ConfigError } from "../../core/errors";
import { parseBrokerConfig, parsePlatformConfig, type BrokerConfigInput } from "../../core/platform-config";
import { connectionMax, listenBacklog, splitKubernetesSysctls, tuningFor } from "../../core/tuning";

const tls = { caFile: "/etc/rabbitmq/tls/ca.pem", certFile: "/etc/rabbitmq/tls/cert.pem", keyFile: "/etc/rabbitmq/tls/key.pem", depth: 1 };
const secrets = { adminUsername: "admin", adminPassword: "pw-0123456789", tls };
const model = (input: Partial<BrokerConfigInput> = {}) => parseBrokerConfig({ version: "4.0.9", ...input });
const lines = (conf: string) => conf.split("\n").filter((l) => l !== "" && !l.startsWith("#"));

describe("renderRabbitmqConf", () => {
  it("renders the default platform broker for 4.0 exactly: TLS listeners only, peer verification, certificate login", () => {
    const tlsOptions = (prefix: string, verify: boolean) => [
      `${prefix}.cacertfile = /etc/rabbitmq/tls/ca.pem`,
      `${prefix}.certfile = /etc/rabbitmq/tls/cert.pem`,
      `${prefix}.keyfile = /etc/rabbitmq/tls/key.pem`,
      ...(verify ? [`${prefix}.verify = verify_peer`, `${prefix}.fail_if_no_peer_cert = false`] : []),
      `${prefix}.depth = 1`,
      `${prefix}.versions.1 = tlsv1.3`,
      `${prefix}.versions.2 = tlsv1.2`,
      `${prefix}.ciphers.1 = TLS_AES_256_GCM_SHA384`,
      `${prefix}.ciphers.2 = TLS_AES_128_GCM_SHA256`,
      `${prefix}.ciphers.3 = TLS_CHACHA20_POLY1305_SHA256`,
      `${prefix}.ciphers.4 = ECDHE-ECDSA-AES256-GCM-SHA384`,
      `${prefix}.ciphers.5 = ECDHE-RSA-AES256-GCM-SHA384`,
      `${prefix}.ciphers.6 = ECDHE-ECDSA-AES128-GCM-SHA256`,
      `${prefix}.ciphers.7 = ECDHE-RSA-AES128-GCM-SHA256`,
      `${prefix}.ciphers.8 = ECDHE-ECDSA-CHACHA20-POLY1305`,
      `${prefix}.ciphers.9 = ECDHE-RSA-CHACHA20-POLY1305`,
      `${prefix}.honor_cipher_order = true`,
      `${prefix}.honor_ecc_order = true`,
      `${prefix}.secure_renegotiate = true`,
      `${prefix}.client_renegotiation = false`,
    ];
    expect(lines(renderRabbitmqConf(model(), secrets))).toEqual([
      "mqtt.allow_anonymous = false",
      "anonymous_login_user = none",
      "default_user = admin",
      "default_pass = pw-0123456789",
      "default_user_tags.administrator = true",
      "auth_mechanisms.1 = none",
      "listeners.tcp = none",
      "mqtt.listeners.tcp = none",
      "web_mqtt.tcp.ip = 127.0.0.1",
      "web_mqtt.tcp.port = 15675",
      "listeners.ssl = none",
      "mqtt.listeners.ssl.default = 8883",
      "web_mqtt.ssl.port = 15676",
      "management.ssl.port = 15671",
      ...tlsOptions("ssl_options", true),
      ...tlsOptions("web_mqtt.ssl", false),
      ...tlsOptions("management.ssl", true),
      "ssl_handshake_timeout = 30000",
      "mqtt.ssl_cert_login = true",
      "ssl_cert_login_from = distinguished_name",
      "mqtt.ssl_cert_client_id_from = distinguished_name",
      "vm_memory_high_watermark.relative = 0.6",
      "disk_free_limit.absolute = 2048MiB",
      "mqtt.max_session_expiry_interval_seconds = 86400",
      // nofile 65536 (10,000 expected connections) less a reserve of 1639 for the node itself.
      "ranch_connection_max = 63897",
      "web_mqtt.max_connections = 63897",
      "mqtt.tcp_listen_options.backlog = 8192",
      "mqtt.tcp_listen_options.nodelay = true",
      "mqtt.tcp_listen_options.keepalive = true",
    ]);
  });

  it("turns Web MQTT's plaintext listener off on 3.10 (the only schema that can), and never renders management over HTTP", () => {
    const conf = lines(renderRabbitmqConf(model({ version: "3.10.8" }), secrets));
    expect(conf).toContain("web_mqtt.tcp.listener = none");
    expect(conf.join("\n")).not.toMatch(/web_mqtt\.tcp\.(port|ip)|management\.tcp|listeners\.tcp\.default/);
  });

  it("keeps plaintext listeners only when the stack asks (development)", () => {
    const conf = lines(renderRabbitmqConf(model({ plaintextListeners: true }), secrets));
    expect(conf).toEqual(expect.arrayContaining(["listeners.tcp.default = 5672", "management.tcp.port = 15672", "mqtt.listeners.tcp.default = 1883", "web_mqtt.tcp.port = 15675", "mqtt.listeners.ssl.default = 8883"]));
    expect(conf).not.toContain("mqtt.listeners.tcp = none");
  });

  it("renders AMQPS and dedicated TLS ports when configured, and takes the login name source from config", () => {
    const conf = lines(
      renderRabbitmqConf(model({ listeners: { amqps: 5671, tenantMqtts: [18884] }, tls: { certificateLoginFrom: "common_name", versions: ["tlsv1.3"] } }), secrets),
    );
    expect(conf).toEqual(expect.arrayContaining(["listeners.ssl.default = 5671", "mqtt.listeners.ssl.tenant_18884 = 18884", "ssl_cert_login_from = common_name", "ssl_options.versions.1 = tlsv1.3"]));
    expect(conf).not.toContain("ssl_options.versions.2 = tlsv1.2");
    // Erlang refuses renegotiation options on a TLS 1.3-only listener (it would not start).
    expect(conf.join("\n")).not.toMatch(/renegotiat/);
  });

  it("refuses to render a broker without TLS files unless it keeps plaintext listeners", () => {
    const { tls: _none, ...plain } = secrets;
    expect(() => renderRabbitmqConf(model(), plain)).toThrow(/TLS files are required/);
    expect(lines(renderRabbitmqConf(model({ plaintextListeners: true }), plain)).join("\n")).not.toMatch(/ssl/);
  });

  it("refuses TLS file paths rabbitmq.conf cannot hold", () => {
    expect(() => renderRabbitmqConf(model(), { ...secrets, tls: { ...tls, keyFile: "/etc/my key.pem" } })).toThrow(/plain paths/);
  });

  it("uses mqtt.subscription_ttl (ms) before 3.13, which rejects it afterwards", () => {
    const old = lines(renderRabbitmqConf(model({ version: "3.10.8", mqttSessionExpirySeconds: 3600 }), secrets));
    expect(old).toContain("mqtt.subscription_ttl = 3600000");
    expect(old.join("\n")).not.toMatch(/max_session_expiry|anonymous_login_user/);
    const v313 = lines(renderRabbitmqConf(model({ version: "3.13.7", mqttSessionExpirySeconds: 3600 }), secrets));
    expect(v313).toContain("mqtt.max_session_expiry_interval_seconds = 3600");
    expect(v313.join("\n")).not.toMatch(/subscription_ttl/);
  });

  it("binds a certificate client's id to its DN from 4.0 (the key exists there), whatever the login source", () => {
    for (const version of ["4.0.5", "4.3.6"]) {
      for (const certificateLoginFrom of ["distinguished_name", "common_name"] as const) {
        expect(lines(renderRabbitmqConf(model({ version, tls: { certificateLoginFrom } }), secrets))).toContain("mqtt.ssl_cert_client_id_from = distinguished_name");
      }
    }
    for (const version of ["3.10.8", "3.13.7"]) {
      expect(renderRabbitmqConf(model({ version }), secrets)).not.toMatch(/ssl_cert_client_id_from/);
    }
  });

  it.each(["3.10.8", "3.13.7", "4.0.9", "4.3.5"])("never renders keys removed in 4.0 (mqtt.default_user/pass), for %s", (version) => {
    expect(renderRabbitmqConf(model({ version }), secrets)).not.toMatch(/mqtt\.default_(user|pass)/);
  });

  it("binds every listener to one address when asked (tests, single-host setups)", () => {
    const conf = renderRabbitmqConf(model({ plaintextListeners: true, listeners: { tenantMqtt: [18883], tenantMqtts: [18884] } }), { ...secrets, bindAddress: "127.0.0.1" });
    expect(lines(conf)).toEqual(
      expect.arrayContaining([
        "listeners.tcp.default = 127.0.0.1:5672",
        "management.tcp.ip = 127.0.0.1",
        "mqtt.listeners.tcp.default = 127.0.0.1:1883",
        "mqtt.listeners.tcp.tenant_18883 = 127.0.0.1:18883",
        "web_mqtt.tcp.ip = 127.0.0.1",
        "mqtt.listeners.ssl.default = 127.0.0.1:8883",
        "mqtt.listeners.ssl.tenant_18884 = 127.0.0.1:18884",
        "web_mqtt.ssl.ip = 127.0.0.1",
        "management.ssl.ip = 127.0.0.1",
      ]),
    );
  });

  it("renders classic peer discovery for a fixed node list; from three nodes a minority pauses (before 4.2) and MQTT sessions are quorum queues", () => {
    const nodes = ["rabbit@mq-0", "rabbit@mq-1", "rabbit@mq-2"];
    expect(lines(renderRabbitmqConf(model(), { ...secrets, cluster: { nodes } })).slice(-6)).toEqual([
      "cluster_formation.peer_discovery_backend = classic_config",
      "cluster_formation.classic_config.nodes.1 = rabbit@mq-0",
      "cluster_formation.classic_config.nodes.2 = rabbit@mq-1",
      "cluster_formation.classic_config.nodes.3 = rabbit@mq-2",
      "cluster_partition_handling = pause_minority",
      "mqtt.durable_queue_type = quorum",
    ]);
    expect(renderRabbitmqConf(model(), { ...secrets, cluster: { nodes: ["rabbit@mq-0"] } })).not.toMatch(/cluster_formation/);
  });

  it("starts a cluster's nodes one by one only before 3.13 (MQTT client ids tracked in Raft there)", () => {
    expect([[3, 10], [3, 12], [3, 13], [4, 0], [4, 3]].map(([major, minor]) => clusterStartsOneByOne({ major: major!, minor: minor! }))).toEqual([true, true, false, false, false]);
  });

  it("renders no partition handling from 4.2, where a new cluster's metadata store is Khepri (4.3 ignores the key)", () => {
    const nodes = ["rabbit@mq-0", "rabbit@mq-1", "rabbit@mq-2"];
    for (const version of ["4.2.0", "4.3.6"]) {
      const conf = lines(renderRabbitmqConf(model({ version }), { ...secrets, cluster: { nodes } }));
      expect(conf.filter((l) => l.startsWith("cluster_partition_handling"))).toEqual([]);
      expect(conf).toContain("mqtt.durable_queue_type = quorum");
    }
    expect(lines(renderRabbitmqConf(model({ version: "3.10.8" }), { ...secrets, cluster: { nodes } }))).toContain("cluster_partition_handling = pause_minority");
  });

  it("makes the memory alarm relative to a container's memory limit when given", () => {
    expect(lines(renderRabbitmqConf(model(), { ...secrets, memoryLimitBytes: 4 * 2 ** 30 }))).toContain("total_memory_available_override_value = 4294967296");
  });

  it("turns the AMQP listener off when the platform has none", () => {
    expect(lines(renderRabbitmqConf(model({ plaintextListeners: true, listeners: { amqp: null } }), secrets))).toContain("listeners.tcp = none");
  });

  it("renders the large-fleet tuning: the largest backlog, equal buffers, metrics collector off", () => {
    const conf = lines(renderRabbitmqConf(model({ tuning: { profile: "large-fleet", expectedConnections: 200_000 } }), secrets));
    expect(conf).toEqual(
      expect.arrayContaining([
        "mqtt.tcp_listen_options.backlog = 65535",
        "mqtt.tcp_listen_options.sndbuf = 32768",
        "mqtt.tcp_listen_options.recbuf = 32768",
        "management_agent.disable_metrics_collector = true",
      ]),
    );
  });
});

describe("token sign-in (broker.tokens), per release", () => {
  const tokens = { signingKeys: ["k2", "k1"] };
  const keyFiles = { k1: "/etc/rabbitmq/oauth2/k1.pem", k2: "/etc/rabbitmq/oauth2/k2.pem" };
  const section = (version: string) => {
    const conf = renderRabbitmqConf(model({ version, tokens }), { ...secrets, tokenKeyFiles: keyFiles });
    return lines(conf.slice(conf.indexOf("## Token sign-in")).split("\n## ").slice(0, 1).join(""));
  };
  const common = [
    "auth_backends.1 = internal",
    "auth_oauth2.resource_server_id = rabbitmq",
    "auth_oauth2.signing_keys.k2 = /etc/rabbitmq/oauth2/k2.pem",
    "auth_oauth2.signing_keys.k1 = /etc/rabbitmq/oauth2/k1.pem",
    "auth_oauth2.algorithms.1 = RS256",
  ];

  it("3.10: the backend by its module name; no verify_aud or require_exp in its schema", () => {
    expect(section("3.10.8")).toEqual([common[0], "auth_backends.2 = rabbit_auth_backend_oauth2", ...common.slice(1)]);
  });

  it("4.0: the backend as oauth2, the audience verified", () => {
    expect(section("4.0.5")).toEqual([common[0], "auth_backends.2 = oauth2", ...common.slice(1), "auth_oauth2.verify_aud = true"]);
  });

  it("4.3: and the expiry required", () => {
    expect(section("4.3.6")).toEqual([common[0], "auth_backends.2 = oauth2", ...common.slice(1), "auth_oauth2.verify_aud = true", "auth_oauth2.require_exp = true"]);
  });

  it("never renders a default key, a JWKS address or scope variables: tokens name their key and carry literal scopes", () => {
    const conf = renderRabbitmqConf(model({ version: "4.3.6", tokens }), { ...secrets, tokenKeyFiles: keyFiles });
    expect(conf).not.toMatch(/default_key|jwks|issuer|scope_aliases|preferred_username/);
  });

  it("enables the OAuth 2 plugin with tokens, and neither the plugin nor any auth_oauth2 key without", () => {
    expect(model({ tokens }).plugins).toContain("rabbitmq_auth_backend_oauth2");
    expect(model().plugins).not.toContain("rabbitmq_auth_backend_oauth2");
    expect(renderRabbitmqConf(model(), secrets)).not.toMatch(/auth_oauth2|auth_backends/);
  });

  it("refuses to render without a key file for every key id, or with a path rabbitmq.conf cannot hold", () => {
    expect(() => renderRabbitmqConf(model({ tokens }), { ...secrets, tokenKeyFiles: { k2: keyFiles.k2 } })).toThrow("no public key file for token signing key 'k1'");
    expect(() => renderRabbitmqConf(model({ tokens }), { ...secrets, tokenKeyFiles: { ...keyFiles, k1: "/etc/rabbit mq/k1.pem" } })).toThrow(/plain paths/);
  });
});

describe("connection caps: what a flood may take of the node's open files", () => {
  it.each([
    [65536, 63897],
    [20000, 19500],
    [4096, 3840],
    [1024, 768],
    [300, 44],
  ])("nofile %i -> %i per listener (a reserve of 2.5%%, at least 256)", (nofile, max) => expect(connectionMax(nofile)).toBe(max));

  it.each([
    ["3.10.8", ["connection_max = 19500", "web_mqtt.max_connections = 19500"]],
    ["4.0.5", ["ranch_connection_max = 19500", "web_mqtt.max_connections = 19500"]],
    ["4.3.6", ["ranch_connection_max = 19500", "web_mqtt.max_connections = 19500", "mqtt.max_connections = 19500"]],
  ])("renders the caps %s has, from the open files the node really gets", (version, expected) => {
    const conf = lines(renderRabbitmqConf(model({ version }), { ...secrets, openFiles: 20000 }));
    expect(conf.filter((l) => /^(ranch_)?connection_max|max_connections/.test(l))).toEqual(expected);
  });
});

describe("renderEnabledPlugins and renderEnv", () => {
  it("always enables management, MQTT and Web MQTT, plus extra plugins once each", () => {
    expect(renderEnabledPlugins(model({ plugins: ["rabbitmq_prometheus", "rabbitmq_mqtt"] }))).toBe(
      "[rabbitmq_management,rabbitmq_mqtt,rabbitmq_web_mqtt,rabbitmq_prometheus].\n",
    );
  });

  it("sets Erlang ports and processes from the tuning, and never +A", () => {
    const env = renderEnv(model({ tuning: { profile: "large-fleet", expectedConnections: 500_000 } }));
    expect(env).toEqual({ RABBITMQ_CONFIG_FILES: "/etc/rabbitmq/rabbitmq-mqtt.d", ERL_MAX_PORTS: "750000", RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "+P 2000000" });
    expect(JSON.stringify(renderBrokerFiles(model(), secrets))).not.toMatch(/\+A/);
  });
});

describe("tuningFor", () => {
  it("keeps RabbitMQ's defaults as floors and scales open files to 1.5 x connections", () => {
    expect(tuningFor({ profile: "default", expectedConnections: 1000 })).toMatchObject({ openFiles: 65536, erlMaxPorts: 65536, erlMaxProcesses: 1_048_576 });
    expect(tuningFor({ profile: "default", expectedConnections: 100_000 })).toMatchObject({ openFiles: 150_000, erlMaxPorts: 150_000 });
  });

  it.each([
    [1000, 4096],
    [10_000, 8192],
    [20_000, 16384],
    [100_000, 65535],
    [2_000_000, 65535],
  ])("listens with a backlog of half the %i expected connections, as a power of two, from 4096 to 65535: %i", (conns, backlog) => {
    expect(listenBacklog(conns)).toBe(backlog);
    expect(tuningFor({ profile: "default", expectedConnections: conns }).mqttListen.backlog).toBe(backlog);
  });

  it("matches the kernel's accept queues to the listen backlog", () => {
    const t = tuningFor({ profile: "large-fleet", expectedConnections: 100_000 });
    expect(t.sysctls["net.core.somaxconn"]).toBe(String(t.mqttListen.backlog));
    expect(t.sysctls["net.ipv4.tcp_max_syn_backlog"]).toBe(String(t.mqttListen.backlog));
    expect(Number(t.sysctls["net.ipv4.tcp_fin_timeout"])).toBeGreaterThanOrEqual(15);
    expect(t.mqttListen.buffer).toBeGreaterThanOrEqual(8192);
  });
});

describe("splitKubernetesSysctls", () => {
  const { sysctls } = tuningFor({ profile: "large-fleet", expectedConnections: 1000 });

  it("before 1.29 only privileged containers can set the TCP settings", () => {
    expect(Object.keys(splitKubernetesSysctls(sysctls, 28).pod)).toEqual([]);
  });

  it("from 1.29 pods may set FIN timeout and keepalive; somaxconn and the SYN backlog stay privileged", () => {
    const split = splitKubernetesSysctls(sysctls, 29);
    expect(Object.keys(split.pod).sort()).toEqual(["net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_keepalive_time"]);
    expect(Object.keys(split.privileged).sort()).toEqual(["net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog"]);
  });
});

describe("parseBrokerConfig: bad input names the key", () => {
  const keys = (raw: unknown) => {
    try {
      parseBrokerConfig(raw);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).issues.map((i) => `${i.key}: ${i.message}`);
    }
    throw new Error("expected a ConfigError");
  };

  it.each([
    [{ version: "3.9.29" }, "platform.broker.version: must be a RabbitMQ version x.y.z, 3.10.0 or later"],
    [{ version: "4.0" }, "platform.broker.version: must be a RabbitMQ version x.y.z, 3.10.0 or later"],
    [{ version: "4.0.9", listeners: { mqtt: 0 } }, "platform.broker.listeners.mqtt: must be at least 1"],
    [{ version: "4.0.9", plaintextListeners: true, listeners: { webMqtt: 1883 } }, "platform.broker.listeners.webMqtt: port 1883 is already used by platform.broker.listeners.mqtt; every listener needs its own port"],
    [{ version: "4.0.9", plaintextListeners: true, listeners: { tenantMqtt: [15672] } }, "platform.broker.listeners.tenantMqtt[0]: port 15672 is already used by platform.broker.listeners.management; every listener needs its own port"],
    [{ version: "4.0.9", listeners: { tenantMqtts: [8883] } }, "platform.broker.listeners.tenantMqtts[0]: port 8883 is already used by platform.broker.listeners.mqtts; every listener needs its own port"],
    [{ version: "4.0.9", listeners: { tenantMqtt: [18883] } }, "platform.broker.listeners.tenantMqtt: plaintext tenant listeners need plaintextListeners: true (development only); use listeners.tenantMqtts for TLS"],
    [{ version: "4.0.9", tls: { versions: ["tlsv1.1"] } }, "platform.broker.tls.versions[0]: must be one of: tlsv1.3, tlsv1.2 (older versions are broken)"],
    [{ version: "4.0.9", tls: { certificateLoginFrom: "subject_alternative_name" } }, "platform.broker.tls.certificateLoginFrom: must be one of: distinguished_name, common_name"],
    [{ version: "4.0.9", plugins: ["mqtt"] }, "platform.broker.plugins[0]: a RabbitMQ plugin name, e.g. rabbitmq_prometheus"],
    [{ version: "4.0.9", memoryHighWatermark: 0.95 }, "platform.broker.memoryHighWatermark: must be at most 0.9"],
    [{ version: "4.0.9", diskFreeLimitMiB: 10 }, "platform.broker.diskFreeLimitMiB: must be at least 50"],
    [{ version: "4.0.9", mqttSessionExpirySeconds: 1 }, "platform.broker.mqttSessionExpirySeconds: must be at least 60"],
    [{ version: "4.0.9", tuning: { profile: "huge" } }, "platform.broker.tuning.profile: must be one of: default, large-fleet"],
    [{ version: "4.0.9", tuning: { expectedConnections: 0 } }, "platform.broker.tuning.expectedConnections: must be at least 1"],
    [{ version: "4.0.9", tokens: {} }, "platform.broker.tokens.signingKeys: must be a list of key ids, newest first, e.g. [k2, k1]"],
    [{ version: "4.0.9", tokens: { signingKeys: [] } }, "platform.broker.tokens.signingKeys: list at least one key id, e.g. [k1]"],
    [{ version: "4.0.9", tokens: { signingKeys: ["k3", "k2", "k1", "k0"] } }, "platform.broker.tokens.signingKeys: list at most 3 key ids: the one that signs and those still in force during a rotation"],
    [{ version: "4.0.9", tokens: { signingKeys: ["K1"] } }, "platform.broker.tokens.signingKeys[0]: must be a key id: 1-32 of a-z 0-9 _ -, e.g. k1"],
    [{ version: "4.0.9", tokens: { signingKeys: ["k1/../x"] } }, "platform.broker.tokens.signingKeys[0]: must be a key id: 1-32 of a-z 0-9 _ -, e.g. k1"],
    [{ version: "4.0.9", tokens: { signingKeys: ["k2", "k1", "k2"] } }, "platform.broker.tokens.signingKeys[2]: key id 'k2' is listed twice; each key needs its own id"],
    [{ version: "4.0.9", tokens: { signingKeys: ["k1"], resourceServerId: "rabbit.mq" } }, "platform.broker.tokens.resourceServerId: must be 1-64 of a-z 0-9 _ -, starting with a letter (it prefixes every scope), e.g. rabbitmq"],
    [{ version: "4.0.9", tokens: { signingKeys: ["k1"], resourceServerId: "*" } }, "platform.broker.tokens.resourceServerId: must be 1-64 of a-z 0-9 _ -, starting with a letter (it prefixes every scope), e.g. rabbitmq"],
    [{ version: "4.0.9", tokens: { signingKeys: ["k1"], algorithm: "HS256" } }, "platform.broker.tokens.algorithm: must be one of: RS256"],
    [{ version: "4.0.9", tokens: { signingKeys: ["k1"], jwksUrl: "https://idp.example.com/jwks" } }, "platform.broker.tokens: Unrecognized key: \"jwksUrl\""],
  ])("%j", (raw, message) => {
    expect(keys(raw)).toEqual([message]);
  });

  it("rejects unknown keys", () => {
    expect(keys({ version: "4.0.9", listener: {} })[0]).toMatch(/^platform\.broker: .*listener/);
  });
});

describe("parsePlatformConfig: every platform field refuses bad input, naming its key", () => {
  const base = { target: "docker", image: "rabbitmq:4.0.9-management", broker: { version: "4.0.9" } };
  const k8s = { ...base, target: "kubernetes", nodes: 3 };

  it.each<[string, Record<string, unknown>, string]>([
    ["adminUsername", { ...base, adminUsername: "admin user" }, "platform.adminUsername"],
    ["docker.network", { ...base, docker: { network: "Bad Net" } }, "platform.docker.network"],
    ["docker.hostPortOffset", { ...base, docker: { hostPortOffset: 0 } }, "platform.docker.hostPortOffset"],
    ["docker.namePrefix", { ...base, docker: { namePrefix: "Rabbit_MQ" } }, "platform.docker.namePrefix"],
    ["docker.namePrefix (too long)", { ...base, docker: { namePrefix: "r".repeat(41) } }, "platform.docker.namePrefix"],
    ["docker.maxOpenFiles", { ...base, docker: { maxOpenFiles: 512 } }, "platform.docker.maxOpenFiles"],
    ["docker.maxOpenFiles (not whole)", { ...base, docker: { maxOpenFiles: 20000.5 } }, "platform.docker.maxOpenFiles"],
    ["docker unknown key", { ...base, docker: { ports: [] } }, "platform.docker"],
    ["kubernetes.namespace", { ...k8s, kubernetes: { namespace: "Prod_NS" } }, "platform.kubernetes.namespace"],
    ["kubernetes.storageSize", { ...k8s, kubernetes: { storageSize: "20GB" } }, "platform.kubernetes.storageSize"],
    ["kubernetes.storageClass", { ...k8s, kubernetes: { storageClass: "Fast SSD" } }, "platform.kubernetes.storageClass"],
    ["kubernetes.cpu", { ...k8s, kubernetes: { cpu: "two" } }, "platform.kubernetes.cpu"],
    ["kubernetes.serviceType", { ...k8s, kubernetes: { serviceType: "Ingress" } }, "platform.kubernetes.serviceType"],
    ["kubernetes.privilegedSysctls", { ...k8s, kubernetes: { privilegedSysctls: "yes" } }, "platform.kubernetes.privilegedSysctls"],
    ["broker missing", { target: "docker", image: "rabbitmq:4.0.9" }, "platform.broker"],
    ["plaintext listeners on Kubernetes", { ...k8s, broker: { version: "4.0.9", plaintextListeners: true } }, "platform.broker.plaintextListeners"],
    ["pki.ca.source", { ...base, pki: { ca: { source: "vault" } } }, "platform.pki.ca.source"],
    ["pki.key.algorithm", { ...base, pki: { key: { algorithm: "DSA" } } }, "platform.pki.key.algorithm"],
    ["pki.key.rsaBits", { ...base, pki: { key: { algorithm: "RSA", rsaBits: 1024 } } }, "platform.pki.key.rsaBits"],
    ["pki.key.ecdsaCurve", { ...base, pki: { key: { ecdsaCurve: "P224" } } }, "platform.pki.key.ecdsaCurve"],
    ["pki.ca.validityHours", { ...base, pki: { ca: { validityHours: 1 } } }, "platform.pki.ca.validityHours"],
    ["pki renewal window as long as validity", { ...base, pki: { brokerCertificate: { validityHours: 720, earlyRenewalHours: 720 } } }, "platform.pki.brokerCertificate.earlyRenewalHours"],
    ["pki certificate outliving the CA", { ...base, pki: { ca: { validityHours: 8760, earlyRenewalHours: 100 }, tenantAuthorities: { validityHours: 9000, earlyRenewalHours: 100 } } }, "platform.pki.tenantAuthorities.validityHours"],
    ["pki broker DNS name", { ...base, pki: { brokerCertificate: { dnsNames: ["MQTT example com"] } } }, "platform.pki.brokerCertificate.dnsNames[0]"],
    ["pki broker IP", { ...base, pki: { brokerCertificate: { ipAddresses: ["300.1.1.1"] } } }, "platform.pki.brokerCertificate.ipAddresses[0]"],
    ["pki tenant authority name", { ...base, pki: { tenantAuthorities: { tenants: ["Acme Corp"] } } }, "platform.pki.tenantAuthorities.tenants[0]"],
    ["pki tenant listed twice", { ...base, pki: { tenantAuthorities: { tenants: ["acme", "acme"] } } }, "platform.pki.tenantAuthorities.tenants[1]"],
    ["pki.ca.commonName control character", { ...base, pki: { ca: { commonName: "root\nCA" } } }, "platform.pki.ca.commonName"],
  ])("%s", (_label, raw, key) => {
    let issues: readonly { key: string }[] = [];
    try {
      parsePlatformConfig(raw);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      issues = (e as ConfigError).issues;
    }
    expect(issues.map((i) => i.key)).toEqual([key]);
  });

  it("accepts the defaults for both targets", () => {
    expect(parsePlatformConfig(base).docker).toEqual({ network: "rabbitmq-mqtt", publishAddress: "127.0.0.1", hostPortOffset: 100, namePrefix: "rabbitmq" });
    expect(parsePlatformConfig(k8s).kubernetes).toMatchObject({ namespace: "rabbitmq", minorVersion: 29, memoryBytes: 4 * 2 ** 30 });
  });
});
