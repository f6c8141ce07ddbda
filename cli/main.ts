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

const commands: Record<string, () => Command> = {
  demo: () => require("./demo").main,
  router: () => require("./router-command").main,
  audit: () => require("./audit-command").main,
  cluster: () => require("./cluster").main,
};

async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const load = name ? commands[name] : undefined;
  if (!load) {
    console.error(usage);
    return name === "help" || name === "--help" ? 0 : 2;
  }
  return load()(rest);
}

run(process.argv.slice(2)).then(
  code => process.exit(code),
  (err: unknown) => {
    console.error(`kars: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
