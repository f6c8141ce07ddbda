/**
 * Entry point of the router image (router/Dockerfile): the same as `kars router` (DESIGN §0) —
 * `node router.js --config-dir /etc/kars --state-dir /var/lib/kars` — without the rest of the CLI.
 */
import { main } from "../../cli/router-command";

main(process.argv.slice(2)).then(
  code => process.exit(code),
  (err: unknown) => {
    console.error(`kars router: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
