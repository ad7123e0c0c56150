// An ES module consumer of the BUILT package, protecting a real IOServer.
import { runConsumer } from "./scenario.cjs";
import * as oidc from "ioserver-oidc";
import * as testing from "ioserver-oidc/testing";

const result = await runConsumer(oidc, testing);
process.stdout.write(JSON.stringify({ format: "esm", ...result }) + "\n");
