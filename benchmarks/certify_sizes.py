"""Time and enclosure widths of the certificates (verify/certify.py) per size.

    OPENBLAS_NUM_THREADS=1 python benchmarks/certify_sizes.py [--sizes m,m_y,n ...] [--claims C,...] [--seed S]

One run per (claim, size), wall clock, on this machine; measurements, not test assertions.
UNIFORM-RATE uses m only. Prints one row per certificate: verdict, the precision that decided
it, the seconds, the widest relative enclosure width, and the headline enclosure.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from verify import certify as C  # noqa: E402
from verify.sampling import make_case  # noqa: E402

GAMMA = 0.9


def parse_size(text: str) -> tuple[int, int, int]:
    m, m_y, n = (int(x) for x in text.split(","))
    return m, m_y, n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=parse_size, default=[(32, 10, 200)], metavar="m,m_y,n")
    p.add_argument("--claims", default="UNIFORM-RATE,STATE-WISE,ENERGY,TRUST-REGION")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    claims = [c.strip() for c in args.claims.split(",") if c.strip()]
    functions = {"STATE-WISE": C.certify_state_wise, "ENERGY": C.certify_energy, "TRUST-REGION": C.certify_trust_region}
    print(f"{'claim':<18} {'m':>4} {'m_y':>4} {'n':>5}  {'verdict':<14} {'bits':>4} {'seconds':>8} {'max rel width':>13}  headline")
    for m, m_y, n in args.sizes:
        case = make_case(args.seed, m, m_y, n, GAMMA)
        for claim in claims:
            if claim == "NAIVE-BOUND-FALSE":
                cert = C.certify_naive_bound_false(m, GAMMA)
            elif claim == "UNIFORM-RATE":
                cert = C.certify_uniform_rate(case.A, GAMMA)
            else:
                cert = functions[claim](case.A, case.B, case.Phi, case.Y, GAMMA)
            head = C.HEADLINE[claim]
            enc = cert.enclosures.get(head)
            shown = f"{head} = {enc.mid:.12g} +/- {enc.rad:.1e}" if enc else "-"
            print(f"{claim:<18} {m:>4} {m_y:>4} {n:>5}  {cert.status:<14} {cert.bits:>4} {cert.seconds:>8.2f} "
                  f"{cert.max_rel_width:>13.1e}  {shown}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
