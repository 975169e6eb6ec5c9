import { describe, expect, it } from "vitest";
import { securityBaseline } from "../../core/broker-baseline";

const admin = { adminUsername: "admin-1", adminPassword: "s3cret-value" };

describe("securityBaseline", () => {
  it("3.10: anonymous MQTT off, admin instead of guest, no AMQP password mechanism", () => {
    expect(securityBaseline({ version: { major: 3, minor: 10 }, ...admin })).toEqual([
      "mqtt.allow_anonymous = false",
      "default_user = admin-1",
      "default_pass = s3cret-value",
      "default_user_tags.administrator = true",
      "auth_mechanisms.1 = none",
    ]);
  });

  it.each([
    [3, 13],
    [4, 0],
    [4, 3],
  ])("%i.%i also disables anonymous_login_user (which defaults to guest there)", (major, minor) => {
    expect(securityBaseline({ version: { major, minor }, ...admin })).toContain("anonymous_login_user = none");
  });

  it("offers PLAIN and AMQPLAIN only when asked to", () => {
    const lines = securityBaseline({ version: { major: 4, minor: 0 }, ...admin, amqpPasswordLogins: true });
    expect(lines).toEqual(expect.arrayContaining(["auth_mechanisms.1 = PLAIN", "auth_mechanisms.2 = AMQPLAIN"]));
    expect(lines).not.toContain("auth_mechanisms.1 = none");
  });

  it.each([
    ["adminUsername", "admin user"],
    ["adminPassword", "pass # comment"],
    ["adminPassword", ""],
  ])("refuses a %s rabbitmq.conf cannot hold (%j)", (field, value) => {
    expect(() => securityBaseline({ version: { major: 3, minor: 10 }, ...admin, [field]: value })).toThrow(/for rabbitmq.conf/);
  });
});
