import { readFileSync } from "node:fs";
import { join } from "node:path";
import { renderCrdManifests } from "./crd-manifests";

describe("manifests/crds", () => {
  it.each(Object.entries(renderCrdManifests()))("%s matches its schema source (run `npm run gen:crds`)", (file, text) => {
    expect(readFileSync(join(__dirname, "..", "..", "manifests", "crds", file), "utf8")).toBe(text);
  });
});
