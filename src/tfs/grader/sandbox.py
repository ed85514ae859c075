"""The grader's kernel: ipykernel behind resource limits, an audit hook and a tool guard.

nbgrader starts this instead of the plain IPython kernel for every submission it autogrades
(``tfs.grader.grading.SandboxKernelManager``, wired in ``autograder/nbgrader_config.py``)::

    python -m tfs.grader.sandbox --protect DIR [--protect DIR ...] -- <ipykernel arguments>

Student code then runs with

- limits on memory (address space), CPU time and the size of any file written, and no core dumps;
- no network: opening an internet socket or resolving a host name raises ``PermissionError``;
- no access to the protected folders (other submissions, the gradebook, the solutions and the
  autograder's configuration) except its own working folder, and no writes outside that folder
  and the temporary directory;
- the grader's tools (torch's and the course's functions the tests rely on) snapshotted before
  any student code runs; :func:`guard`, run at the top of every test cell, puts back whatever the
  notebook replaced and says so.

These are in-process defences. They stop accidents and casual cheating; code that sets out to
defeat them (``ctypes``, replacing this module in ``sys.modules``) can. ``autograder/INSTRUCTORS.md``
says how to add process-level isolation.
"""

from __future__ import annotations

import argparse
import builtins
import importlib
import inspect
import os
import resource
import socket
import sys
import tempfile

MEGABYTE = 1024 * 1024
GUARD_MARKER = "[grader] restored"
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
PATH_EVENTS = {  # audit event -> index of the path argument(s) that get written or removed
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.replace": (0, 1),
    "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.symlink": (1,), "os.link": (1,),
    "shutil.rmtree": (0,), "shutil.move": (0, 1), "shutil.copyfile": (1,),
}
NETWORK_EVENTS = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
                  "socket.gethostbyname", "socket.gethostbyaddr", "urllib.Request"}
INTERNET = {socket.AF_INET, socket.AF_INET6}

_MISSING = object()
TOOL_MODULES = ("tfs.teaching.checks", "tfs.teaching.probes")  # the tests' own tools: their public names are never a learner's
KERNEL_BUILTINS = {"input", "raw_input", "getpass", "exit", "quit", "get_ipython", "display"}
MODULE_ALIASES = {"torch": "torch", "F": "torch.nn.functional", "nn": "torch.nn", "math": "math"}

_protected: tuple[str, ...] = ()  # no access, except to _own inside them
_own: tuple[str, ...] = ()  # the submission's folder: anything goes
_scratch: tuple[str, ...] = ()  # the temporary directory: writes allowed outside the protected folders
_originals: dict[tuple[int, str], tuple[object, object]] = {}  # (id(owner), name) -> (owner, value)
_modules: dict[str, object] = {}  # the real modules, by name


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


def _guarded_objects():
    """(owner, attribute names) whose values the tests rely on."""
    import torch
    import torch.nn.functional
    import torch.testing

    import tfs.nn.attention
    import tfs.teaching.checks
    import tfs.teaching.probes

    modules = [torch, torch.nn.functional, torch.testing, torch.linalg, torch.autograd, builtins,
               tfs.teaching.checks, tfs.teaching.probes, tfs.nn.attention]
    classes = [torch.Tensor] + [value for value in vars(torch.nn).values() if isinstance(value, type)]
    for owner in modules + classes:
        names = [name for name in vars(owner) if not name.startswith("__") or owner is torch.Tensor]
        if owner is builtins:  # the kernel itself swaps these per request
            names = [name for name in names if not name.startswith("_") and name not in KERNEL_BUILTINS]
        yield owner, names


def snapshot() -> None:
    """Remember the tools as they are now, before any student code has run."""
    for owner, names in _guarded_objects():
        for name in names:
            _originals[(id(owner), name)] = (owner, vars(owner)[name])
    for module_name in {*MODULE_ALIASES.values(), *TOOL_MODULES}:
        _modules[module_name] = importlib.import_module(module_name)


def _torch_rewrapped(current, original) -> bool:
    """torch's own wrapper around the original (``torch._dynamo`` wraps ``torch.manual_seed`` on first use)."""
    code = getattr(current, "__code__", None)
    return (code is not None and inspect.unwrap(current) is inspect.unwrap(original)
            and code.co_filename.startswith(os.path.dirname(_modules["torch"].__file__) + os.sep))


def guard(namespace: dict) -> list[str]:
    """Put back every snapshotted tool the notebook replaced, in its module and in ``namespace``.

    Called at the top of each test cell. Returns the names restored, and prints them after
    :data:`GUARD_MARKER` on stdout (nbgrader scores any stderr output in a test cell as a failure);
    the grader moves that line into its notes.
    """
    restored = []
    for (_, name), (owner, original) in _originals.items():
        current = vars(owner).get(name, _MISSING)
        if current is not original and not _torch_rewrapped(current, original):
            setattr(owner, name, original)
            restored.append(f"{getattr(owner, '__name__', owner)}.{name}")
    for alias, module_name in MODULE_ALIASES.items():
        module = _modules[module_name]
        if sys.modules.get(module_name) is not module:
            sys.modules[module_name] = module
            restored.append(f"sys.modules[{module_name!r}]")
        if alias in namespace and namespace[alias] is not module:
            namespace[alias] = module
            restored.append(alias)
    for module_name in TOOL_MODULES:  # not torch's or tfs.nn.attention' names: learners define their own of those
        for name, value in vars(_modules[module_name]).items():
            defined_here = callable(value) and getattr(value, "__module__", None) == module_name
            if defined_here and not name.startswith("_") and namespace.get(name, value) is not value:
                namespace[name] = value
                restored.append(name)
    if restored:
        print(f"{GUARD_MARKER} {', '.join(sorted(set(restored)))}: the notebook had replaced them")
    return restored



def install(protect: list[str]) -> None:
    """Set the folders, the environment for caches, and the audit hook."""
    global _protected, _own, _scratch
    scratch = tempfile.mkdtemp(prefix="tfs-grader-")
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
    from tfs.grader import sandbox  # this module under its own name, so that guard() finds the same state

    sandbox.install(args.protect)
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize([a for a in kernel_args if a != "--"])
    from tfs.teaching import checks

    checks._register_with_ipython()  # tfs was imported before IPython existed: register the check handler now
    sandbox.snapshot()  # after IPython has set up its builtins, before any student code
    app.start()


if __name__ == "__main__":
    main()
