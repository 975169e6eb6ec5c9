/**
 * Roles: the two access patterns teams use, as ceilings on what an identity's grants may reach.
 *
 * - `c2b` (consumer-to-business apps and devices): subscribe only under `client/{identity}/`,
 *   publish only under `activity/{user}/`. Grants default to the whole ceiling and may narrow it.
 * - `b2b` (business-to-business services): any topic inside the tenant's vhost, but only what the
 *   stack declares; there is no default, so a service with no grants can do nothing.
 */
import { parseTopicFilter, type TopicFilter } from "./topics";

export const ROLE_NAMES = ["c2b", "b2b"] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

export interface Role {
  readonly name: RoleName;
  readonly description: string;
  /** Every grant must lie within one of these (after placeholders are bound). */
  readonly ceiling: { readonly publish: readonly TopicFilter[]; readonly subscribe: readonly TopicFilter[] };
  /** Grants used when the identity declares none; undefined means grants are required. */
  readonly defaultGrants?: { readonly publish: readonly string[]; readonly subscribe: readonly string[] };
}

const C2B_SUBSCRIBE = "client/{identity}/#";
const C2B_PUBLISH = "activity/{user}/#";

export const ROLES: Readonly<Record<RoleName, Role>> = {
  c2b: {
    name: "c2b",
    description: `consumer-to-business: subscribe within ${C2B_SUBSCRIBE}, publish within ${C2B_PUBLISH}`,
    ceiling: { publish: [parseTopicFilter(C2B_PUBLISH)], subscribe: [parseTopicFilter(C2B_SUBSCRIBE)] },
    defaultGrants: { publish: [C2B_PUBLISH], subscribe: [C2B_SUBSCRIBE] },
  },
  b2b: {
    name: "b2b",
    description: "business-to-business: any topic in the tenant's vhost, as declared in grants",
    ceiling: { publish: [parseTopicFilter("#")], subscribe: [parseTopicFilter("#")] },
  },
};

export function isRoleName(value: string): value is RoleName {
  return (ROLE_NAMES as readonly string[]).includes(value);
}
