"""`python -m verify --certify`: run the plan, print the table, write the JSON report."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import nullcontext
from typing import Callable

from .plan import HEADLINE, default_plan
from .proof import CERTIFIED, EQUATION_RTOL, NOT_CERTIFIED, PRECISIONS, VIOLATED, Certificate


def describe(instance: dict) -> str:
    return ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in instance.items())


def write_json_atomically(path: str, data: dict) -> None:
    """Write to a temporary file in the same directory, then rename (no half-written report)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".certify-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(data, indent=2, sort_keys=True, default=float) + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run_cli(console, *, seed: int = 0, json_path: str | None = None,
            plan: list[tuple[str, Callable[[], Certificate]]] | None = None) -> int:
    """Certify every instance of the plan, print a table (and the reasons for anything not
    certified), optionally write JSON. Exit status 0 iff every certificate is certified."""
    from rich.table import Table

    plan = default_plan(seed) if plan is None else plan
    certificates = []
    with console.status("certifying", spinner="dots") if console.is_terminal else nullcontext():
        for _, run in plan:
            certificates.append(run())
    table = Table(title=f"deq-verify --certify (seed {seed}; ball arithmetic, python-flint)")
    for col, kw in [("claim", {}), ("instance", {}), ("verdict", {}), ("bits", {"justify": "right"}),
                    ("headline enclosure", {}), ("max rel width", {"justify": "right"}),
                    ("time (s)", {"justify": "right"})]:
        table.add_column(col, **kw)
    colour = {CERTIFIED: "green", VIOLATED: "red", NOT_CERTIFIED: "yellow"}
    for c in certificates:
        head = HEADLINE.get(c.claim)
        enc = c.enclosures.get(head)
        table.add_row(c.claim, describe(c.instance), f"[{colour[c.status]}]{c.status}[/]", str(c.bits),
                      f"{head} = {enc.mid:.12g} +/- {enc.rad:.1e}" if enc else "-", f"{c.max_rel_width:.1e}", f"{c.seconds:.2f}")
    console.print(table)
    console.print("certified = proved for this instance (every point of the balls), not the theorem; "
                  f"equations: residual ball holds 0 and is narrower than {EQUATION_RTOL:.1e} x their size.")
    for c in certificates:
        if c.status != CERTIFIED:
            console.print(f"[{colour[c.status]}]{c.status.upper()}[/] {c.claim} ({describe(c.instance)}): {c.reason}",
                          soft_wrap=True)
    all_certified = all(c.status == CERTIFIED for c in certificates)
    if json_path:
        write_json_atomically(json_path, {"seed": seed, "precisions": list(PRECISIONS), "equation_rtol": EQUATION_RTOL,
                                          "all_certified": all_certified,
                                          "certificates": [c.as_dict() for c in certificates]})
    return 0 if all_certified else 1
