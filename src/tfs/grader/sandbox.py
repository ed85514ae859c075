"""The grader's kernel: ipykernel behind resource limits and an audit hook.

nbgrader starts this instead of the plain IPython kernel for every submission it autogrades
(``tfs.grader.grading.SandboxKernelManager``, wired in ``autograder/nbgrader_config.py``)::

    python -m tfs.grader.sandbox --protect DIR [--protect DIR ...] -- <ipykernel arguments>

Student code then runs with

- limits on memory (address space), CPU time and the size of any file written, and no core dumps;
- no network: opening an internet socket or resolving a host name raises ``PermissionError``;
- no access to the protected folders (other submissions, the gradebook, the solutions and the
  autograder's configuration) except its own working folder, and no writes outside that folder
  and the temporary directory.

These are in-process defences: they stop accidents; code that sets out to defeat them (``ctypes``)
can. What decides a grade never runs here: hidden tests are judged in another process
(:mod:`tfs.grader.judged`), and the kernel itself runs under OS-level isolation
(:mod:`tfs.grader.isolation`). The in-kernel tool guard of earlier versions is gone: with every
chapter judged outside the kernel it decided nothing, and it could not be made safe.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import sys
import tempfile

MEGABYTE = 1024 * 1024
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
PATH_EVENTS = {  # audit event -> index of the path argument(s) that get written or removed
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.replace": (0, 1),
    "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.symlink": (1,), "os.link": (1,),
    "shutil.rmtree": (0,), "shutil.move": (0, 1), "shutil.copyfile": (1,),
}
NETWORK_EVENTS = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
                  "socket.gethostbyname", "socket.gethostbyaddr", "urllib.Request"}
INTERNET = {socket.AF_INET, socket.AF_INET6}

_protected: tuple[str, ...] = ()  # no access, except to _own inside them
_own: tuple[str, ...] = ()  # the submission's folder: anything goes
_scratch: tuple[str, ...] = ()  # the temporary directory: writes allowed outside the protected folders


def _real(path) -> str:
    return os.path.realpath(os.fsdecode(path))


def _inside(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == folder or path.startswith(folder + os.sep) for folder in folders)


def _check_path(path, writing: bool) -> None:
    if isinstance(path, int):  # an already open file descriptor
        return
    resolved = _real(path)
    if _inside(resolved, _own):
        return
    if _inside(resolved, _protected):
        raise PermissionError(f"the grader does not let a submission read or change {resolved}")
    if writing and not _inside(resolved, _scratch):
        raise PermissionError(f"the grader lets a submission write only in its own folder, not {resolved}")


def _audit(event: str, args: tuple) -> None:
    if event == "open":
        path, _mode, flags = args
        _check_path(path, writing=bool((flags or 0) & WRITE_FLAGS))
    elif event in PATH_EVENTS:
        for index in PATH_EVENTS[event]:
            if index < len(args) and args[index] is not None:
                _check_path(args[index], writing=True)
    elif event in NETWORK_EVENTS:
        if event in {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"}:
            if getattr(args[0], "family", None) not in INTERNET:
                return  # local (unix) sockets, as used by the kernel's own machinery
        raise PermissionError("the grader does not allow network access")


def apply_limits(memory_mb: int, cpu_seconds: int, file_mb: int) -> None:
    """Address space, CPU time, size of a written file; no core dumps."""
    for limit, value in ((resource.RLIMIT_AS, memory_mb * MEGABYTE), (resource.RLIMIT_CPU, cpu_seconds),
                         (resource.RLIMIT_FSIZE, file_mb * MEGABYTE), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(limit, (value, value))


def install(protect: list[str]) -> None:
    """Set the folders, the environment for caches, and the audit hook."""
    global _protected, _own, _scratch
    scratch = tempfile.mkdtemp(prefix="tfs-grader-")
    from tfs.grader.isolation import host_smollm2

    smollm2 = host_smollm2()  # before the caches move: the converted model stays readable where it is
    if smollm2:
        os.environ["TFS_SMOLLM2_DIR"] = smollm2
    for variable in ("MPLCONFIGDIR", "IPYTHONDIR", "XDG_CACHE_HOME", "TORCHINDUCTOR_CACHE_DIR"):
        os.environ[variable] = os.path.join(scratch, variable.lower())
    _protected = tuple(_real(folder) for folder in protect)
    _own = (_real(os.getcwd()),)
    _scratch = (_real(tempfile.gettempdir()),)
    sys.addaudithook(_audit)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tfs.grader.sandbox")
    parser.add_argument("--protect", action="append", default=[], help="a folder the submission may not touch")
    parser.add_argument("--memory-mb", type=int, default=6144, help="address-space limit (MiB)")
    parser.add_argument("--cpu-seconds", type=int, default=1800, help="CPU-time limit (s)")
    parser.add_argument("--file-mb", type=int, default=100, help="largest file written (MiB)")
    args, kernel_args = parser.parse_known_args(argv)
    apply_limits(args.memory_mb, args.cpu_seconds, args.file_mb)
    from tfs.grader import sandbox  # this module under its own name (not __main__)
    from tfs.teaching import checks  # torch too: its import opens files the audit hook would refuse

    sandbox.install(args.protect)
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize([a for a in kernel_args if a != "--"])
    checks._register_with_ipython()  # tfs was imported before IPython existed: register the check handler now
    app.start()


if __name__ == "__main__":
    main()
