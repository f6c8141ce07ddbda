/**
 * The kars Pepr module: the list of capabilities, nothing else (DESIGN §1). Outside a cluster the
 * webhook port comes from KARS_WEBHOOK_PORT (the local provider runs several processes per host).
 */
import { PeprModule } from "pepr";
import cfg from "./package.json";
import { SandboxAdmission } from "./capabilities/sandbox-admission";
import { SandboxReconcile } from "./capabilities/sandbox-reconcile";

const module = new PeprModule(cfg, [SandboxAdmission, SandboxReconcile], { deferStart: true });
if (process.env.PEPR_MODE !== "build") module.start(Number(process.env.KARS_WEBHOOK_PORT ?? 3000));
