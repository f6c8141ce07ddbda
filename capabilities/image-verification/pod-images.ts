import type { V1Pod } from "@kubernetes/client-node";
import type { Violation } from "../shared/violation";
import { ImageVerificationError } from "./errors";
import type { ImagePolicy } from "./policy-match";
import { verifyImage, type ImageVerdict, type VerifyImageDeps } from "./verify-image";

/** Most distinct images of one pod verified (more is refused when a policy exists). */
export const MAX_POD_IMAGES = 64;
/** How many images of one pod are verified at once. */
export const POD_VERIFY_CONCURRENCY = 6;

/** Rule name of image refusals in admission messages. */
export const IMAGE_POLICY_RULE = "kars image policy";

/** One image of a pod and its field path (`spec.containers[0].image`). */
export interface PodImage {
  path: string;
  image: string;
}

/**
 * Every image of a pod with its field path: containers, init containers, ephemeral containers, and
 * image volumes (`spec.volumes[i].image.reference`, KEP-4639: an OCI image mounted as a volume, whose
 * content a container can read and run like its own image's).
 */
export function podImages(pod: V1Pod): PodImage[] {
  const out: PodImage[] = [];
  for (const list of ["initContainers", "containers", "ephemeralContainers"] as const) {
    (pod.spec?.[list] ?? []).forEach((c, i) => {
      if (typeof c?.image === "string") out.push({ path: `spec.${list}[${i}].image`, image: c.image });
    });
  }
  (pod.spec?.volumes ?? []).forEach((v, i) => {
    if (typeof v?.image?.reference === "string") out.push({ path: `spec.volumes[${i}].image.reference`, image: v.image.reference });
  });
  return out;
}

/** What verifying a pod's images found: images to pin (by path), refusals, warnings. */
export interface PodImageVerdicts {
  /** Images verified under a policy, each to be replaced by its pinned reference. */
  pins: PodImage[];
  /** One per refused image, with its field path, the reason and the rule (STYLE §4). */
  violations: Violation[];
  /** Warnings of `warn` policies, for the admission response. */
  warnings: string[];
}

/**
 * Verifies every image of `pod` under `policies` (verifyImage; each distinct image once, all at
 * once); with `oldPod` (an UPDATE), only images that are new or changed at their path. With
 * `requirePinned` (the validating webhook), an image an enforce policy covers must also name its
 * digest: the mutating webhook pins what it verified, so an unpinned one there means it could not (a
 * transient registry error, an UPDATE to a tag), and a tag would be resolved anew by the kubelet. Fails closed: an error of any kind on an image is a violation at that image's path; nothing
 * is thrown. Pure apart from the registry reads in `deps`.
 */
export async function verifyPodImages(pod: V1Pod, policies: readonly ImagePolicy[], deps: VerifyImageDeps, oldPod?: V1Pod, options: { requirePinned?: boolean } = {}): Promise<PodImageVerdicts> {
  // on UPDATE only what changed: an image admitted before is not re-read from the registry (a label
  // change must not fail because a registry is down), a new or changed one is verified
  const before = new Set((oldPod ? podImages(oldPod) : []).map(i => `${i.path}=${i.image}`));
  const images = podImages(pod).filter(i => !before.has(`${i.path}=${i.image}`));
  const distinct = [...new Set(images.map(i => i.image))];
  const out: PodImageVerdicts = { pins: [], violations: [], warnings: [] };
  if (policies.length > 0 && distinct.length > MAX_POD_IMAGES) {
    out.violations.push({ path: "spec", message: `names ${distinct.length} distinct images; kars verifies at most ${MAX_POD_IMAGES} per pod`, rule: IMAGE_POLICY_RULE });
    return out;
  }
  // a few at a time: the registry work of one pod stays bounded, whatever it names
  const outcomes = new Map<string, { v: ImageVerdict } | { e: unknown }>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < distinct.length) {
      const image = distinct[next++];
      outcomes.set(image, await verifyImage(image, policies, deps).then(v => ({ v }), (e: unknown) => ({ e })));
    }
  };
  await Promise.all(Array.from({ length: Math.min(POD_VERIFY_CONCURRENCY, distinct.length) }, worker));
  const warned = new Set<string>();
  for (const { path, image } of images) {
    const o = outcomes.get(image)!;
    if ("e" in o) {
      const message = o.e instanceof ImageVerificationError ? o.e.message : `image ${image}: verification failed (${(o.e as Error)?.message ?? String(o.e)})`;
      out.violations.push({ path, message, rule: IMAGE_POLICY_RULE });
      continue;
    }
    if (o.v.pinned && o.v.pinned !== image) out.pins.push({ path, image: o.v.pinned });
    // what an enforce policy covers runs only by the digest that was verified: a tag would be resolved again by the kubelet
    if (options.requirePinned && o.v.enforced && !image.includes("@")) {
      out.violations.push({ path, message: `image ${image} must name the digest it is verified as (${o.v.digest}): kars pins verified images when a pod is created; give the digest when changing one (name@${o.v.digest})`, rule: IMAGE_POLICY_RULE });
    }
    for (const w of o.v.warnings) {
      if (warned.has(w)) continue;
      warned.add(w);
      out.warnings.push(w);
    }
  }
  return out;
}

/** `pod` with each pinned image written at its path (a copy; the input is not changed). */
export function withPinnedImages(pod: V1Pod, pins: readonly PodImage[]): V1Pod {
  const spec = structuredClone(pod.spec ?? { containers: [] });
  for (const { path, image } of pins) {
    const m = /^spec\.(initContainers|containers|ephemeralContainers)\[(\d+)\]\.image$/.exec(path);
    const c = m ? spec[m[1] as "containers"]?.[Number(m[2])] : undefined;
    if (c) c.image = image;
    const v = /^spec\.volumes\[(\d+)\]\.image\.reference$/.exec(path);
    const volume = v ? spec.volumes?.[Number(v[1])] : undefined;
    if (volume?.image) volume.image.reference = image;
  }
  return { ...pod, spec };
}
