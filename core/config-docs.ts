/**
 * The README's config tables, generated from the JSON Schema that the zod config schemas generate
 * (core/config-json-schema.ts): a key's type, default and limits are read from the schema that
 * validates it, and its meaning from that schema's description, so each config fact is written
 * once. `npm run generate:schema` rewrites the tables between their markers; the unit tests fail
 * when the committed README differs from what the schemas generate.
 */

type Json = Record<string, unknown>;

export interface ConfigTableSpec {
  /** The marker's name: `<!-- config-table:<name> -->`. */
  readonly name: string;
  /** Path of the table's root in the stack config (`platform`, `tenant.apps[]`), or "" for the config itself. */
  readonly root: string;
  /** At the root "": which top-level keys, in order. */
  readonly keys?: readonly string[];
  /** Paths (from the table's root) whose row is kept but whose keys are another table's. */
  readonly stopAt?: readonly string[];
}

export interface ConfigRow {
  readonly key: string;
  readonly type: string;
  readonly default: string;
  readonly rule: string;
}

const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** `{secure: ...}`: a value the Pulumi CLI stores encrypted. */
function isSecret(s: Json): boolean {
  const p = s["properties"];
  return isObj(p) && Object.keys(p).length === 1 && "secure" in p;
}

/** The non-null branch of a nullable schema, and whether null is allowed. */
function unwrapNull(s: Json): { schema: Json; nullable: boolean } {
  const any = s["anyOf"];
  if (Array.isArray(any)) {
    const rest = (any as Json[]).filter((b) => b["type"] !== "null");
    if (rest.length === 1 && rest.length < any.length) return { schema: { ...rest[0], ...withoutAnyOf(s) }, nullable: true };
  }
  return { schema: s, nullable: false };
}

function withoutAnyOf(s: Json): Json {
  const { anyOf: _anyOf, ...rest } = s;
  return rest;
}

/** The properties of an object schema; a union of objects offers every branch's. */
function propertiesOf(s: Json): Json | undefined {
  if (isSecret(s)) return undefined;
  const p = s["properties"];
  if (isObj(p)) return p;
  const any = s["anyOf"];
  if (Array.isArray(any) && any.every((b) => isObj(b) && isObj(b["properties"]))) {
    return Object.assign({}, ...(any as Json[]).map((b) => b["properties"] as Json)) as Json;
  }
  return undefined;
}

function typeName(s: Json): string {
  if (isSecret(s)) return "secret";
  const { schema, nullable } = unwrapNull(s);
  const t = schema["type"];
  let name: string;
  if (isObj(schema["not"])) return "—";
  const any = schema["anyOf"];
  if (t === undefined && Array.isArray(any) && any.length > 0 && any.every((b) => isObj(b) && b["type"] === (any[0] as Json)["type"])) {
    return typeName(any[0] as Json) + (nullable ? " or null" : "");
  }
  const e = schema["enum"];
  if (Array.isArray(e) && e.length > 0 && e.every((v) => Number.isInteger(v))) name = "int";
  else if (t === "array") {
    const items = schema["items"];
    name = isObj(items) && propertiesOf(items) !== undefined ? "list" : `${isObj(items) ? typeName(items) : "any"}[]`;
  } else if (t === "integer") name = "int";
  else if (t === "boolean") name = "bool";
  else if (t === "number" || t === "string") name = t;
  else if (propertiesOf(schema) !== undefined || t === "object") name = "object";
  else name = "any";
  return nullable ? `${name} or null` : name;
}

const num = (n: number) => (Number.isInteger(n) && Math.abs(n) >= 10_000 ? n.toLocaleString("en-US") : String(n));

/**
 * A string YAML would read as something else (a number, a boolean, null) or could not read
 * plain: it is quoted, so that a default copied into a stack file stays a string (`"1.29"`).
 */
const PLAIN_STRING = /^(?![-+]?(?:\d|\.\d))(?!(?:true|false|yes|no|on|off|null|~)$)[A-Za-z0-9_./@-][A-Za-z0-9 _./@-]*$/i;

/** A value as a stack file writes it (YAML flow style). */
export function yamlish(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(yamlish).join(", ")}]`;
  if (isObj(v)) return `{${Object.entries(v).map(([k, x]) => `${k}: ${yamlish(x)}`).join(", ")}}`;
  if (typeof v === "string") return PLAIN_STRING.test(v) && !v.endsWith(" ") ? v : JSON.stringify(v);
  return String(v);
}

function defaultOf(s: Json, required: boolean): string {
  if (!("default" in s)) return required ? "required" : "—";
  const d = s["default"];
  // An object whose own keys carry the defaults (zod prefault {}): its rows say them.
  if (isObj(d) && Object.keys(d).length === 0) return "—";
  return `\`${yamlish(d)}\``;
}

function enumText(values: readonly unknown[]): string {
  const v = values.map((x) => `\`${yamlish(x)}\``);
  return v.length === 1 ? `only ${v[0]}` : v.length === 2 ? `${v[0]} or ${v[1]}` : `one of ${v.join(", ")}`;
}

const FORMATS: Readonly<Record<string, string>> = { ipv4: "an IPv4 address", ipv6: "an IPv6 address", uri: "a URL", email: "an e-mail address" };

/** The limits the schema states: allowed values, ranges, lengths, list sizes, formats. */
function constraintOf(s: Json): string[] {
  const { schema } = unwrapNull(s);
  const out: string[] = [];
  const format = schema["format"];
  if (typeof format === "string") out.push(FORMATS[format] ?? `format ${format}`);
  const any = schema["anyOf"];
  if (Array.isArray(any) && any.every((b) => isObj(b) && typeof b["format"] === "string")) {
    out.push((any as Json[]).map((b) => FORMATS[String(b["format"])] ?? `format ${String(b["format"])}`).join(" or "));
  }
  const e = schema["enum"];
  if (Array.isArray(e)) out.push(enumText(e));
  if ("const" in schema) out.push(enumText([schema["const"]]));
  // zod's .int() bounds every integer by the safe range: no limit of the config's own.
  const bound = (v: unknown) => (typeof v === "number" && Math.abs(v) < Number.MAX_SAFE_INTEGER ? v : undefined);
  const min = bound(schema["minimum"]);
  const max = bound(schema["maximum"]);
  if (typeof min === "number" && typeof max === "number") out.push(`${num(min)}–${num(max)}`);
  else if (typeof min === "number") out.push(`≥ ${num(min)}`);
  else if (typeof max === "number") out.push(`≤ ${num(max)}`);
  const minLen = schema["minLength"];
  const maxLen = schema["maxLength"];
  if (typeof maxLen === "number") out.push(typeof minLen === "number" && minLen > 0 ? `${minLen}–${maxLen} characters` : `≤ ${maxLen} characters`);
  else if (typeof minLen === "number" && minLen > 0) out.push("not empty");
  if (schema["type"] === "array") {
    const lo = schema["minItems"];
    const hi = schema["maxItems"];
    if (typeof lo === "number" && typeof hi === "number") out.push(`${lo}–${hi} entries`);
    else if (typeof lo === "number") out.push(`at least ${lo}`);
    else if (typeof hi === "number") out.push(`at most ${hi}`);
    const items = schema["items"];
    if (isObj(items) && propertiesOf(items) === undefined) {
      const each = constraintOf(items);
      if (each.length > 0) out.push(`each ${each.join(", ")}`);
    }
  }
  for (const k of ["exclusiveMinimum", "exclusiveMaximum"]) {
    if (k in schema) throw new Error(`config-docs: ${k} is not rendered; add it to constraintOf`);
  }
  return out;
}

function ruleOf(s: Json): string {
  const description = typeof s["description"] === "string" ? s["description"] : unwrapNull(s).schema["description"];
  return [...constraintOf(s), ...(typeof description === "string" ? [description] : [])].join("; ");
}

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** The rows of one table: a row per key that has a value, or a description, below the root. */
/** The keys an object schema requires (in a union of objects: those every branch requires). */
function requiredOf(s: Json): Set<string> {
  const r = s["required"];
  if (Array.isArray(r)) return new Set(r as string[]);
  const any = s["anyOf"];
  if (Array.isArray(any) && any.length > 0 && any.every(isObj)) {
    const sets = (any).map(requiredOf);
    return new Set([...sets[0]!].filter((k) => sets.every((x) => x.has(k))));
  }
  return new Set();
}

/**
 * The rows of one table: a row per key that has a value, or a description, below the root.
 * "required" in the default column: the key must be set (when its parent is).
 */
export function configRows(schema: Json, spec: ConfigTableSpec): ConfigRow[] {
  const rows: ConfigRow[] = [];
  const stop = new Set(spec.stopAt ?? []);
  const stopped = new Set<string>();
  const walk = (s: Json, path: string, required: boolean) => {
    const { schema: inner } = unwrapNull(s);
    const props = propertiesOf(inner);
    const items = inner["type"] === "array" && isObj(inner["items"]) ? inner["items"] : undefined;
    const itemProps = items !== undefined ? propertiesOf(items) : undefined;
    const container = props !== undefined || itemProps !== undefined;
    if (!container || typeof s["description"] === "string" || stop.has(path)) {
      rows.push({ key: path, type: typeName(s), default: defaultOf(s, required), rule: ruleOf(s) });
    }
    if (stop.has(path)) {
      stopped.add(path);
      return;
    }
    if (props !== undefined) {
      const req = requiredOf(inner);
      for (const [k, v] of Object.entries(props)) walk(v as Json, `${path}.${k}`, req.has(k));
    }
    if (itemProps !== undefined && items !== undefined) {
      const req = requiredOf(items);
      for (const [k, v] of Object.entries(itemProps)) walk(v as Json, `${path}[].${k}`, req.has(k));
    }
  };
  const start = locate(schema, spec.root);
  const top = spec.keys ?? Object.keys(propertiesOf(start) ?? {});
  const props = propertiesOf(start) ?? {};
  const req = requiredOf(start);
  for (const k of top) {
    const s = props[k];
    if (!isObj(s)) throw new Error(`config table ${spec.name}: no key ${k} under '${spec.root}'`);
    walk(s, k, req.has(k));
  }
  const missed = [...stop].filter((p) => !stopped.has(p));
  if (missed.length > 0) throw new Error(`config table ${spec.name}: no key ${missed.join(", ")} to stop at`);
  return rows;
}

/** The schema at a config path such as `platform.broker.tokens.issuer` or `tenant.apps[]`. */
function locate(schema: Json, path: string): Json {
  let s = schema;
  if (path === "") return s;
  for (const part of path.split(".")) {
    const name = part.replace(/\[\]$/, "");
    const next = propertiesOf(unwrapNull(s).schema)?.[name];
    if (!isObj(next)) throw new Error(`no config key '${name}' on the path '${path}'`);
    s = unwrapNull(next).schema;
    if (part.endsWith("[]")) {
      const items = s["items"];
      if (!isObj(items)) throw new Error(`config key '${name}' on the path '${path}' is not a list`);
      s = items;
    }
  }
  return s;
}

export function configTable(schema: Json, spec: ConfigTableSpec): string {
  const lines = ["| key | type | default | rule |", "| --- | --- | --- | --- |"];
  for (const r of configRows(schema, spec)) lines.push(`| \`${r.key}\` | ${r.type} | ${cell(r.default)} | ${cell(r.rule)} |`);
  return lines.join("\n");
}

const marker = (name: string) => `<!-- config-table:${name} (generated by npm run generate:schema; edit the zod schemas' descriptions) -->`;
const END = "<!-- /config-table -->";

/** The README with each marked table replaced by what the schema generates now. */
export function renderConfigTables(readme: string, schema: Json, specs: readonly ConfigTableSpec[]): string {
  let out = readme;
  for (const spec of specs) {
    const begin = marker(spec.name);
    const at = out.indexOf(begin);
    if (at < 0) throw new Error(`README has no marker ${begin}`);
    const end = out.indexOf(END, at);
    if (end < 0) throw new Error(`README's config table ${spec.name} has no end marker ${END}`);
    out = `${out.slice(0, at)}${begin}\n${configTable(schema, spec)}\n${out.slice(end)}`;
  }
  return out;
}
