"""Why a field of env.json could not be read, in words a reader of the report understands.

A field that cannot be read is recorded as ``{"unavailable": "<why>"}``. ``reason_of`` words
the exception when the run captures its environment; ``unavailable_in_words`` words the
texts older runs recorded (the exception's type and message) the same way, so a report of
old and new runs side by side says the same thing for the same cause. Neither imports torch
nor pynvml: the reading side uses them too.
"""

from __future__ import annotations

import re
import subprocess

GIT_MISSING = "git is not installed"
NOT_A_CHECKOUT = "not a git checkout"
OLD_GIT_128 = "not a git checkout, or one git refuses to read (safe.directory)"
NO_COMMIT = "the git checkout has no commit yet"
GIT_NOT_TRUSTED = ("git refuses the checkout: another user owns it (see git's "
                   "safe.directory)")
GIT_TIMEOUT = "git did not answer in time"
NO_NVML_MODULE = "nvidia-ml-py is not installed"
NO_DRIVER = "no NVIDIA driver (NVML library not found)"

# pynvml's error classes are made at import time, one per error code; matched by name so
# that neither side needs pynvml to word them
NVML_ERRORS = {
    "NVMLError_LibraryNotFound": NO_DRIVER,
    "NVMLError_DriverNotLoaded": "the NVIDIA driver is not loaded",
    "NVMLError_NoPermission": "no permission to query the NVIDIA driver",
    "NVMLError_LibRmVersionMismatch": ("the NVIDIA driver and its library differ in version "
                                       "(the driver was updated without a reboot)"),
    "NVMLError_GpuIsLost": "the GPU fell off the bus (NVML: GPU is lost)",
}
# a raw detail longer than this is cut: it goes into one cell of a table
RAW_CHARS = 160


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= RAW_CHARS else line[:RAW_CHARS - 1] + "…"


def _git_failure(exc: subprocess.CalledProcessError) -> str:
    stderr = exc.stderr if isinstance(exc.stderr, str) else ""
    if "not a git repository" in stderr:
        return NOT_A_CHECKOUT
    if "dubious ownership" in stderr:
        return GIT_NOT_TRUSTED
    if "unknown revision" in stderr or "ambiguous argument 'HEAD'" in stderr:
        return NO_COMMIT
    detail = _short(stderr.removeprefix("fatal: ")) or f"exit status {exc.returncode}"
    return f"git failed: {detail}"


def _is_git(cmd) -> bool:
    first = cmd[0] if isinstance(cmd, (list, tuple)) and cmd else cmd
    return str(first) == "git"


def reason_of(exc: BaseException) -> str:
    """Why reading a field raised ``exc``, in words for the known causes (git, NVML); the
    exception's type and first line otherwise."""
    names = [cls.__name__ for cls in type(exc).__mro__]
    if isinstance(exc, FileNotFoundError) and exc.filename == "git":
        return GIT_MISSING
    if isinstance(exc, subprocess.CalledProcessError) and _is_git(exc.cmd):
        return _git_failure(exc)
    if isinstance(exc, subprocess.TimeoutExpired) and _is_git(exc.cmd):
        return GIT_TIMEOUT
    if isinstance(exc, ImportError) and exc.name == "pynvml":
        return NO_NVML_MODULE
    if names[0] in NVML_ERRORS:
        return NVML_ERRORS[names[0]]
    if "NVMLError" in names:
        return f"NVML error: {_short(str(exc))}"
    return _short(f"{type(exc).__name__}: {exc}")


_NVML_RAW = re.compile(r"(NVMLError(?:_\w+)?)(?::\s*(.*))?", re.DOTALL)
_STATUS = re.compile(r"exit status (\d+)")


def unavailable_in_words(text: str) -> str:
    """The reason an older run recorded as the raw exception (`CalledProcessError: Command
    '['git', 'rev-parse', 'HEAD']' returned non-zero exit status 128.`, `NVMLError_Library
    NotFound: ...`), worded as ``reason_of`` words it now; any other text as it is."""
    text = str(text)
    mentions_git = "'git'" in text or '"git"' in text or "git" in text.split()
    if "CalledProcessError" in text and mentions_git:
        status = _STATUS.search(text)
        # git exits with 128 outside any checkout, the usual cause, but also on a checkout
        # another user owns (safe.directory); the old text cannot tell the two apart
        if status is None or status.group(1) == "128":
            return OLD_GIT_128
        return f"git failed: exit status {status.group(1)}"
    if "FileNotFoundError" in text and mentions_git:
        return GIT_MISSING
    if "TimeoutExpired" in text and mentions_git:
        return GIT_TIMEOUT
    if "Error" in text and "pynvml" in text and ("ModuleNotFound" in text
                                                  or "ImportError" in text):
        return NO_NVML_MODULE
    match = _NVML_RAW.search(text)
    if match:
        name, message = match.group(1), (match.group(2) or "").strip()
        return NVML_ERRORS.get(name) or f"NVML error: {_short(message) or name}"
    return text
