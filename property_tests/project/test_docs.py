"""The documentation runs as written: every fenced command and Python block of README.md,
CONTRIBUTING.md and docs/*.md, from a fresh clone after `make verify`.

- ```python blocks run in a subprocess (the venv's Python, cwd = the repository);
- ```bash blocks: each command line is checked. `python -m verify ...` and `.venv/bin/python -m
  verify ...` lines go through the campaign's own argument parser (every flag and value valid);
  `make X` names a target of the Makefile; a `python PATH ...` script exists; commands marked
  `# fast` at the end of their line are also run (with a time limit). Long commands are only
  parsed, never run here.
- The README's claims table is the registry's (verify.catalogue).
"""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def _blocks(kind: str):
    for path in DOCS:
        if not path.exists():
            continue
        for match in FENCE.finditer(path.read_text()):
            if match.group(1) == kind:
                line = path.read_text()[: match.start()].count("\n") + 1
                yield pytest.param(match.group(2), id=f"{path.name}:{line}")


def _commands():
    for param in _blocks("bash"):
        text = param.values[0]
        for raw in text.splitlines():
            line = raw.strip()
            if line and not line.startswith("#"):
                yield pytest.param(line, id=f"{param.id}:{line[:40]}")


def _targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


@pytest.mark.parametrize("code", list(_blocks("python")))
def test_python_blocks_run(code, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("line", list(_commands()))
def test_shell_commands_are_valid(line, capsys):
    fast = line.endswith("# fast")
    command = line.split(" #")[0].strip()
    words = shlex.split(command)
    env = {}
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value prefixes
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    assert words, line
    program = words[0]
    if program in ("python", "python3", ".venv/bin/python", "deq-verify"):
        module_args = words[1:] if program != "deq-verify" else ["-m", "verify", *words[1:]]
        if module_args[:2] == ["-m", "verify"]:
            from verify.__main__ import parse_args

            parse_args(module_args[2:])  # exits 2 on any flag or value the campaign refuses
        elif module_args and module_args[0] == "-m":
            __import__(module_args[1])  # the module exists
        elif module_args:
            assert (ROOT / module_args[0]).exists(), f"{module_args[0]} does not exist"
    elif program == "make":
        targets = [w for w in words[1:] if "=" not in w]
        assert set(targets) <= _targets(), f"unknown make target(s) {set(targets) - _targets()}"
    elif program in ("dask", "pip", "git", "cd", "time", "for", "d=$(mktemp"):
        pass  # external tools: parsed only
    if fast:
        argv = [sys.executable if program in ("python", "python3", ".venv/bin/python") else program, *words[1:]]
        proc = subprocess.run(
            argv,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1", **env},
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_readme_claims_table_is_the_registrys():
    from verify.catalogue import README, claims_table, readme_block

    assert readme_block(README.read_text()) == claims_table(), (
        "the README's claims table is stale: run `python -m verify.catalogue --write`"
    )
