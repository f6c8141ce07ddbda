// The shape of manifests/seccomp/kars-strict.json against DESIGN §2; what it does to real programs is
// tests/integration/seccomp-profile.spec.ts (runc).
import * as fs from "node:fs";
import * as path from "node:path";
import { KARS_STRICT_LOCALHOST_PROFILE } from "../../capabilities/sandbox-admission/seccomp";

interface Arg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}
interface Rule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: Arg[];
}
const profile = JSON.parse(fs.readFileSync(path.join(__dirname, "kars-strict.json"), "utf8")) as {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: Rule[];
};

/** DESIGN §2: "explicit denial of at least" these. */
const DESIGN_DENIED = [
  "mount", "umount2", "ptrace", "bpf", "unshare", "setns", "keyctl", "add_key", "request_key", "userfaultfd", "perf_event_open",
  "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "pivot_root", "swapon", "swapoff", "reboot",
  "open_by_handle_at", "name_to_handle_at", "process_vm_readv", "process_vm_writev", "iopl", "ioperm", "acct", "quotactl",
];
/** The new mount API, io_uring and other ways around the list above, refused as well. */
const ALSO_DENIED = ["fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr", "io_uring_setup", "io_uring_enter", "io_uring_register", "chroot", "pidfd_getfd", "process_madvise", "kcmp"];

const unconditional = (action: string) => new Set(profile.syscalls.filter(r => r.action === action && !r.args).flatMap(r => r.names));
const allowed = unconditional("SCMP_ACT_ALLOW");
const refusedEperm = new Set(profile.syscalls.filter(r => r.action === "SCMP_ACT_ERRNO" && !r.args && r.errnoRet === 1).flatMap(r => r.names));

describe("kars-strict.json", () => {
  it("is installed under the name admission puts in pods (Localhost profiles/kars-strict.json)", () => {
    expect(path.basename(KARS_STRICT_LOCALHOST_PROFILE)).toBe(path.basename(__filename).replace(".test.ts", ".json"));
  });

  it("refuses by default (ERRNO, as ENOSYS so a C library falls back) on x86_64 and aarch64", () => {
    expect(profile).toMatchObject({ defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 38, architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"] });
  });

  it.each([...DESIGN_DENIED, ...ALSO_DENIED])("refuses %s explicitly with EPERM, and no rule allows it", name => {
    expect(refusedEperm.has(name)).toBe(true);
    expect(profile.syscalls.some(r => r.action === "SCMP_ACT_ALLOW" && r.names.includes(name))).toBe(false);
  });

  it("allows clone only without namespace flags, refuses each namespace flag with EPERM, and makes clone3 look unimplemented", () => {
    const clone = profile.syscalls.filter(r => r.names.includes("clone"));
    const nsFlags = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000]; // CLONE_NEW{NS,CGROUP,UTS,IPC,USER,PID,NET}
    expect(clone).toEqual([
      { names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: nsFlags.reduce((a, b) => a | b), valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }] },
      ...nsFlags.map(flag => ({ names: ["clone"], action: "SCMP_ACT_ERRNO", errnoRet: 1, args: [{ index: 0, value: flag, valueTwo: flag, op: "SCMP_CMP_MASKED_EQ" }] })),
    ]);
    expect(profile.syscalls.filter(r => r.names.includes("clone3"))).toEqual([{ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 }]);
  });

  it("allows personality only to query or to set the Linux personas Docker's default allows (not to turn off address randomisation)", () => {
    // PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, query
    expect(profile.syscalls.filter(r => r.names.includes("personality")).map(r => [r.action, r.args])).toEqual(
      [0, 0x8, 0x20000, 0x20008, 0xffffffff].map(value => ["SCMP_ACT_ALLOW", [{ index: 0, value, op: "SCMP_CMP_EQ" }]]),
    );
  });

  it("allows sockets of the UNIX, INET, INET6 and NETLINK families only; any other family (vsock, packet, alg, …) is EAFNOSUPPORT", () => {
    const rules = profile.syscalls.filter(r => r.names.includes("socket"));
    const allowedFamilies = rules.filter(r => r.action === "SCMP_ACT_ALLOW").map(r => r.args);
    expect(allowedFamilies).toEqual([1, 2, 10, 16].map(value => [{ index: 0, value, op: "SCMP_CMP_EQ" }]));
    // every family number 0..63 is decided by exactly one rule
    for (let family = 0; family < 64; family++) {
      const matching = rules.filter(r => r.args!.every(a => (a.op === "SCMP_CMP_EQ" ? family === a.value : a.op === "SCMP_CMP_GT" ? family > a.value : false)));
      expect(matching.map(r => (r.action === "SCMP_ACT_ALLOW" ? "allow" : r.errnoRet))).toEqual([[1, 2, 10, 16].includes(family) ? "allow" : 97]);
    }
  });

  it("names each system call in one unconditional rule at most, and keeps every list sorted", () => {
    const names = profile.syscalls.filter(r => !r.args).flatMap(r => r.names);
    expect(names.length).toBe(new Set(names).size);
    for (const r of profile.syscalls) expect(r.names).toEqual([...r.names].sort());
    expect(allowed.size).toBeGreaterThan(250);
  });
});
