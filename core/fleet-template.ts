/**
 * A device class's permissions as one template, and each device's permissions rendered from it.
 *
 * A fleet's devices differ only in their name (and the end-user id `{user}` a device may act for):
 * the class's grants are compiled once (core/fleets.ts, with the ordinary compiler of
 * core/permissions.ts) with two tokens where a device's name and user id go, and each device's
 * permissions are the template with its validated names written in: escaped in regexes, literal in
 * queue names. The tokens use upper-case letters, which device names never contain and fleet
 * grants may not contain (core/fleets.ts refuses them), so a token can only stand where a name goes.
 * Equal to compiling the device's own grants: tests/unit/fleets.test.ts checks it for random names.
 *
 * This module is captured by the DeviceFleet dynamic provider, so it imports nothing but names.ts
 * (and a type from dn.ts).
 */
import type { CertificateSubject } from "./dn";
import { escapeRegex } from "./names";

export const DEVICE_TOKEN = "FLEETxDEVICE";
export const USER_TOKEN = "FLEETxUSER";
/** What a grant literal of a fleet may not contain. */
export const TOKEN_MARK = "FLEETx";

export interface FleetTemplate {
  /** `<device>@<tenant>`, with DEVICE_TOKEN. */
  readonly username: string;
  readonly configure: string;
  readonly write: string;
  readonly read: string;
  readonly exchange: string;
  readonly topicWrite: string;
  readonly topicRead: string;
  /** The MQTT plugin's queues of the device's client ids, with DEVICE_TOKEN. */
  readonly queues: readonly string[];
  /** Whether the grants use `{user}` (then every device of the registry names its user). */
  readonly usesUser: boolean;
}

/** One device's permissions: the template with its names written in. */
export type FleetDevicePermissions = Omit<FleetTemplate, "usesUser">;

/** `name` and `user` must already be validated (core/fleets.ts parseRegistry). */
export function renderDevice(t: FleetTemplate, name: string, user: string | undefined): FleetDevicePermissions {
  if (t.usesUser && user === undefined) throw new Error(`device ${name} has no user, but the fleet's grants use {user}`);
  const inRegex = (s: string) => {
    const withName = s.split(DEVICE_TOKEN).join(escapeRegex(name));
    return user === undefined ? withName : withName.split(USER_TOKEN).join(escapeRegex(user));
  };
  return {
    username: deviceUsername(t, name),
    configure: inRegex(t.configure),
    write: inRegex(t.write),
    read: inRegex(t.read),
    exchange: t.exchange,
    topicWrite: inRegex(t.topicWrite),
    topicRead: inRegex(t.topicRead),
    queues: deviceQueues(t, name),
  };
}

/** The device's broker user and MQTT queues (they do not depend on its user id). */
export function deviceUsername(t: Pick<FleetTemplate, "username">, name: string): string {
  return t.username.split(DEVICE_TOKEN).join(name);
}

export function deviceQueues(t: Pick<FleetTemplate, "queues">, name: string): string[] {
  return t.queues.map((q) => q.split(DEVICE_TOKEN).join(name));
}

/** A certificate fleet's subject for one device: the class's subject, its name in the CN. */
export function deviceSubject(subject: CertificateSubject, name: string): CertificateSubject {
  return { ...subject, commonName: (subject.commonName ?? "").split(DEVICE_TOKEN).join(name) };
}
