/**
 * `kars` command-line entry (DESIGN §0). Subcommands are a stable interface for users and scripts:
 * `demo [--keep]`, `router --config-dir DIR [--state-dir DIR]`, `audit verify DIR --pubkey FILE`,
 * `cluster up|down`. Each subcommand lives in its own module, loaded only when used.
 */
const usage = `usage: kars <command>
  demo [--keep]                               run the demo (local control plane when no KUBECONFIG)
  router --config-dir DIR [--state-dir DIR]   run an inference router + egress proxy
  audit verify DIR --pubkey FILE              verify an audit log directory
  cluster up|down                             start or stop the local control plane`;

type Command = (args: string[]) => Promise<number>;

// Lazy `require` on purpose: a subcommand loads only its own dependencies (the router must not
// pay for the Kubernetes client, nor the demo for fastify). tsx runs this file as CommonJS.
/* eslint-disable @typescript-eslint/no-require-imports */
const commands: Record<string, () => Promise<Command>> = {
  demo: async () => (require("./demo") as typeof import("./demo")).main,
  router: async () => (require("./router-command") as typeof import("./router-command")).main,
  audit: async () => (require("./audit-command") as typeof import("./audit-command")).main,
  cluster: async () => (require("./cluster") as typeof import("./cluster")).main,
};
/* eslint-enable @typescript-eslint/no-require-imports */

async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const load = name ? commands[name] : undefined;
  if (!load) {
    const help = name === "help" || name === "--help" || name === "-h";
    if (help) console.log(usage);
    else console.error(name ? `kars: unknown command ${name}\n${usage}` : usage);
    return help ? 0 : 2;
  }
  // `--help` never runs a command (`cluster up --help` must not start a control plane); router has its own help
  if (name !== "router" && rest.some(a => a === "--help" || a === "-h")) {
    console.log(`usage: kars ${usage.split("\n").filter(l => l.startsWith(`  ${name} `)).map(l => l.trim()).join("\n       kars ")}`);
    return 0;
  }
  return (await load())(rest);
}

run(process.argv.slice(2)).then(
  code => process.exit(code),
  (err: unknown) => {
    console.error(`kars: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
