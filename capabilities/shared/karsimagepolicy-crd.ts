/**
 * The one schema source of the KarsImagePolicy CRD (DESIGN §3, cluster-scoped; short name `kip`):
 * which images (globs over `registry/repository`) must be signed by which authorities, and whether a
 * failure refuses the pod (`enforce`) or only warns (`warn`). `npm run gen:crds` renders it to
 * `manifests/crds/kars.azure.com_karsimagepolicies.yaml`; a unit test fails when the YAML is stale.
 * This version serves key authorities (`key.pem`); keyless authorities and `trustRootRef`
 * (KarsTrustRoot) are not served yet, so the schema refuses them rather than ignoring them.
 */
import { GROUP } from "./constants";

type Schema = Record<string, unknown>;

const spec: Schema = {
  type: "object",
  required: ["images", "authorities"],
  properties: {
    images: {
      type: "array",
      minItems: 1,
      maxItems: 64,
      description: "Globs over the image's registry/repository (Docker normalisation: busybox is docker.io/library/busybox). `*` and `?` stay within a path component, `**` crosses them. Tags and digests are not matched.",
      items: {
        type: "string",
        minLength: 1,
        maxLength: 512,
        pattern: "^[A-Za-z0-9*?._:/-]+$",
        "x-kubernetes-validations": [
          { rule: "!self.contains('://')", message: "a glob names registry/repository, without a URL scheme (e.g. ghcr.io/org/**)", reason: "FieldValueInvalid" },
          { rule: "!self.matches('^[^/]*/.*:')", message: "a glob matches registry/repository only, never a tag (every tag of the repository is covered)", reason: "FieldValueInvalid" },
        ],
      },
    },
    authorities: {
      type: "array",
      minItems: 1,
      maxItems: 16,
      description: "A matching image must carry a cosign signature (a Sigstore bundle referrer or a legacy .sig tag) that one of these verifies, naming the image's digest.",
      items: {
        type: "object",
        required: ["key"],
        properties: {
          name: { type: "string", minLength: 1, maxLength: 63, pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", description: "Name for messages (default key-<index>)." },
          key: {
            type: "object",
            required: ["pem"],
            properties: { pem: { type: "string", maxLength: 16384, description: "PEM public key (SPKI): ECDSA P-256 (cosign generate-key-pair), Ed25519 or RSA." } },
            "x-kubernetes-validations": [{ rule: "self.pem.contains('-----BEGIN PUBLIC KEY-----')", message: "pem must be a PEM public key (-----BEGIN PUBLIC KEY-----)", fieldPath: ".pem", reason: "FieldValueInvalid" }],
          },
        },
      },
    },
    mode: { type: "string", enum: ["enforce", "warn"], default: "enforce", description: "enforce: a pod with a matching image that fails is refused; warn: it is admitted with a warning." },
  },
};

/** The KarsImagePolicy CustomResourceDefinition object (apiextensions.k8s.io/v1). */
export function karsImagePolicyCrd(): Schema {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `karsimagepolicies.${GROUP}` },
    spec: {
      group: GROUP,
      scope: "Cluster",
      names: { kind: "KarsImagePolicy", listKind: "KarsImagePolicyList", plural: "karsimagepolicies", singular: "karsimagepolicy", shortNames: ["kip"], categories: ["kars"] },
      versions: [
        {
          name: "v1alpha1",
          served: true,
          storage: true,
          additionalPrinterColumns: [
            { name: "Mode", type: "string", jsonPath: ".spec.mode" },
            { name: "Images", type: "string", jsonPath: ".spec.images" },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: "Which images in sandbox pods must be signed by which authorities (DESIGN §3, cosign-on-admission §4).",
              required: ["spec"],
              properties: { apiVersion: { type: "string" }, kind: { type: "string" }, metadata: { type: "object" }, spec },
            },
          },
        },
      ],
    },
  };
}
