/**
 * The e2e tests' reference model of who may do what, written from the product's documented rules
 * (README: roles and grants) in plain MQTT terms, independently of core/ (which compiles regexes).
 * If the compiler and this model disagree, the broker decides who is right.
 */

export interface IdentityConfig {
  name: string;
  kind: string;
  role: string;
  user?: string;
  grants?: { publish?: string[]; subscribe?: string[] };
}

/** Documented role defaults: c2b subscribes to its own client/ tree and publishes to its user's activity/ tree. */
export function effectiveGrants(id: IdentityConfig, tenant: string): { publish: string[]; subscribe: string[] } {
  const declared = id.grants;
  const raw =
    declared !== undefined
      ? { publish: declared.publish ?? [], subscribe: declared.subscribe ?? [] }
      : id.role === "c2b"
        ? { publish: ["activity/{user}/#"], subscribe: ["client/{identity}/#"] }
        : { publish: [], subscribe: [] };
  const bind = (f: string) =>
    f.replace(/\{identity\}/g, id.name).replace(/\{user\}/g, id.user ?? "").replace(/\{tenant\}/g, tenant);
  return { publish: raw.publish.map(bind), subscribe: raw.subscribe.map(bind) };
}

/** Documented client id rule: `<identity>`, `<identity>_1`, ..., `<identity>_<maxClientIds - 1>`. */
export function clientIdBelongs(identity: string, clientId: string, maxClientIds = 4): boolean {
  if (clientId === identity) return true;
  const m = /^(.*)_([1-9][0-9]?)$/.exec(clientId);
  return m !== null && m[1] === identity && Number(m[2]) < maxClientIds;
}

/** MQTT 3.1.1 topic matching. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Whether every topic `requested` matches is matched by `grant` (MQTT semantics). */
export function filterCovered(requested: string, grant: string): boolean {
  const r = requested.split("/");
  const g = grant.split("/");
  for (let i = 0; i < g.length; i++) {
    if (g[i] === "#") return true;
    if (i >= r.length) return false; // requested is shorter: it matches a topic grant does not
    if (r[i] === "#") return false;
    if (g[i] === "+") continue;
    if (r[i] === "+" || r[i] !== g[i]) return false;
  }
  return r.length === g.length;
}

export function mayPublish(id: IdentityConfig, tenant: string, topic: string): boolean {
  return effectiveGrants(id, tenant).publish.some((g) => topicMatches(g, topic));
}

export function maySubscribe(id: IdentityConfig, tenant: string, filter: string): boolean {
  return effectiveGrants(id, tenant).subscribe.some((g) => filterCovered(filter, g));
}

/** A concrete topic that `filter` matches (for publishing a probe to a subscription). */
export function concreteTopic(filter: string): string {
  return filter
    .split("/")
    .map((l) => (l === "+" ? "p" : l === "#" ? "p/q" : l))
    .join("/");
}

/** Probe subscription filters and publish topics for a tenant's identities. */
export function probes(identities: readonly IdentityConfig[]): { subscribe: string[]; publish: string[] } {
  const users = [...new Set(identities.flatMap((i) => (i.user ? [i.user] : [])))];
  const subscribe = new Set<string>(["client/+/commands", "client/#", "activity/+/#", "activity/#", "#", "other/x"]);
  const publish = new Set<string>(["other/x", "activity/u-9999/telemetry"]);
  for (const i of identities) {
    for (const f of [`client/${i.name}/#`, `client/${i.name}/commands`, `client/${i.name}/+`]) subscribe.add(f);
    for (const t of [`client/${i.name}/commands`, `client/${i.name}/alerts`]) publish.add(t);
  }
  for (const u of users) {
    subscribe.add(`activity/${u}/#`);
    for (const t of [`activity/${u}/telemetry`, `activity/${u}/status`, `activity/${u}/deep/x`]) publish.add(t);
  }
  return { subscribe: [...subscribe], publish: [...publish] };
}
