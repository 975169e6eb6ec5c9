import { describe, expect, it } from "vitest";
import { renderBrokerFiles, renderEnabledPlugins, renderEnv, renderRabbitmqConf } from "../../core/broker-config";
import { ConfigError } from "../../core/errors";
import { parseBrokerConfig, parsePlatformConfig, type BrokerConfigInput } from "../../core/platform-config";
import { splitKubernetesSysctls, tuningFor } from "../../core/tuning";

const secrets = { adminUsername: "admin", adminPassword: "pw-0123456789" };
const model = (input: Partial<BrokerConfigInput> = {}) => parseBrokerConfig({ version: "4.0.9", ...input });
const lines = (conf: string) => conf.split("\n").filter((l) => l !== "" && !l.startsWith("#"));

describe("renderRabbitmqConf", () => {
  it("renders the default platform broker for 4.0 exactly", () => {
    expect(lines(renderRabbitmqConf(model(), secrets))).toEqual([
      "mqtt.allow_anonymous = false",
      "anonymous_login_user = none",
      "default_user = admin",
      "default_pass = pw-0123456789",
      "default_user_tags.administrator = true",
      "auth_mechanisms.1 = EXTERNAL",
      "listeners.tcp.default = 5672",
      "management.tcp.port = 15672",
      "mqtt.listeners.tcp.default = 1883",
      "web_mqtt.tcp.port = 15675",
      "vm_memory_high_watermark.relative = 0.6",
      "disk_free_limit.absolute = 2048MiB",
      "mqtt.max_session_expiry_interval_seconds = 86400",
      "mqtt.tcp_listen_options.backlog = 1024",
      "mqtt.tcp_listen_options.nodelay = true",
      "mqtt.tcp_listen_options.keepalive = true",
    ]);
  });

  it("uses mqtt.subscription_ttl (ms) before 3.13, which rejects it afterwards", () => {
    const old = lines(renderRabbitmqConf(model({ version: "3.10.8", mqttSessionExpirySeconds: 3600 }), secrets));
    expect(old).toContain("mqtt.subscription_ttl = 3600000");
    expect(old.join("\n")).not.toMatch(/max_session_expiry|anonymous_login_user/);
    const v313 = lines(renderRabbitmqConf(model({ version: "3.13.7", mqttSessionExpirySeconds: 3600 }), secrets));
    expect(v313).toContain("mqtt.max_session_expiry_interval_seconds = 3600");
    expect(v313.join("\n")).not.toMatch(/subscription_ttl/);
  });

  it.each(["3.10.8", "3.13.7", "4.0.9", "4.3.5"])("never renders keys removed in 4.0 (mqtt.default_user/pass), for %s", (version) => {
    expect(renderRabbitmqConf(model({ version }), secrets)).not.toMatch(/mqtt\.default_(user|pass)/);
  });

  it("binds every listener to one address when asked (tests, single-host setups)", () => {
    const conf = renderRabbitmqConf(model({ listeners: { tenantMqtt: [18883] } }), { ...secrets, bindAddress: "127.0.0.1" });
    expect(lines(conf)).toEqual(
      expect.arrayContaining([
        "listeners.tcp.default = 127.0.0.1:5672",
        "management.tcp.ip = 127.0.0.1",
        "mqtt.listeners.tcp.default = 127.0.0.1:1883",
        "mqtt.listeners.tcp.tenant_18883 = 127.0.0.1:18883",
        "web_mqtt.tcp.ip = 127.0.0.1",
      ]),
    );
  });

  it("renders classic peer discovery for a fixed node list, pausing a minority from three nodes", () => {
    const nodes = ["rabbit@mq-0", "rabbit@mq-1", "rabbit@mq-2"];
    expect(lines(renderRabbitmqConf(model(), { ...secrets, cluster: { nodes } })).slice(-5)).toEqual([
      "cluster_formation.peer_discovery_backend = classic_config",
      "cluster_formation.classic_config.nodes.1 = rabbit@mq-0",
      "cluster_formation.classic_config.nodes.2 = rabbit@mq-1",
      "cluster_formation.classic_config.nodes.3 = rabbit@mq-2",
      "cluster_partition_handling = pause_minority",
    ]);
    expect(renderRabbitmqConf(model(), { ...secrets, cluster: { nodes: ["rabbit@mq-0"] } })).not.toMatch(/cluster_formation/);
  });

  it("makes the memory alarm relative to a container's memory limit when given", () => {
    expect(lines(renderRabbitmqConf(model(), { ...secrets, memoryLimitBytes: 4 * 2 ** 30 }))).toContain("total_memory_available_override_value = 4294967296");
  });

  it("turns the AMQP listener off when the platform has none", () => {
    expect(lines(renderRabbitmqConf(model({ listeners: { amqp: null } }), secrets))).toContain("listeners.tcp = none");
  });

  it("renders the large-fleet tuning: backlog 4096, equal buffers, metrics collector off", () => {
    const conf = lines(renderRabbitmqConf(model({ tuning: { profile: "large-fleet", expectedConnections: 200_000 } }), secrets));
    expect(conf).toEqual(
      expect.arrayContaining([
        "mqtt.tcp_listen_options.backlog = 4096",
        "mqtt.tcp_listen_options.sndbuf = 32768",
        "mqtt.tcp_listen_options.recbuf = 32768",
        "management_agent.disable_metrics_collector = true",
      ]),
    );
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
    [{ version: "4.0.9", listeners: { webMqtt: 1883 } }, "platform.broker.listeners.webMqtt: port 1883 is already used by platform.broker.listeners.mqtt; every listener needs its own port"],
    [{ version: "4.0.9", listeners: { tenantMqtt: [15672] } }, "platform.broker.listeners.tenantMqtt[0]: port 15672 is already used by platform.broker.listeners.management; every listener needs its own port"],
    [{ version: "4.0.9", plugins: ["mqtt"] }, "platform.broker.plugins[0]: a RabbitMQ plugin name, e.g. rabbitmq_prometheus"],
    [{ version: "4.0.9", memoryHighWatermark: 0.95 }, "platform.broker.memoryHighWatermark: must be at most 0.9"],
    [{ version: "4.0.9", diskFreeLimitMiB: 10 }, "platform.broker.diskFreeLimitMiB: must be at least 50"],
    [{ version: "4.0.9", mqttSessionExpirySeconds: 1 }, "platform.broker.mqttSessionExpirySeconds: must be at least 60"],
    [{ version: "4.0.9", tuning: { profile: "huge" } }, "platform.broker.tuning.profile: must be one of: default, large-fleet"],
    [{ version: "4.0.9", tuning: { expectedConnections: 0 } }, "platform.broker.tuning.expectedConnections: must be at least 1"],
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
    ["docker unknown key", { ...base, docker: { ports: [] } }, "platform.docker"],
    ["kubernetes.namespace", { ...k8s, kubernetes: { namespace: "Prod_NS" } }, "platform.kubernetes.namespace"],
    ["kubernetes.storageSize", { ...k8s, kubernetes: { storageSize: "20GB" } }, "platform.kubernetes.storageSize"],
    ["kubernetes.storageClass", { ...k8s, kubernetes: { storageClass: "Fast SSD" } }, "platform.kubernetes.storageClass"],
    ["kubernetes.cpu", { ...k8s, kubernetes: { cpu: "two" } }, "platform.kubernetes.cpu"],
    ["kubernetes.serviceType", { ...k8s, kubernetes: { serviceType: "Ingress" } }, "platform.kubernetes.serviceType"],
    ["kubernetes.privilegedSysctls", { ...k8s, kubernetes: { privilegedSysctls: "yes" } }, "platform.kubernetes.privilegedSysctls"],
    ["broker missing", { target: "docker", image: "rabbitmq:4.0.9" }, "platform.broker"],
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
    expect(parsePlatformConfig(base).docker).toEqual({ network: "rabbitmq-mqtt", publishAddress: "127.0.0.1", hostPortOffset: 100 });
    expect(parsePlatformConfig(k8s).kubernetes).toMatchObject({ namespace: "rabbitmq", minorVersion: 29, memoryBytes: 4 * 2 ** 30 });
  });
});
