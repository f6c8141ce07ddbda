/**
 * Why an image was refused, as a closed set of reason classes (STYLE §4: "no signature, wrong
 * identity, registry unreachable, or timeout"; an unsupported format is named as unsupported, not as a
 * failed check). Every refusal of image verification is an ImageVerificationError; its message is
 * lower-case, names what was expected and found, and never carries a credential.
 */
export type ImageVerificationCode =
  /** The image reference does not parse (OCI distribution spec, "Pulling manifests" name/reference grammar). */
  | "invalid_reference"
  /** The registry could not be reached, or answered with an error other than 404/401. */
  | "registry_unreachable"
  /** The registry refused our credentials (401/403 after the token exchange). */
  | "registry_unauthorized"
  /** Registry work did not finish within its deadline (fail closed). */
  | "timeout"
  /** The image (tag or digest) does not exist in the registry. */
  | "image_not_found"
  /** Content the registry served does not match the digest it was asked for (a lying or broken registry). */
  | "digest_mismatch"
  /** No signature of any supported kind was found for the digest. */
  | "no_signature"
  /** Signatures were found, none verifies with the policy's authorities (or none names this digest). */
  | "invalid_signature"
  /** A signature verifies but was made by another identity than the policy names (keyless). */
  | "wrong_identity"
  /** A format or algorithm kars does not handle (named, never reported as a failed check). */
  | "unsupported"
  /** The KarsImagePolicy that matches the image cannot be used (e.g. its key does not parse): fail closed. */
  | "policy_invalid";

/** A refusal of image verification (see ImageVerificationCode); `cause` keeps the underlying error. */
export class ImageVerificationError extends Error {
  constructor(
    readonly code: ImageVerificationCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ImageVerificationError";
  }
}
