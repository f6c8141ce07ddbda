#!/usr/bin/env node
// The `kars` command (DESIGN §0). kars runs on Node 24 LTS, pinned as the `node` devDependency: when
// started by another Node (e.g. the machine's Node 20 through a bare `./bin/kars.js`), re-execute on
// the pinned one so every library sees the runtime it was tested with.
"use strict";
const path = require("node:path");
const { spawn } = require("node:child_process");

const major = Number(process.versions.node.split(".")[0]);
if (major !== 24) {
  const pinned = path.join(__dirname, "..", "node_modules", "node", "bin", "node");
  const child = spawn(pinned, [__filename, ...process.argv.slice(2)], { stdio: "inherit" });
  // Forward stop signals so `kars demo --keep` cleans up whichever process receives them.
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  child.on("error", err => {
    console.error(`kars needs Node 24 (found ${process.version}); run 'npm ci' first: ${err.message}`);
    process.exit(1);
  });
  // a child ended by a signal exits as a shell reports it: 128 + the signal's number (SIGINT 130, SIGTERM 143)
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 + (require("node:os").constants.signals[signal] ?? 15) : 1)));
} else {
  require("tsx/cjs");
  require("../cli/main.ts");
}
