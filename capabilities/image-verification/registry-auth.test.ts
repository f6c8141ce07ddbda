import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AUTH_FILE_CHECK_MS, parseDockerConfig, RegistryAuthFile } from "./registry-auth";

const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("parseDockerConfig", () => {
  it("reads auth and username/password entries, keyed in the spelling images are matched in", () => {
    const creds = parseDockerConfig(JSON.stringify({
      auths: {
        "https://index.docker.io/v1/": { auth: b64("hub-user:hub:pass") },
        "GHCR.io": { username: "gh", password: "token" },
        "registry.example.com:443": { auth: b64("u:p") },
      },
    }));
    expect([...creds]).toEqual([
      ["docker.io", { username: "hub-user", password: "hub:pass" }],
      ["ghcr.io", { username: "gh", password: "token" }],
      ["registry.example.com", { username: "u", password: "p" }],
    ]);
  });

  it.each<[string, RegExp]>([
    ["{", /not JSON/],
    ["{}", /no "auths" object/],
    [JSON.stringify({ auths: { "r.example": { auth: b64("no-colon") } } }), /auths\["r.example"\]\.auth is not base64 of user:password/],
    [JSON.stringify({ auths: { "r.example": { identitytoken: "x" } } }), /auths\["r.example"\] has no username and password/],
  ])("refuses %s, saying why and nothing secret", (text, why) => {
    expect(() => parseDockerConfig(text)).toThrow(why);
    try {
      parseDockerConfig(text);
    } catch (err) {
      expect((err as Error).message).not.toContain("no-colon");
    }
  });
});

describe("RegistryAuthFile", () => {
  it("re-reads the file when it changes, keeps the last good credentials when it breaks or goes, and says so without secrets", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-auth-"));
    const file = path.join(dir, "config.json");
    const write = (text: string, mtime: number) => {
      fs.writeFileSync(file, text);
      fs.utimesSync(file, mtime, mtime);
    };
    write(JSON.stringify({ auths: { "r.example": { username: "u1", password: "secret-one" } } }), 1000);
    let now = 0;
    const errors: string[] = [];
    const auth = new RegistryAuthFile(file, m => errors.push(m), () => now);
    expect(auth.current().get("r.example")?.username).toBe("u1");
    write(JSON.stringify({ auths: { "r.example": { username: "u2", password: "secret-two" } } }), 2000);
    expect(auth.current().get("r.example")?.username).toBe("u1"); // not looked at again yet
    now += AUTH_FILE_CHECK_MS;
    expect(auth.current().get("r.example")?.username).toBe("u2");
    write("{ broken", 3000);
    now += AUTH_FILE_CHECK_MS;
    expect(auth.current().get("r.example")?.username).toBe("u2");
    fs.rmSync(file);
    now += AUTH_FILE_CHECK_MS;
    expect(auth.current().get("r.example")?.username).toBe("u2");
    now += AUTH_FILE_CHECK_MS;
    auth.current();
    expect(errors).toEqual([
      "registry auth file: not JSON (a Docker config.json / .dockerconfigjson is expected); keeping the last good credentials",
      `registry auth file ${file}: ENOENT; keeping the last good credentials`,
    ]);
    expect(errors.join(" ")).not.toMatch(/secret/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
