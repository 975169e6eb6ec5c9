/**
 * vitest globalSetup for the `docker` project: the shipped `dev` platform stack applied to a real
 * Docker engine (tests/support/docker-platform.ts), one node, or three with E2E_CLUSTER=1, of the
 * release E2E_BROKER names (default 4.3, the one the stack ships). Tests reach node 0 as
 * `inject("broker")`, the others as `inject("peers")`, through their published ports, and the
 * containers as `inject("docker")`. E2E_KEEP_BROKER=1 leaves the containers running afterwards.
 */
import type { TestProject } from "vitest/node";
import { startDockerEngine } from "./docker-engine";
import { applyDevPlatform, removeDockerPlatform, type DockerPlatformInfo } from "./docker-platform";

declare module "vitest" {
  export interface ProvidedContext {
    docker: DockerPlatformInfo;
  }
}

export default async function setup({ provide }: TestProject): Promise<() => Promise<void>> {
  const series = process.env.E2E_BROKER !== undefined && process.env.E2E_BROKER !== "" ? process.env.E2E_BROKER : "4.3";
  const nodes = process.env.E2E_CLUSTER === "1" ? 3 : 1;
  const engine = await startDockerEngine();
  let prefix: string | undefined;
  try {
    const platform = await applyDevPlatform(engine, series, nodes);
    prefix = platform.info.prefix;
    const [first, ...peers] = platform.nodes;
    if (first === undefined) throw new Error("no node");
    console.log(
      `[e2e] RabbitMQ ${first.version} on Docker (${platform.info.image}): ${platform.info.containers.join(", ")} applied in ` +
        `${platform.info.applySeconds.toFixed(1)} s, healthy after ${platform.info.healthySeconds.toFixed(1)} s`,
    );
    provide("broker", first);
    provide("peers", peers);
    provide("docker", platform.info);
  } catch (err) {
    if (prefix !== undefined) await removeDockerPlatform(engine.socketPath, prefix);
    await engine.stop();
    throw err;
  }
  return async () => {
    if (process.env.E2E_KEEP_BROKER !== "1" && prefix !== undefined) await removeDockerPlatform(engine.socketPath, prefix);
    await engine.stop();
  };
}
