"""The default campaign (`python -m verify`, what `make verify` runs) judges every module of verify/:
a module it never imports is a module nothing judges (a wrong formula there passes the run)."""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

RUN = """
import json, sys
from verify.__main__ import main
rc = main(["--count", "1", "--workers", "1", "--json", sys.argv[1]])
print(json.dumps({"rc": rc, "modules": sorted(m for m in sys.modules if m == "verify" or m.startswith("verify."))}))
"""


def _modules_of_the_package() -> set[str]:
    out = set()
    for path in (ROOT / "verify").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out.add(name.removesuffix(".__init__"))
    return out


def test_a_default_campaign_run_imports_every_module_of_verify(tmp_path):
    # one configuration per claim and tier, in this process (--workers 1), so that every module
    # a check imports lazily is loaded where it can be seen
    proc = subprocess.run([sys.executable, "-c", RUN, str(tmp_path / "report.json")], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "DEQ_VERIFY_TIERS": "default,slice,certify"}, timeout=900)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0, proc.stdout[-3000:]
    missing = _modules_of_the_package() - set(result["modules"])
    assert not missing, f"modules the default campaign never imports: {sorted(missing)}"
    report = json.loads((tmp_path / "report.json").read_text())
    assert {c["tier"] for c in report["claims"]} == {"default", "slice", "certify"}
