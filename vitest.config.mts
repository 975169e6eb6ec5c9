import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["tests/unit/**/*.test.ts"],
          environment: "node",
          // Default isolation: every test file runs in its own forked process.
          pool: "forks",
          // Several unit tests run whole stack programs under mocks (thousands of resources) or a
          // subprocess; on a 2-core machine beside the e2e suites one took over 5 s. A hung test
          // still fails, after 60 s.
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["tests/e2e/**/*.e2e.test.ts"],
          exclude: ["tests/e2e/docker/**"],
          environment: "node",
          globalSetup: ["tests/support/global-setup.ts"],
          pool: "forks",
          // One broker, two cores: run e2e files one after another.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          // The dev platform on a real Docker engine (tests/support/docker-global-setup.ts): its own
          // tests, and the tenant-access and TLS-login suites run through the containers' published ports.
          name: "docker",
          include: ["tests/e2e/docker/**/*.e2e.test.ts", "tests/e2e/tenant-access.e2e.test.ts", "tests/e2e/tls-login.e2e.test.ts"],
          environment: "node",
          globalSetup: ["tests/support/docker-global-setup.ts"],
          pool: "forks",
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
