// A CommonJS consumer of the BUILT package, protecting a real IOServer.
const { runConsumer } = require("./scenario.cjs");
const oidc = require("ioserver-oidc");
const testing = require("ioserver-oidc/testing");

runConsumer(oidc, testing).then(
  (result) => process.stdout.write(JSON.stringify({ format: "cjs", ...result }) + "\n"),
  (error) => {
    process.stderr.write(String(error && error.stack) + "\n");
    process.exitCode = 1;
  },
);
