"""Calls system calls directly and prints, as one JSON object, what each returned: the errno it
failed with, or "ok". Used by tests/integration/seccomp-profile.spec.ts inside a runc container
under manifests/seccomp/kars-strict.json.

Arguments are chosen so that a call which does reach the kernel (no seccomp rule stopped it) is
harmless for an unprivileged process: bad pointers, bad descriptors, invalid flag combinations.
x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl); other machines print {"unsupported": <machine>}.
"""
import ctypes
import json
import os
import platform

X86_64 = {
    # name: (number, arguments)
    "mount": (165, (0, 0, 0, 0, 0)),
    "umount2": (166, (0, 0)),
    "ptrace": (101, (12, os.getpid(), 0, 0)),  # PTRACE_GETREGS on itself
    "bpf": (321, (999, 0, 0)),
    "unshare": (272, (0x04000000,)),  # CLONE_NEWUTS
    "setns": (308, (-1, 0)),
    "keyctl": (250, (0xFFFF, 0, 0, 0, 0)),
    "add_key": (248, (0, 0, 0, 0, 0)),
    "request_key": (249, (0, 0, 0, 0)),
    "userfaultfd": (323, (0xFFFFFFFF,)),
    "perf_event_open": (298, (0, 0, -1, -1, 0)),
    "kexec_load": (246, (0, 1000, 0, 0)),
    "kexec_file_load": (320, (-1, -1, 0, 0, 0xFFFF)),
    "init_module": (175, (0, 0, 0)),
    "finit_module": (313, (-1, 0, 0)),
    "delete_module": (176, (0, 0)),
    "pivot_root": (155, (0, 0)),
    "swapon": (167, (0, 0)),
    "swapoff": (168, (0,)),
    "reboot": (169, (0, 0, 0, 0)),  # bad magic numbers
    "open_by_handle_at": (304, (-1, 0, 0)),
    "name_to_handle_at": (303, (-1, 0, 0, 0, 0)),
    "process_vm_readv": (310, (os.getpid(), 0, 0, 0, 0, 0)),
    "process_vm_writev": (311, (os.getpid(), 0, 0, 0, 0, 0)),
    "iopl": (172, (4,)),
    "ioperm": (173, (0xFFFFFFFF, 1, 1)),
    "acct": (163, (-1,)),
    "quotactl": (179, (0, 0, 0, 0)),
    "chroot": (161, (0,)),
    "io_uring_setup": (425, (0, 0)),
    "open_tree": (428, (-1, 0, 0)),
    "move_mount": (429, (-1, 0, -1, 0, 0)),
    "fsopen": (430, (0, 0)),
    "fsconfig": (431, (-1, 0, 0, 0, 0)),
    "fsmount": (432, (-1, 0, 0)),
    "fspick": (433, (-1, 0, 0)),
    "mount_setattr": (442, (-1, 0, 0, 0, 0)),
    "pidfd_getfd": (438, (-1, -1, 0)),
    "clone3": (435, (0, 0)),
    "clone(CLONE_NEWUSER|CLONE_FS)": (56, (0x10000000 | 0x200, 0, 0, 0, 0)),  # an invalid pair: EINVAL if it ran
    "clone(CLONE_NEWNET|CLONE_NEWNS)": (56, (0x40000000 | 0x20000 | 0x200 | 0x10000000, 0, 0, 0, 0)),
    "personality(ADDR_NO_RANDOMIZE)": (135, (0x0040000,)),
    "personality(query)": (135, (0xFFFFFFFF,)),
    "memfd_secret": (447, (0,)),
    "socket(AF_VSOCK)": (41, (40, 1, 0)),  # to the hypervisor on VM-backed nodes, past iptables
    "socket(AF_ALG)": (41, (38, 5, 0)),
    "socket(AF_PACKET)": (41, (17, 3, 0)),
    "socket(AF_INET)": (41, (2, 2, 0)),
    "fanotify_init": (300, (0xFFFFFFFF, 0)),
}


def main() -> None:
    machine = platform.machine()
    if machine != "x86_64":
        print(json.dumps({"unsupported": machine}))
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    out = {}
    for name, (nr, args) in X86_64.items():
        ctypes.set_errno(0)
        r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
        out[name] = "ok" if r >= 0 else ctypes.get_errno()
    print(json.dumps(out))


main()
