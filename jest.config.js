// Two projects: `unit` (pure functions, beside their modules) and `e2e` (tests/e2e-kind, against a
// real apiserver started by the provider in globalSetup). `npm test` runs both.
const transform = { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] };
module.exports = {
  projects: [
    {
      displayName: "unit",
      testEnvironment: "node",
      transform,
      testMatch: ["<rootDir>/**/*.test.ts"],
      testPathIgnorePatterns: ["/node_modules/", "<rootDir>/tests/e2e-kind/"],
    },
    {
      // Real processes and kernels without a cluster: router + fake upstreams, network namespaces.
      displayName: "integration",
      testEnvironment: "node",
      transform,
      testMatch: ["<rootDir>/tests/integration/**/*.spec.ts"],
    },
    {
      displayName: "e2e",
      testEnvironment: "node",
      transform,
      testMatch: ["<rootDir>/tests/e2e-kind/**/*.spec.ts"],
      globalSetup: "<rootDir>/tests/e2e-kind/global-setup.ts",
      globalTeardown: "<rootDir>/tests/e2e-kind/global-teardown.ts",
      slowTestThreshold: 60,
      setupFilesAfterEnv: ["<rootDir>/tests/e2e-kind/jest-setup.ts"],
    },
  ],
};
