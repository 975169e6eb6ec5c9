import { describe, expect, it } from "vitest";
import {
  APP_PLACEHOLDERS,
  appClientIds,
  appScopes,
  parseAppGrant,
  scopePatternMatches,
  userIdProblem,
  type AppGrants,
} from "../../core/token-scopes";
import { TopicFilterError } from "../../core/topics";

const C2B: AppGrants = {
  publish: [parseAppGrant("activity/{user}/#")],
  subscribe: [parseAppGrant("client/{client}/#")],
};
const target = (user: string, clientIds = 2) => ({ vhost: "acme", resourceServerId: "rabbitmq", user, clientIds });

/** What the broker decides for a request, from the scopes alone (rabbit_oauth2_scope). */
function allows(scopes: readonly string[], permission: "read" | "write" | "configure", vhost: string, name: string, routingKey?: string): boolean {
  return scopes.some((scope) => {
    const m = /^rabbitmq\.(read|write|configure):(.*)$/.exec(scope);
    if (m === null || m[1] !== permission) return false;
    const parts = m[2]!.split("/");
    if (parts.length < 2 || parts.length > 3) return false;
    const [v, n, rk] = parts;
    if (!scopePatternMatches(v!, vhost) || !scopePatternMatches(n!, name)) return false;
    return routingKey === undefined || (rk !== undefined && scopePatternMatches(rk, routingKey));
  });
}

describe("token app grant templates", () => {
  it.each(["client/{client}/#", "activity/{user}/#", "activity/{user}/login", "app/{user}/inbox/{client}"])("accepts %s", (text) => {
    expect(() => parseAppGrant(text)).not.toThrow();
  });

  it.each([
    ["activity/{user}/+", "'+' cannot be granted"],
    ["news/#", "must be per user"],
    ["#", "must be per user"],
    ["client/{identity}/#", "unknown placeholder '{identity}' (known: {user}, {client})"],
    ["client/{tenant}/#", "unknown placeholder '{tenant}'"],
    ["client/u{user}/#", "a placeholder must be a whole level"],
  ])("refuses %s", (text, message) => {
    expect(() => parseAppGrant(text)).toThrow(TopicFilterError);
    expect(() => parseAppGrant(text)).toThrow(message);
  });

  it("offers exactly the user and client placeholders", () => {
    expect(APP_PLACEHOLDERS).toEqual(["user", "client"]);
  });
});

describe("user ids written into scopes", () => {
  it.each(["u-1", "A_b", "0", "a".repeat(128), "auth0-5f7c2b"])("accepts %j", (id) => {
    expect(userIdProblem(id)).toBeUndefined();
  });

  // Each of these could widen a scope, split a routing-key word, pick a vhost or hide in a log.
  it.each(["*", "u*", ".", "u.1", "#", "+", "u/1", "%2A", "u:1", "u 1", "u\t1", "u\n", "\u0000", "é", "u~1", "", "a".repeat(129), "-u", "u_"])(
    "refuses %j",
    (id) => {
      expect(userIdProblem(id)).toMatch(/is not a usable user id/);
      expect(() => appClientIds(id, 1)).toThrow(/is not a usable user id/);
    },
  );
});

describe("scopes of one user's token", () => {
  it("lists topic access per template and the queues of each allowed client id", () => {
    expect(appScopes(C2B, target("u1"))).toEqual([
      "rabbitmq.configure:acme/mqtt-subscription-u1~1qos*",
      "rabbitmq.configure:acme/mqtt-subscription-u1~2qos*",
      "rabbitmq.configure:acme/mqtt-will-u1~1",
      "rabbitmq.configure:acme/mqtt-will-u1~2",
      "rabbitmq.read:acme/amq.topic/client.u1~1",
      "rabbitmq.read:acme/amq.topic/client.u1~1.*",
      "rabbitmq.read:acme/amq.topic/client.u1~2",
      "rabbitmq.read:acme/amq.topic/client.u1~2.*",
      "rabbitmq.read:acme/mqtt-subscription-u1~1qos*",
      "rabbitmq.read:acme/mqtt-subscription-u1~2qos*",
      "rabbitmq.read:acme/mqtt-will-u1~1",
      "rabbitmq.read:acme/mqtt-will-u1~2",
      "rabbitmq.write:acme/amq.topic/activity.u1",
      "rabbitmq.write:acme/amq.topic/activity.u1.*",
      "rabbitmq.write:acme/mqtt-subscription-u1~1qos*",
      "rabbitmq.write:acme/mqtt-subscription-u1~2qos*",
      "rabbitmq.write:acme/mqtt-will-u1~1",
      "rabbitmq.write:acme/mqtt-will-u1~2",
    ]);
  });

  it("writes every outside value in only after validating it", () => {
    expect(() => appScopes(C2B, target("*"))).toThrow(/not a usable user id/);
    expect(() => appScopes(C2B, { ...target("u1"), vhost: "*" })).toThrow(/not usable in a scope: vhost/);
    expect(() => appScopes(C2B, { ...target("u1"), resourceServerId: "a.b" })).toThrow(/resource server id/);
    expect(() => appScopes(C2B, target("u1", 17))).toThrow(/outside 1-16/);
  });

  // The reference model: users whose ids are prefixes of one another, and every request a client of
  // one user could make towards another user's topics and queues.
  const users = ["u1", "u10", "u1-x", "u1_2", "U1", "u"];
  const scopesOf = new Map(users.map((u) => [u, appScopes(C2B, target(u, 12))]));

  it("lets each user reach its own topics and queues", () => {
    for (const u of users) {
      const s = scopesOf.get(u)!;
      expect(allows(s, "write", "acme", "amq.topic", `activity.${u}`)).toBe(true);
      expect(allows(s, "write", "acme", "amq.topic", `activity.${u}.login.ok`)).toBe(true);
      for (const c of appClientIds(u, 12)) {
        for (const filter of [`client.${c}`, `client.${c}.#`, `client.${c}.*`, `client.${c}.a.*.b`]) expect(allows(s, "read", "acme", "amq.topic", filter)).toBe(true);
        for (const p of ["configure", "write", "read"] as const) expect(allows(s, p, "acme", `mqtt-subscription-${c}qos1`)).toBe(true);
      }
      // Binding to amq.topic needs read on the exchange itself.
      expect(allows(s, "read", "acme", "amq.topic")).toBe(true);
    }
  });

  it("refuses every user another user's topics and queues, and every wider filter", () => {
    for (const u of users) {
      const s = scopesOf.get(u)!;
      for (const other of users.filter((o) => o !== u)) {
        expect(allows(s, "write", "acme", "amq.topic", `activity.${other}`)).toBe(false);
        expect(allows(s, "write", "acme", "amq.topic", `activity.${other}.login`)).toBe(false);
        for (const c of appClientIds(other, 12)) {
          expect(allows(s, "read", "acme", "amq.topic", `client.${c}.#`)).toBe(false);
          expect(allows(s, "read", "acme", "amq.topic", `client.${c}`)).toBe(false);
          for (const p of ["configure", "write", "read"] as const) {
            expect(allows(s, p, "acme", `mqtt-subscription-${c}qos1`)).toBe(false);
            expect(allows(s, p, "acme", `mqtt-will-${c}`)).toBe(false);
          }
        }
      }
      for (const filter of ["#", "*", "client.#", "client.*", "client.*.#", "activity.#", "activity.*", "activity.*.login"]) {
        expect(allows(s, "read", "acme", "amq.topic", filter)).toBe(false);
        expect(allows(s, "write", "acme", "amq.topic", filter)).toBe(false);
      }
      // Reading others' activity or publishing to clients is not in the templates.
      expect(allows(s, "read", "acme", "amq.topic", `activity.${u}`)).toBe(false);
      expect(allows(s, "write", "acme", "amq.topic", `client.${u}~1`)).toBe(false);
      // Another tenant's vhost, and any other exchange or queue.
      expect(allows(s, "write", "globex", "amq.topic", `activity.${u}`)).toBe(false);
      expect(allows(s, "write", "acme", "amq.fanout")).toBe(false);
      expect(allows(s, "configure", "acme", "anything")).toBe(false);
    }
  });
});

describe("the broker's scope wildcard", () => {
  it.each([
    ["a", "a", true],
    ["a", "ab", false],
    ["a*", "a", true],
    ["a*", "a.b/c", true],
    ["*", "", true],
    ["a*c", "abc", true],
    ["a*c", "ab", false],
    ["a*b*c", "aXbYc", true],
    ["a*b*c", "acb", false],
    ["ab*ba", "aba", false],
  ])("%j matches %j: %s", (pattern, subject, expected) => {
    expect(scopePatternMatches(pattern, subject)).toBe(expected);
  });
});
