// Writes manifests/crds/*.yaml from the schema sources (capabilities/shared/*-crd.ts).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderCrdManifests } from "../capabilities/shared/crd-manifests";

for (const [file, text] of Object.entries(renderCrdManifests())) {
  writeFileSync(join(__dirname, "..", "manifests", "crds", file), text);
  console.log(`wrote manifests/crds/${file}`);
}
