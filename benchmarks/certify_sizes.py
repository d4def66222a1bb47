"""Time and enclosure widths of the certificates (verify/certify/) per size, and of the plan.

    OPENBLAS_NUM_THREADS=1 python benchmarks/certify_sizes.py [--sizes m,m_y,n ...] [--claims C,...] [--seed S]
    OPENBLAS_NUM_THREADS=1 python benchmarks/certify_sizes.py --plan quick|full [--seed S]
    OPENBLAS_NUM_THREADS=1 python benchmarks/certify_sizes.py --preset structured [--seed S]

One run per (claim, size), wall clock and process CPU time (the latter is less disturbed by other
jobs on a shared machine), on this machine; measurements, not test assertions.
UNIFORM-RATE uses m only. Prints one row per certificate: verdict, the precision that decided
it, the smallest k of its equations (consistent to 2^-k), the seconds, the widest relative
enclosure width, the headline enclosure and the estimated cost (verify.certify.validation).
With --plan, runs verify.certify.plan.entries(seed, quick=...) entry by entry and prints the time
to build the plan (reference values) and to run it, each entry's verdict, bits and k.

--preset structured runs the sizes of the structured metric (verify/certify/metric.py): ENERGY at
(m, m_y, n) = (32,10,200), (48,10,200), (64,10,200), (128,10,1000), (256,10,1000) and TRUST-REGION at
(32,10,200), (48,10,200), (64,10,200), (96,10,200), (128,10,1000); targets m = 64, m_y = 10 in <= 5 s
each and ENERGY at m = 256 in <= 60 s. The last column names the widest enclosure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from verify import certify as C  # noqa: E402
from verify.certify import plan as P  # noqa: E402
from verify.sampling import make_case  # noqa: E402

GAMMA = 0.9
#: the enclosure that carries the claim's sharp statement (its relative width is printed too)
SHARP = {"ENERGY": "lambda_min(K)", "TRUST-REGION": "dt_max = 1/lambda_max(K^1/2 H K^1/2)"}
PRESETS = {
    "structured": [
        ("ENERGY", s) for s in ((32, 10, 200), (48, 10, 200), (64, 10, 200), (128, 10, 1000), (256, 10, 1000))
    ]
    + [("TRUST-REGION", s) for s in ((32, 10, 200), (48, 10, 200), (64, 10, 200), (96, 10, 200), (128, 10, 1000))]
}


def parse_size(text: str) -> tuple[int, int, int]:
    m, m_y, n = (int(x) for x in text.split(","))
    return m, m_y, n


def _k(cert) -> str:
    return "-" if cert.consistent_bits is None else str(cert.consistent_bits)


def run_plan(seed: int, quick: bool) -> int:
    started = time.perf_counter()
    entries = P.entries(seed, quick=quick)
    built = time.perf_counter() - started
    print(
        f"{'#':>3} {'claim':<18} {'kind':<9} {'label':<40} {'verdict':<14} {'ok':<3} {'bits':>4} {'k':>4} "
        f"{'seconds':>8}  history"
    )
    unexpected = 0
    for i, config in enumerate(entries, 1):
        t0 = time.perf_counter()
        cert = P.run_entry(config)
        ok = P.judge(config, cert)
        unexpected += not ok
        history = " ".join(f"{b}:{s}" + ("" if k is None else f"(k={k})") for b, s, k in cert.history)
        print(
            f"{i:>3} {config['claim']:<18} {config['kind']:<9} {config.get('label', '')[:40]:<40} {cert.status:<14} "
            f"{'yes' if ok else 'NO':<3} {cert.bits:>4} {_k(cert):>4} {time.perf_counter() - t0:>8.2f}  {history}",
            flush=True,
        )
    total = time.perf_counter() - started
    print(
        f"{'quick' if quick else 'full'} plan, seed {seed}: {len(entries)} entries, {unexpected} unexpected; "
        f"plan built in {built:.1f} s, total {total:.1f} s"
    )
    return 1 if unexpected else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=parse_size, default=[(32, 10, 200)], metavar="m,m_y,n")
    p.add_argument("--claims", default="UNIFORM-RATE,STATE-WISE,ENERGY,TRUST-REGION")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plan", choices=("quick", "full"), help="time the plan of --certify instead")
    p.add_argument("--preset", choices=sorted(PRESETS), help="run a preset list of (claim, size) pairs")
    args = p.parse_args(argv)
    if args.plan:
        return run_plan(args.seed, args.plan == "quick")
    claims = [c.strip() for c in args.claims.split(",") if c.strip()]
    runs = PRESETS[args.preset] if args.preset else [(c, s) for s in args.sizes for c in claims]
    functions = {"STATE-WISE": C.certify_state_wise, "ENERGY": C.certify_energy, "TRUST-REGION": C.certify_trust_region}
    print(
        f"{'claim':<18} {'m':>4} {'m_y':>4} {'n':>5}  {'verdict':<14} {'bits':>4} {'k':>4} {'seconds':>8} "
        f"{'cpu s':>7} {'max rel width':>13} {'cost':>8}  headline; widest enclosure"
    )
    for claim, (m, m_y, n) in runs:
        case = make_case(args.seed, m, m_y, n, GAMMA)
        cpu = time.process_time()
        if claim == "NAIVE-BOUND-FALSE":
            cert = C.certify_naive_bound_false(m, GAMMA)
        elif claim == "UNIFORM-RATE":
            cert = C.certify_uniform_rate(case.A, GAMMA)
        else:
            cert = functions[claim](case.A, case.B, case.Phi, case.Y, GAMMA)
        cpu = time.process_time() - cpu
        head = P.HEADLINE[claim]
        enc = cert.enclosures.get(head)
        shown = f"{head} = {enc.mid:.12g} +/- {enc.rad:.1e}" if enc else "-"
        cost = C.estimated_cost(claim, m, m_y, n)
        widest = max(cert.enclosures, key=lambda k: cert.enclosures[k].rel_width, default="-")
        key = SHARP.get(claim)
        if key in cert.enclosures:
            widest += f"; {key}: rel width {cert.enclosures[key].rel_width:.1e}"
        print(
            f"{claim:<18} {m:>4} {m_y:>4} {n:>5}  {cert.status:<14} {cert.bits:>4} {_k(cert):>4} "
            f"{cert.seconds:>8.2f} {cpu:>7.2f} {cert.max_rel_width:>13.1e} {cost:>8.1e}  {shown}; {widest}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
