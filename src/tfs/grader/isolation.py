"""OS-level isolation of a grading kernel with bubblewrap (``bwrap``), and the launcher that starts it.

:class:`tfs.grader.grading.SandboxKernelManager` starts every grading kernel as::

    python -m tfs.grader.isolation --nproc N --memory-mb M ... -- bwrap <bwrap_arguments()> -- <kernel command>

This launcher runs outside the sandbox with the grader's rights: it sets the resource limits
(inherited by everything in the sandbox), then replaces itself with ``bwrap``, handing bwrap its
options through a pipe (``--args``) so that they do not show in the sandbox's ``/proc/1/cmdline``.

Inside, the kernel (``python -m tfs.grader.sandbox``) has

- its own PID, IPC, UTS and network namespaces: it sees only its own processes, cannot signal the
  grader, and has no network at all (not even the grader's loopback); it talks to nbgrader over
  ZeroMQ's ``ipc`` transport (Unix sockets in a folder bound into the sandbox), which needs none;
- when the grader is root, bwrap runs in its privileged mode and the kernel drops to a user id of
  its own (``setpriv``: no groups, no capabilities, ``no_new_privs``), so ``RLIMIT_NPROC`` counts
  only its processes; otherwise bwrap makes a user namespace (``--unshare-all``);
- read-only views of the system's programs and libraries (``/usr``, a few files of ``/etc``), of
  Python and the course's environment, of the ``tfs`` package and of the converted SmolLM2 folder
  (:data:`SMOLLM2_DIR`, named by ``TFS_SMOLLM2_DIR``); nothing else of the host: no
  ``solutions/``, ``grading/`` (submissions, gradebook), ``autograder/``, home folders or other
  kernels' folders exist in its view;
- a private, size-limited ``/tmp`` (its home and caches) and working folder (a copy of the
  student's own notebook folder), which vanish with the sandbox; the only host folders it can
  write are its own scratch folder's ``ipc`` and ``judge`` folders, removed after grading;
- a clean environment (``--clearenv``), nothing secret on its command line, limits on address
  space, CPU time, file size and processes, and ``--die-with-parent``: when the kernel stops, the
  sandbox's init exits and the PID namespace takes everything the kernel started with it;
- where the grader may make memory cgroups (:func:`memory_cgroup_parent`: root, or a delegated cgroup v2
  subtree), one limit on the memory of the whole sandbox (every process, and the files of its private
  folders, which live in memory): the launcher joins a cgroup of its own before it starts bwrap; where the
  grader may mount (root), the judge folder is a size-limited ``tmpfs`` (:func:`mount_capped_tmpfs`);
- the graded chapter's own references hidden (:mod:`tfs.grader.references`): rewritten modules bound over
  the real ones, an empty folder over their ``__pycache__``, so the real code is nowhere in its view;
- the small-run signals (:func:`small_run_environment`), the same that ``tfs check`` sets.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEGABYTE = 1024 * 1024
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "passwd", "group", "hosts",
             "mime.types", "alternatives", "fonts")
TOP_LEVEL = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
INSTALL_HINT = "install it with `apt-get install -y bubblewrap` (Debian/Ubuntu)"
SUBMISSION = "/submission"  # the kernel's working folder inside the sandbox
SUBMITTED_COPY = "/run/submitted"  # the student's own folder, read-only, copied into SUBMISSION at start
JUDGE_DIR = "/tmp/judge"  # TFS_JUDGE_OUT inside the sandbox (bound to the host's <scratch>/judge)
SMOLLM2_DIR = "/opt/tfs/smollm2"  # the host's converted SmolLM2 (tfs.data.smollm2_path), read-only


@functools.lru_cache(maxsize=None)
def unavailable_reason(bwrap: str = "bwrap") -> str | None:
    """``None`` when ``bwrap`` can start a sandbox here, else why not (in words for the instructor)."""
    program = shutil.which(bwrap)
    if program is None:
        return f"bubblewrap ({bwrap!r}) is not installed; {INSTALL_HINT}"
    probe = [program, *_namespaces(os.geteuid() == 0), "--die-with-parent", *system_binds(), "--proc", "/proc",
             "--dev", "/dev", "--", *_drop(65534 if os.geteuid() == 0 else None), "/bin/true"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap could not be started: {error}"
    if result.returncode != 0:
        return (f"bubblewrap cannot create a sandbox on this machine ({result.stderr.strip() or result.returncode}); "
                "user namespaces may be disabled (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)")
    return None


def _namespaces(privileged: bool) -> list[str]:
    """Root: bwrap's privileged mode, no user namespace (the kernel drops to its own uid inside)."""
    if not privileged:
        return ["--unshare-all"]
    return ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]


def _drop(uid: int | None) -> list[str]:
    """util-linux's setpriv: to ``uid``, no groups, no capabilities left, no new privileges ever."""
    if uid is None:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--"]


def system_binds() -> list[str]:
    """Read-only binds of the system's programs and libraries (merged-/usr symlinks kept as symlinks)."""
    arguments = ["--ro-bind", "/usr", "/usr", "--perms", "0755", "--dir", "/etc"]
    for path in TOP_LEVEL:
        if os.path.islink(path):
            arguments += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            arguments += ["--ro-bind", path, path]
    for name in ETC_FILES:
        path = os.path.join("/etc", name)
        if os.path.exists(path):
            arguments += ["--ro-bind", path, path]
    return arguments


def python_folders() -> list[str]:
    """Folders the kernel's Python needs: its installation, the environment and the ``tfs`` package."""
    import tfs

    folders = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix),
               os.path.dirname(os.path.realpath(tfs.__file__))}
    executable = os.path.realpath(sys.executable)
    if not any(executable.startswith(folder + os.sep) for folder in folders):
        folders.add(os.path.dirname(executable))
    folders = sorted(folders)  # a parent before its children, and no folder twice
    return [folder for i, folder in enumerate(folders)
            if not any(folder.startswith(other + os.sep) for other in folders[:i])]


def _ancestors(folders: list[str]) -> list[str]:
    """Folders above the bound ones that the sandbox must create (world-traversable), parents first."""
    made: list[str] = []
    for folder in folders:
        parent = os.path.dirname(folder)
        chain = []
        while parent not in ("/", "") and not any(parent == f or parent.startswith(f + os.sep) for f in folders):
            chain.append(parent)
            parent = os.path.dirname(parent)
        made += [path for path in reversed(chain) if path not in made]
    return made


def bwrap_arguments(*, ipc: str, judge: str, submitted: str | None, env: dict[str, str], tmp_mb: int,
                    command: list[str], uid: int | None = None, overlay: list[tuple[str, str]] = ()) -> list[str]:
    """``bwrap``'s arguments (without the program) for one kernel.

    ``ipc`` is bound at its own path (the connection file names it, for both sides); ``judge`` is
    bound at :data:`JUDGE_DIR`; ``submitted`` (the student's folder) is bound read-only and copied
    into the private working folder :data:`SUBMISSION` before the kernel starts.

    With ``uid`` (the grader runs as root), bwrap runs privileged without a user namespace and the
    kernel drops to ``uid`` inside (``setpriv``, every capability cleared): a real, unprivileged user
    of its own, which ``RLIMIT_NPROC`` counts. Without it, bwrap makes a user namespace.

    ``overlay`` is ``[(host file or folder, path in the view)]``, bound read-only over the Python folders
    (:func:`tfs.grader.references.overlay`: the graded chapter's references hidden).
    """
    size = str(tmp_mb * MEGABYTE)
    arguments = _namespaces(uid is not None) + ["--die-with-parent", "--new-session", *system_binds()]
    arguments += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", size, "--tmpfs", "/tmp",
                  "--perms", "1777", "--size", size, "--tmpfs", SUBMISSION]
    # Python and the course after the private /tmp, so that a checkout under /tmp is bound over it, not hidden
    folders = python_folders()
    smollm2 = host_smollm2()
    for folder in _ancestors(folders + [ipc, SUBMITTED_COPY] + ([SMOLLM2_DIR] if smollm2 else [])):
        if folder != "/tmp":  # already the private /tmp
            arguments += ["--perms", "0755", "--dir", folder]
    for folder in folders:
        arguments += ["--ro-bind", folder, folder]
    for source, target in overlay:  # over the real package: its hidden references' code is not in the view
        arguments += ["--ro-bind", source, target]
    arguments += ["--bind", ipc, ipc, "--bind", judge, JUDGE_DIR]
    if submitted:
        arguments += ["--ro-bind", submitted, SUBMITTED_COPY]
    if smollm2:
        arguments += ["--ro-bind", smollm2, SMOLLM2_DIR]
        env = {**env, "TFS_SMOLLM2_DIR": SMOLLM2_DIR}
    arguments += ["--chdir", SUBMISSION, "--clearenv"]
    for name, value in env.items():
        arguments += ["--setenv", name, value]
    drop = _drop(uid)
    prepare = f'mkdir -p "$HOME"; ' + (f"cp -r {SUBMITTED_COPY}/. {SUBMISSION}/ 2>/dev/null; " if submitted else "")
    return arguments + ["--", *drop, "/bin/sh", "-c", prepare + 'exec "$@"', "sh", *command]


SOCKET_PATH_MAX = 107  # a Unix socket's path, in bytes, on Linux (sun_path is 108 with its NUL)
# what grading adds under the scratch root: <root>/tfs-kernel-XXXXXXXX/ipc/k-<port> (ports counted from 1)
KERNEL_SOCKET_TAIL = "/tfs-kernel-xxxxxxxx/ipc/k-99999"


def scratch_root_problem(root: str) -> str | None:
    """Why kernels' ZeroMQ sockets could not be made under ``root`` (``""``: the temp folder), or None.

    The kernel's ``ipc`` sockets live in its scratch folder, and a Unix socket's path has at most 107 bytes: under a
    deeper folder every kernel would fail to start ("File name too long"), so grading refuses at start-up instead.
    """
    base = os.path.realpath(root or tempfile.gettempdir())
    length = len(os.fsencode(base + KERNEL_SOCKET_TAIL))
    if length <= SOCKET_PATH_MAX:
        return None
    return (f"the scratch folder {base!r} is too deep for the kernel's sockets: their paths would have {length} bytes, "
            f"and a Unix socket's path may have at most {SOCKET_PATH_MAX}. Choose a folder at most "
            f"{SOCKET_PATH_MAX - len(KERNEL_SOCKET_TAIL)} characters long "
            "(--SandboxKernelManager.scratch_root=/tmp/grading, or TMPDIR=/tmp)")


@functools.lru_cache(maxsize=None)
def memory_cgroup_parent() -> tuple[Path | None, str]:
    """The cgroup folder in which a kernel's memory cgroup can be made, or ``(None, why not)``.

    cgroup v2: this process's own cgroup, when its ``cgroup.subtree_control`` enables ``memory`` for children;
    cgroup v1: this process's folder in the ``memory`` hierarchy. Either way only where this user may make a
    folder there (root, or a subtree delegated to the grader's user). Found once per process: every kernel
    of a grading run asks."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError as error:
        return None, f"cannot read this process's cgroups ({error.strerror})"
    own = dict(line.split(":", 2)[1:] for line in lines if line.count(":") >= 2)  # controllers -> path
    candidates = []
    for line in mounts:
        fields = line.split()
        fstype, options = fields[fields.index("-") + 1], fields[-1].split(",")
        root, mount_point = fields[3], fields[4]
        if fstype == "cgroup2" and "" in own:
            candidates.append((Path(mount_point) / os.path.relpath(own[""], root), "cgroup.subtree_control"))
        elif fstype == "cgroup" and "memory" in options:
            path = next((p for c, p in own.items() if "memory" in c.split(",")), None)
            if path is not None:
                candidates.append((Path(mount_point) / os.path.relpath(path, root), "memory.limit_in_bytes"))
    for folder, marker in candidates:
        try:
            if marker == "cgroup.subtree_control" and "memory" not in (folder / marker).read_text().split():
                continue
            probe = folder / f"tfs-probe-{os.getpid()}"
            probe.mkdir()
            probe.rmdir()
            return folder, ""
        except OSError:
            continue
    return None, "no memory cgroup this user may make (the grader is not root and has no delegated cgroup)"


def join_memory_cgroup(folder: Path, limit_bytes: int) -> None:
    """Make ``folder`` a memory cgroup limited to ``limit_bytes`` (memory and swap together) and move this process
    into it: what it starts inherits the cgroup, and the kernel's OOM killer acts inside it alone."""
    folder.mkdir(exist_ok=True)  # a restarted kernel reuses its notebook's cgroup
    limits = (("memory.max", limit_bytes), ("memory.swap.max", 0)) if (folder / "memory.max").exists() else \
        (("memory.limit_in_bytes", limit_bytes), ("memory.memsw.limit_in_bytes", limit_bytes))
    for name, value in limits:
        if (folder / name).exists():
            (folder / name).write_text(str(value))
    (folder / "cgroup.procs").write_text(str(os.getpid()))


def remove_cgroup(folder: Path, seconds: float = 5.0) -> bool:
    """Remove a kernel's cgroup once its processes are gone (the sandbox's PID namespace ends them with the
    kernel, a moment later); False if it is still busy after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            folder.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def mount_capped_tmpfs(folder: Path, size_mb: int, uid: int) -> str | None:
    """Mount a ``size_mb`` tmpfs owned by ``uid`` on ``folder`` (root only); ``None``, or why it could not."""
    options = f"size={size_mb}m,mode=0700,uid={uid},gid={uid},nosuid,nodev,noexec"
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tfs-judge", str(folder)],
                            capture_output=True, text=True)
    return None if result.returncode == 0 else (result.stderr.strip() or f"mount exit status {result.returncode}")


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "--lazy", str(folder)], capture_output=True)


def host_smollm2() -> str | None:
    """The grader's converted SmolLM2 folder (notebooks load it through ``tfs.data.smollm2_path()``), or None."""
    from tfs.data import AssetError, smollm2_path

    try:
        return os.path.realpath(smollm2_path(fetch=False))
    except AssetError:
        return None


def small_run_environment(judge_out: str) -> dict[str, str]:
    """The signals a notebook may read while it is graded *or* checked (``tfs check``), the same in both.

    ``TFS_SMALL_RUN=1``: demonstrations run small (:func:`tfs.finetune.under_grading` reads it); ``TFS_JUDGE_OUT``:
    where collected data goes (checking collects none). Nothing tells a notebook which of the two runs it."""
    return {"TFS_SMALL_RUN": "1", "TFS_JUDGE_OUT": judge_out}


def kernel_environment(python: str, threads: int) -> dict[str, str]:
    """The kernel's whole environment: nothing of the grader's but its thread count. ``threads``: the kernel's
    ``OMP_NUM_THREADS``; 0 keeps the grader's own ``OMP_NUM_THREADS`` where it sets one (``make test`` runs one
    thread per process: two workers' kernels at torch's default of one thread per core made a notebook beside
    them six times slower), else torch's default."""
    inherited = os.environ.get("OMP_NUM_THREADS", "")
    if threads == 0 and inherited.isdigit() and int(inherited) > 0:
        threads = int(inherited)
    env = {"PATH": f"{os.path.dirname(python)}:/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp/home",
           "TMPDIR": "/tmp", "LANG": "C.UTF-8", "XDG_CACHE_HOME": "/tmp/home/.cache", "MPLBACKEND": "agg",
           "PYDEVD_DISABLE_FILE_VALIDATION": "1", "PYTHONDONTWRITEBYTECODE": "1", **small_run_environment(JUDGE_DIR)}
    if threads > 0:
        env |= {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return env


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, nearest first (from ``/proc``: works for processes in child PID namespaces)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        parent = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, queue = [], list(children.get(pid, []))
    while queue:
        current = queue.pop(0)
        found.append(current)
        queue += children.get(current, [])
    return found


def kernel_pid(launcher_pid: int, module: bytes = b"tfs.grader.sandbox") -> int | None:
    """The pid (in the grader's namespace) of the Python kernel (``python -m module``) under ``launcher_pid``."""
    for pid in descendants(launcher_pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if handle.read().split(b"\0")[1:3] == [b"-m", module]:
                    return pid
        except OSError:
            continue
    return None


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="python -m tfs.grader.isolation")
    parser.add_argument("--nproc", type=int, required=True, help="processes and threads of the kernel's user")
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--cpu-seconds", type=int, required=True)
    parser.add_argument("--file-mb", type=int, required=True)
    parser.add_argument("--cgroup", type=Path, default=None, help="a memory cgroup to make and join (its limit: --total-memory-mb)")
    parser.add_argument("--total-memory-mb", type=int, default=None)
    args = parser.parse_args(argv[:split])
    bwrap, arguments = argv[split + 1], argv[split + 2:]
    nproc = args.nproc if os.geteuid() == 0 else _own_tasks() + args.nproc  # own user: its other tasks count too
    for limit, value in ((resource.RLIMIT_AS, args.memory_mb * MEGABYTE), (resource.RLIMIT_CPU, args.cpu_seconds),
                         (resource.RLIMIT_FSIZE, args.file_mb * MEGABYTE), (resource.RLIMIT_CORE, 0),
                         (resource.RLIMIT_NPROC, nproc)):
        resource.setrlimit(limit, (value, value))
    if args.cgroup is not None:
        join_memory_cgroup(args.cgroup, args.total_memory_mb * MEGABYTE)
    # bwrap's options through a pipe (--args), so that the sandbox's init shows none of them in /proc/1/cmdline
    split = arguments.index("--")
    read, write = os.pipe()
    os.write(write, b"".join(argument.encode() + b"\0" for argument in arguments[:split]))
    os.close(write)
    os.set_inheritable(read, True)
    os.execv(bwrap, [bwrap, "--args", str(read), *arguments[split:]])


def _own_tasks() -> int:
    """Threads of every process of this user (what RLIMIT_NPROC counts)."""
    count = 0
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == os.getuid():
                count += len(os.listdir(f"/proc/{entry}/task"))
        except OSError:
            continue
    return count


if __name__ == "__main__":
    main()
