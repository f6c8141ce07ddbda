/**
 * TypeScript shape of a KarsSandbox as stored by the apiserver (after CRD defaulting), mirroring
 * `karssandbox-crd.ts` field for field. Optional where the schema has no default.
 */

/** One allowed egress endpoint (`spec.networkPolicy.allowedEndpoints[]`). */
export interface AllowedEndpoint {
  name?: string;
  host: string;
  /** TCP port; defaulted to 443 by the CRD. */
  port?: number;
}

/** `spec.runtime.byo`: the bring-your-own runtime. */
export interface ByoRuntime {
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  contractVersion?: string;
}

export type RuntimeKind =
  | "OpenClaw"
  | "OpenAIAgents"
  | "MicrosoftAgentFramework"
  | "LangGraph"
  | "Anthropic"
  | "PydanticAi"
  | "Hermes"
  | "BYO";

export type Isolation = "standard" | "enhanced" | "confidential";

/** `spec` of a KarsSandbox (DESIGN §3). */
export interface KarsSandboxSpec {
  runtime: { kind: RuntimeKind; byo?: ByoRuntime } & Record<string, unknown>;
  sandbox?: {
    isolation?: Isolation;
    seccompProfile?: string;
    readOnlyRootFilesystem?: boolean;
    runAsNonRoot?: boolean;
    allowPrivilegeEscalation?: boolean;
    writablePaths?: string[];
  };
  networkPolicy?: {
    defaultDeny?: boolean;
    egressMode?: "Strict" | "Learn";
    allowedEndpoints?: AllowedEndpoint[];
    /** Unset: Refuse in Strict mode, Allow in Learn mode (router/src/egress/config.ts). */
    encryptedClientHello?: "Refuse" | "Allow";
    allowlistRef?: { registry: string; repository: string; digest?: string; artifactType?: string };
  };
  inferenceRef: { name: string };
  governance?: { enabled?: boolean; toolPolicyRef?: { name?: string }; trustThreshold?: number; trustedPeers?: string[] };
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  suspended?: boolean;
  [legacy: string]: unknown;
}

/** A kstatus-style condition (metav1.Condition). */
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

export type SandboxPhase = "Pending" | "Provisioning" | "Ready" | "Suspended" | "Failed" | "Terminating";

/** `status` of a KarsSandbox. */
export interface KarsSandboxStatus {
  phase?: SandboxPhase;
  observedGeneration?: number;
  namespace?: string;
  tokensUsed?: number;
  conditions?: Condition[];
}

/** A KarsSandbox object (metadata trimmed to what kars reads). */
export interface KarsSandbox {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    generation?: number;
    labels?: Record<string, string>;
    deletionTimestamp?: string;
    finalizers?: string[];
  };
  spec: KarsSandboxSpec;
  status?: KarsSandboxStatus;
}
