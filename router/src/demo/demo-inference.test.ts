import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runDemoInference } from "./demo-inference";

describe("runDemoInference", () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-demo-inference-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("answers one SDK chat through a real router and reports the budget left", async () => {
    const r = await runDemoInference({ workDir: dir, sandbox: "demo", tenant: "t", question: "ping pong", budget: { hourlyTokens: 1000 } });
    try {
      expect(r.answer).toBe('Hello from the kars demo model. You asked: "ping pong"');
      expect(r.usedTokens).toBe(4 + 10);
      expect(r.budgetLeft.hourly).toBe(1000 - 14);
      expect(r.addresses.api).toMatch(/^127\.0\.0\.1:\d+$/);
    } finally {
      await r.close();
    }
  });
});
