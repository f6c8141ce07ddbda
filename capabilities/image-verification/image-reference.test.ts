import { formatImageReference, parseImageReference } from "./image-reference";

const D = `sha256:${"a".repeat(64)}`;

describe("parseImageReference", () => {
  it.each<[string, string]>([
    ["busybox", "docker.io/library/busybox:latest"],
    ["busybox:1.36", "docker.io/library/busybox:1.36"],
    ["team/agent:v2", "docker.io/team/agent:v2"],
    ["index.docker.io/team/agent", "docker.io/team/agent:latest"],
    ["registry-1.docker.io/library/busybox", "docker.io/library/busybox:latest"],
    ["GHCR.IO/org/agent:v1", "ghcr.io/org/agent:v1"],
    ["ghcr.io:443/org/agent", "ghcr.io/org/agent:latest"],
    ["ghcr.io./org/agent", "ghcr.io/org/agent:latest"],
    ["ghcr.io.:443/org/agent", "ghcr.io/org/agent:latest"],
    ["Registry.Example:5000/team/agent", "registry.example:5000/team/agent:latest"],
    ["ghcr.io:0443/org/agent", "ghcr.io/org/agent:latest"],
    ["registry-1.docker.io:00443/library/x", "docker.io/library/x:latest"],
    ["registry.example:05000/team/agent", "registry.example:5000/team/agent:latest"],
    ["ghcr.io/org/team/agent:v2", "ghcr.io/org/team/agent:v2"],
    ["localhost/agent", "localhost/agent:latest"],
    ["127.0.0.1:5000/team/agent:1", "127.0.0.1:5000/team/agent:1"],
    ["[::1]:5000/agent", "[::1]:5000/agent:latest"],
    [`registry.example.com:5000/team/agent@${D}`, `registry.example.com:5000/team/agent@${D}`],
    [`ghcr.io/org/agent:v2@${D}`, `ghcr.io/org/agent:v2@${D}`],
  ])("%s → %s", (ref, canonical) => {
    expect(formatImageReference(parseImageReference(ref))).toBe(canonical);
  });

  it.each<[string, RegExp]>([
    ["", /1 to 4096 characters/],
    ["Busybox", /repository "Busybox" is not a valid repository name/],
    ["ghcr.io/org/agent:", /tag "" is not a valid tag/],
    ["ghcr.io/org/agent@sha256:abc", /digest "sha256:abc" is not sha256/],
    [`ghcr.io/org/agent@md5:${"a".repeat(32)}`, /digest "md5:/],
    ["ghcr.io//agent", /not a valid repository name/],
    ["bad_host.io:x/agent", /registry host "bad_host.io:x" is not a host\[:port\]/],
    ["registry.example:70000/agent", /registry port 70000 is not 1 to 65535/],
  ])("refuses %p naming what is wrong", (ref, why) => {
    expect(() => parseImageReference(ref)).toThrow(why);
    try {
      parseImageReference(ref);
    } catch (err) {
      expect((err as { code?: string }).code).toBe("invalid_reference");
    }
  });
});
