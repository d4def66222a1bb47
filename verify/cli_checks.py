"""Checks of the campaign's command-line arguments that must run before any work, and the
fallback that keeps a report when writing it fails at the end anyway.

An error never costs the user work already done: every output path is checked before the first
configuration (exit status 2 on a bad one), and a report that still cannot be written where
asked is saved elsewhere and its location printed.
"""

from __future__ import annotations

import os
import stat
import tempfile


def check_output_path(option: str, path: str) -> str:
    """Make sure ``path`` can receive a report: non-empty, not a directory or other non-regular
    file, its directory existing (created if missing) and writable. Returns the absolute path;
    raises ValueError("--json: ...") naming the option and the problem."""
    if not path:
        raise ValueError(f"{option}: the path is empty")
    full = os.path.abspath(path)
    if os.path.isdir(full):
        raise ValueError(f"{option}: {path} is a directory; give a file name")
    if os.path.exists(full) and not stat.S_ISREG(os.stat(full).st_mode):
        raise ValueError(f"{option}: {path} is not a regular file (reports are written by atomic rename)")
    directory = os.path.dirname(full)
    ancestor = directory
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ValueError(f"{option}: {ancestor} is a file, so {path} cannot be created under it")
    try:
        os.makedirs(directory, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".deq-verify-", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"{option}: cannot write in {directory} ({err.strerror or err})") from None
    return full


def check_distinct_outputs(paths: dict[str, str]) -> None:
    """Two options must not name the same file (the second report would replace the first)."""
    seen: dict[str, str] = {}
    for option, path in paths.items():
        key = os.path.realpath(path)
        if key in seen:
            raise ValueError(f"{seen[key]} and {option} name the same file {path}; give two paths")
        seen[key] = option


def save_fallback(text: str, suffix: str) -> str | None:
    """Save ``text`` to a new file in the temporary directory (else the working directory);
    returns its path, or None if neither can be written."""
    for directory in (tempfile.gettempdir(), os.getcwd()):
        try:
            fd, path = tempfile.mkstemp(dir=directory, prefix="deq-verify-report-", suffix=suffix)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            return path
        except OSError:
            continue
    return None


def write_reports(outputs, write, usage_error) -> bool:
    """Write each requested report: ``outputs`` is a list of (option, path or None, render,
    suffix). A write that fails (disk full, a path that changed since the check) saves the report
    elsewhere and says where (through ``usage_error``), or prints it. True if all went where asked."""
    ok = True
    for option, path, render, suffix in outputs:
        if not path:
            continue
        text = render()
        try:
            write(path, text)
        except OSError as err:
            ok = False
            saved = save_fallback(text, suffix)
            where = f"saved to {saved} instead" if saved else "not saved anywhere; it follows on stdout"
            usage_error(f"{option}: could not write {path} ({err.strerror or err}); the report was {where}")
            if saved is None:
                print(text)
    return ok
