// manifests/kustomization.yaml (what the demo, the e2e stack and manifests/gitops/ apply) leaves no
// manifest of the repository out, and the GitOps examples point at directories that exist.
import * as fs from "node:fs";
import * as path from "node:path";
import { parse, parseAllDocuments } from "yaml";

const REPO = path.resolve(__dirname, "..");

/** Files a kustomization directory includes, following resource directories (kustomize's `resources`, `configMapGenerator.files`). */
function includedFiles(dir: string): string[] {
  const k = parse(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8")) as { resources?: string[]; configMapGenerator?: { files?: string[] }[] };
  const files = [path.join(dir, "kustomization.yaml")];
  for (const r of k.resources ?? []) {
    const p = path.resolve(dir, r);
    files.push(...(fs.statSync(p).isDirectory() ? includedFiles(p) : [p]));
  }
  for (const g of k.configMapGenerator ?? []) files.push(...(g.files ?? []).map(f => path.resolve(dir, f)));
  return files;
}

const yamlFilesUnder = (dir: string): string[] =>
  fs.readdirSync(path.join(REPO, dir), { recursive: true, encoding: "utf8" }).filter(f => /\.(ya?ml|json)$/.test(f)).map(f => path.join(REPO, dir, f));

describe("manifests/kustomization.yaml", () => {
  const included = new Set(includedFiles(path.join(REPO, "manifests")));
  it.each(["manifests/crds", "manifests/pepr", "manifests/rbac", "manifests/seccomp", "policies/vap"])("includes every manifest of %s", dir => {
    expect(yamlFilesUnder(dir).filter(f => !included.has(f)).map(f => path.relative(REPO, f))).toEqual([]);
  });
});

describe("manifests/gitops", () => {
  const objects = ["argocd/kars.yaml", "flux/kars.yaml"].flatMap(f =>
    parseAllDocuments(fs.readFileSync(path.join(REPO, "manifests/gitops", f), "utf8")).map(d => d.toJSON() as { kind: string; metadata: { name: string }; spec: Record<string, unknown> }),
  );
  const syncedPath = (o: (typeof objects)[number]): string =>
    o.kind === "Application" ? ((o.spec.source as { path: string }).path) : (o.spec.path as string).replace(/^\.\//, "");

  it("syncs the platform from manifests/ and the sandboxes from a directory of KarsSandbox objects, in both Argo CD and Flux", () => {
    const synced = objects.filter(o => o.kind === "Application" || o.kind === "Kustomization").map(o => [o.kind, o.metadata.name, syncedPath(o)]);
    expect(synced).toEqual([
      ["Application", "kars-platform", "manifests"],
      ["Application", "kars-sandboxes", "manifests/examples"],
      ["Kustomization", "kars-platform", "manifests"],
      ["Kustomization", "kars-sandboxes", "manifests/examples"],
    ]);
    const kinds = yamlFilesUnder("manifests/examples").flatMap(f => parseAllDocuments(fs.readFileSync(f, "utf8")).map(d => (d.toJSON() as { kind: string }).kind));
    expect(kinds).toEqual(expect.arrayContaining(["KarsSandbox", "InferencePolicy"]));
  });

  it("never prunes the platform (a pruned CRD deletes every KarsSandbox), and syncs it before the sandboxes", () => {
    const platform = objects.filter(o => o.metadata.name === "kars-platform");
    expect(platform.map(o => (o.kind === "Application" ? (o.spec.syncPolicy as { automated: { prune: boolean } }).automated.prune : o.spec.prune))).toEqual([false, false]);
    expect(objects.find(o => o.kind === "Kustomization" && o.metadata.name === "kars-sandboxes")!.spec.dependsOn).toEqual([{ name: "kars-platform" }]);
    expect((objects.find(o => o.kind === "Application" && o.metadata.name === "kars-platform") as unknown as { metadata: { annotations: Record<string, string> } }).metadata.annotations["argocd.argoproj.io/sync-wave"]).toBe("-1");
  });
});
