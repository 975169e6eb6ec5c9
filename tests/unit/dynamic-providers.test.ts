/**
 * The dynamic providers' decisions that need no broker: input checks and diffs (what replaces,
 * what updates in place). Their I/O is proven against a real broker in tests/e2e.
 */
import { describe, expect, it } from "vitest";
import { limitsProvider, type LimitsProps } from "../../components/management/limits";
import { mqttVhostMappingProvider, type MqttVhostMappingProps } from "../../components/management/mqtt-vhost-mapping";
import { vhostMetadataProvider, type VhostMetadataProps } from "../../components/management/vhost-metadata";

const connection = { managementUrl: "http://127.0.0.1:15672", username: "admin", password: "pw" };

describe("limits provider", () => {
  const base: LimitsProps = { connection, scope: "vhost", target: "acme", limits: { "max-connections": 10 } };

  it("rejects limits the scope does not have, and negative values", async () => {
    const r = await limitsProvider.check!({}, { ...base, limits: { "max-channels": 1, "max-queues": -1 } });
    expect(r.failures).toEqual([
      { property: "limits", reason: "unknown vhost limit 'max-channels' (known: max-connections, max-queues)" },
      { property: "limits", reason: "max-queues must be a whole number >= 0" },
    ]);
  });

  it("updates in place when a value changes and replaces when the target changes", async () => {
    expect(await limitsProvider.diff!("id", base, { ...base, limits: { "max-connections": 20 } })).toMatchObject({ changes: true, replaces: [] });
    expect(await limitsProvider.diff!("id", base, { ...base, target: "other" })).toMatchObject({ changes: true, replaces: ["target"] });
    expect(await limitsProvider.diff!("id", base, { ...base })).toMatchObject({ changes: false });
  });

  it("updates when the admin password rotates, so later deletes use the new one", async () => {
    const rotated = { ...base, connection: { ...connection, password: "new" } };
    expect(await limitsProvider.diff!("id", base, rotated)).toMatchObject({ changes: true, replaces: [] });
  });
});

describe("MQTT vhost mapping provider", () => {
  const base: MqttVhostMappingProps = { connection, parameter: "mqtt_port_to_vhost_mapping", entries: { "1884": "acme" } };

  it("rejects entries the broker could never match", async () => {
    // (JavaScript lists integer-like keys such as "1885" first.)
    const r = await mqttVhostMappingProvider.check!({}, { ...base, entries: { "port-1": "acme", "1885": "Bad Vhost" } });
    expect(r.failures?.map((f) => f.reason)).toEqual([
      'vhost "Bad Vhost" is not a tenant vhost name: 1-63 characters: lowercase letters, digits and \'-\', starting and ending with a letter or digit',
      'key "port-1" must be a TCP port number (1-65535) written in decimal',
    ]);
  });

  it("diffs entries in place and replaces only when the parameter changes", async () => {
    expect(await mqttVhostMappingProvider.diff!("id", base, { ...base, entries: { "1884": "acme", "1885": "acme" } })).toMatchObject({ changes: true, replaces: [] });
    expect(await mqttVhostMappingProvider.diff!("id", base, { ...base, parameter: "mqtt_default_vhosts" })).toMatchObject({ replaces: ["parameter"] });
    expect(await mqttVhostMappingProvider.diff!("id", base, { ...base, entries: { "1884": "acme" } })).toMatchObject({ changes: false });
  });

  it("sees drift: refreshed state missing an entry differs from the desired entries", async () => {
    const refreshed = { ...base, entries: {} };
    expect(await mqttVhostMappingProvider.diff!("id", refreshed, base)).toMatchObject({ changes: true });
  });
});

describe("vhost metadata provider", () => {
  const base: VhostMetadataProps = { connection, vhost: "acme", description: "d", tags: ["a"] };

  it("rejects tags the broker would split or trim", async () => {
    const r = await vhostMetadataProvider.check!({}, { ...base, tags: ["ok", "a,b", " sp "] });
    expect(r.failures?.map((f) => f.reason)).toEqual(['tag "a,b" must be 1-64 of A-Z a-z 0-9 _ -', 'tag " sp " must be 1-64 of A-Z a-z 0-9 _ -']);
  });

  it("updates description and tags in place, replaces on another vhost", async () => {
    expect(await vhostMetadataProvider.diff!("id", base, { ...base, tags: ["a", "b"] })).toMatchObject({ changes: true, replaces: [] });
    expect(await vhostMetadataProvider.diff!("id", base, { ...base, vhost: "other" })).toMatchObject({ replaces: ["vhost"] });
    expect(await vhostMetadataProvider.diff!("id", base, { ...base })).toMatchObject({ changes: false });
  });
});
