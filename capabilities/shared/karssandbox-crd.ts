/**
 * The one schema source of the KarsSandbox CRD (DESIGN §3). `npm run gen:crds` renders it to
 * `manifests/crds/kars.azure.com_karssandboxes.yaml`; a unit test fails when the YAML is stale.
 *
 * Structure: OpenAPI v3 (structural, https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema),
 * defaults applied by the apiserver, CEL `x-kubernetes-validations` so that a malformed object is
 * refused with a field path before any controller sees it. Fields the original kars accepted but
 * kars does not act on are kept (`x-kubernetes-preserve-unknown-fields`) and documented as such.
 */
import { GROUP, RESERVED_ENV_PREFIXES } from "./constants";
import { SYSTEM_PATHS } from "../sandbox-admission/system-paths";

type Schema = Record<string, unknown>;

/** Runtime kinds and the name of each kind's sibling block under `spec.runtime`. */
export const RUNTIME_BLOCKS: Readonly<Record<string, string>> = {
  OpenClaw: "openclaw",
  OpenAIAgents: "openaiAgents",
  MicrosoftAgentFramework: "microsoftAgentFramework",
  LangGraph: "langGraph",
  Anthropic: "anthropic",
  PydanticAi: "pydanticAi",
  Hermes: "hermes",
  BYO: "byo",
};

const preserved = (description: string): Schema => ({
  type: "object",
  description,
  "x-kubernetes-preserve-unknown-fields": true,
});

const str = (description: string, extra: Schema = {}): Schema => ({ type: "string", description, ...extra });

const envVar: Schema = {
  type: "object",
  required: ["name"],
  properties: {
    name: str("environment variable name", { minLength: 1, maxLength: 256, pattern: "^[A-Za-z_][A-Za-z0-9_]*$" }),
    value: str("literal value", { maxLength: 32768 }),
  },
};

const reservedPrefixList = `[${RESERVED_ENV_PREFIXES.map(p => `'${p}'`).join(", ")}]`;

const byo: Schema = {
  type: "object",
  description: "Bring-your-own runtime: the user's image implementing the kars runtime contract.",
  required: ["image"],
  properties: {
    image: str("OCI image reference; with BYO strict mode it must be digest-pinned", { minLength: 1, maxLength: 512 }),
    command: { type: "array", maxItems: 64, items: { type: "string", maxLength: 4096 } },
    args: { type: "array", maxItems: 256, items: { type: "string", maxLength: 4096 } },
    env: {
      type: "array",
      maxItems: 128,
      items: envVar,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name"],
      "x-kubernetes-validations": [
        {
          rule: `self.all(e, !${reservedPrefixList}.exists(p, e.name.startsWith(p)))`,
          message: `env names must not start with a reserved prefix ${RESERVED_ENV_PREFIXES.join(", ")}`,
        },
      ],
    },
    contractVersion: str("runtime contract version; kars supports v1 (strict mode refuses others)", {
      default: "v1",
      maxLength: 32,
    }),
  },
};

const runtimeBlockRules = Object.entries(RUNTIME_BLOCKS).map(([kind, block]) => ({
  rule: `!has(self.${block}) || self.kind == '${kind}'`,
  message: `spec.runtime.${block} is only allowed when runtime.kind is ${kind}`,
  fieldPath: `.${block}`,
  reason: "FieldValueForbidden",
}));

const runtime: Schema = {
  type: "object",
  required: ["kind"],
  properties: {
    kind: { type: "string", enum: Object.keys(RUNTIME_BLOCKS), description: "agent runtime adapter" },
    ...Object.fromEntries(
      Object.entries(RUNTIME_BLOCKS)
        .filter(([kind]) => kind !== "BYO")
        .map(([kind, block]) => [block, preserved(`${kind} runtime settings (config, agentCode, extraEnv, …) as the original accepted them`)]),
    ),
    byo,
  },
  "x-kubernetes-validations": [
    ...runtimeBlockRules,
    { rule: "self.kind != 'BYO' || has(self.byo)", message: "runtime.kind BYO requires spec.runtime.byo", fieldPath: ".byo", reason: "FieldValueRequired" },
  ],
};

const sandbox: Schema = {
  type: "object",
  default: {},
  description: "Pod posture. Every field defaults to the hardened value; weaker values are refused.",
  properties: {
    isolation: { type: "string", enum: ["standard", "enhanced", "confidential"], default: "enhanced" },
    seccompProfile: str("seccomp profile name for isolation=enhanced", { enum: ["kars-strict"], default: "kars-strict" }),
    readOnlyRootFilesystem: { type: "boolean", default: true, "x-kubernetes-validations": [{ rule: "self == true", message: "must be true (kars sandbox posture)" }] },
    runAsNonRoot: { type: "boolean", default: true, "x-kubernetes-validations": [{ rule: "self == true", message: "must be true (kars sandbox posture)" }] },
    allowPrivilegeEscalation: { type: "boolean", default: false, "x-kubernetes-validations": [{ rule: "self == false", message: "must be false (kars sandbox posture)" }] },
    writablePaths: {
      type: "array",
      default: ["/sandbox", "/tmp"],
      maxItems: 16,
      "x-kubernetes-list-type": "set",
      items: str("absolute path mounted as an emptyDir", { pattern: "^/[A-Za-z0-9._/-]*$", maxLength: 256 }),
      "x-kubernetes-validations": [
        { rule: "self.all(p, p != '/' && !p.contains('//') && !p.contains('/./') && !p.contains('/../') && !p.endsWith('/..') && !p.endsWith('/.'))", message: "writable paths must be normalised absolute paths other than /" },
        {
          rule: `self.all(p, !${JSON.stringify(SYSTEM_PATHS).replace(/"/g, "'")}.exists(s, p == s || p.startsWith(s + '/')))`,
          message: `writable paths must not be system paths (${SYSTEM_PATHS.join(", ")}): the root filesystem stays read-only`,
        },
      ],
    },
  },
};

const endpoint: Schema = {
  type: "object",
  required: ["host"],
  properties: {
    name: str("label for humans (kept from the original)", { maxLength: 253 }),
    host: str("DNS name or IP literal the agent may reach through the router's egress proxy", {
      minLength: 1,
      maxLength: 253,
      pattern: "^(\\*\\.)?[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$",
    }),
    port: { type: "integer", minimum: 1, maximum: 65535, default: 443 },
  },
};

const networkPolicy: Schema = {
  type: "object",
  default: {},
  properties: {
    defaultDeny: { type: "boolean", default: true },
    egressMode: { type: "string", enum: ["Strict", "Learn"], default: "Learn" },
    allowedEndpoints: { type: "array", maxItems: 256, items: endpoint },
    encryptedClientHello: {
      type: "string",
      enum: ["Refuse", "Allow"],
      description:
        "kars extension: what the router's egress proxy does with TLS that uses Encrypted Client Hello, whose real destination is hidden from its SNI check (a tunnel to an allowed host on a CDN could reach any site behind it). Refuse closes such connections; Allow relays them and counts them. Unset: Refuse in Strict mode, Allow in Learn mode. Chromium-based agents send ECH (GREASE) on every TLS 1.3 connection: Allow, or start them with --disable-features=EncryptedClientHello.",
    },
    allowlistRef: {
      type: "object",
      required: ["registry", "repository"],
      properties: {
        registry: str("OCI registry host", { minLength: 1, maxLength: 253 }),
        repository: str("OCI repository", { minLength: 1, maxLength: 512 }),
        digest: str("manifest digest", { pattern: "^sha256:[a-f0-9]{64}$" }),
        artifactType: str("OCI artifactType of the allowlist artifact", { maxLength: 256 }),
      },
    },
  },
};

const quantityMap: Schema = {
  type: "object",
  additionalProperties: { "x-kubernetes-int-or-string": true, anyOf: [{ type: "integer" }, { type: "string" }] },
};

const spec: Schema = {
  type: "object",
  required: ["runtime", "inferenceRef"],
  properties: {
    runtime,
    sandbox,
    networkPolicy,
    inferenceRef: {
      type: "object",
      required: ["name"],
      properties: { name: str("InferencePolicy name in the KarsSandbox's namespace", { minLength: 1, maxLength: 253 }) },
    },
    governance: {
      type: "object",
      properties: {
        enabled: { type: "boolean", default: false },
        toolPolicyRef: { type: "object", properties: { name: str("ToolPolicy name", { maxLength: 253 }) } },
        trustThreshold: { type: "integer", minimum: 0, maximum: 1000, default: 500 },
        trustedPeers: { type: "array", maxItems: 256, items: { type: "string", maxLength: 253 } },
        registryMode: str("kept from the original; not acted on by kars", { maxLength: 64 }),
      },
    },
    resources: { type: "object", properties: { requests: quantityMap, limits: quantityMap } },
    suspended: { type: "boolean", default: false },
    // Accepted so that the original's manifests apply unchanged; not acted on (admission warns).
    azureServices: { type: "array", items: preserved("kept from the original; not acted on by kars") },
    agent: preserved("kept from the original; not acted on by kars"),
    memoryRef: preserved("kept from the original; not acted on by kars"),
    mcpServerRefs: { type: "array", items: preserved("kept from the original; not acted on by kars") },
    pythonVersion: str("kept from the original; not acted on by kars", { maxLength: 16 }),
    entrypoint: { type: "array", items: { type: "string" } },
    extraEnv: { type: "object", additionalProperties: { type: "string" } },
  },
};

const condition: Schema = {
  type: "object",
  required: ["type", "status"],
  properties: {
    type: { type: "string" },
    status: { type: "string", enum: ["True", "False", "Unknown"] },
    reason: { type: "string" },
    message: { type: "string" },
    observedGeneration: { type: "integer" },
    lastTransitionTime: { type: "string", format: "date-time" },
  },
};

const status: Schema = {
  type: "object",
  properties: {
    phase: { type: "string", enum: ["Pending", "Provisioning", "Ready", "Suspended", "Failed", "Terminating"] },
    observedGeneration: { type: "integer" },
    namespace: { type: "string" },
    tokensUsed: { type: "integer", minimum: 0 },
    conditions: { type: "array", items: condition, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] },
  },
};

/** The KarsSandbox CustomResourceDefinition object (apiextensions.k8s.io/v1). */
export function karsSandboxCrd(): Schema {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `karssandboxes.${GROUP}` },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: { kind: "KarsSandbox", listKind: "KarsSandboxList", plural: "karssandboxes", singular: "karssandbox", shortNames: ["cs"], categories: ["kars"] },
      versions: [
        {
          name: "v1alpha1",
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Runtime", type: "string", jsonPath: ".spec.runtime.kind" },
            { name: "Phase", type: "string", jsonPath: ".status.phase" },
            { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
            { name: "Namespace", type: "string", jsonPath: ".status.namespace", priority: 1 },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: "A hardened sandbox for one untrusted AI agent (DESIGN §3).",
              required: ["spec"],
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: {
                  type: "object",
                  properties: { name: { type: "string", maxLength: 58, pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" } },
                },
                spec,
                status,
              },
            },
          },
        },
      ],
    },
  };
}
