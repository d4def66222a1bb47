"""The instances `python -m verify --certify` certifies."""

from __future__ import annotations

from typing import Callable

from .proof import Certificate
from .statements import (
    certify_energy,
    certify_naive_bound_false,
    certify_state_wise,
    certify_trust_region,
    certify_uniform_rate,
    concentrated_instance,
)

# ---- the default plan and the command line (`python -m verify --certify`) -----------------------
#: the enclosure shown in the table for each claim
HEADLINE = {"NAIVE-BOUND-FALSE": "lambda(A)", "UNIFORM-RATE": "lambda(A)", "STATE-WISE": "ratio",
            "ENERGY": "lambda_min(K)", "TRUST-REGION": "lambda_min(G)"}

#: (m, m_y, n) per claim in the default plan; the first of each is the headline size (m = 32, m_y = 10, n = 200).
#: ENERGY leaves out m < m_y, where K >= lambda(A) I is attained (tight) and balls cannot prove
#: it; m = 1 is left out everywhere it makes the claim an equality (STATE-WISE, ENERGY).
PLAN_SHAPES = {"STATE-WISE": [(32, 10, 200), (3, 6, 10), (40, 5, 20), (5, 3, 8)],
               "ENERGY": [(32, 10, 200), (40, 5, 20), (8, 2, 4)],
               "TRUST-REGION": [(32, 10, 200), (3, 6, 10), (40, 5, 20)]}
#: (m, gamma, a_scale) for UNIFORM-RATE at sampled A (a_scale = None: the concentrated A)
PLAN_RATE = [(32, 0.9, 1.0), (32, 0.99, 3.0), (200, 0.5, 1.0), (32, 0.9, None)]
PLAN_GAMMA = 0.9


def default_plan(seed: int = 0) -> list[tuple[str, Callable[[], Certificate]]]:
    """The instances `python -m verify --certify --seed S` certifies: float64 draws from
    verify.sampling.make_case(seed, ...) (seeded numpy Generators), exact as balls."""
    from ..sampling import make_case  # the instance generator only; no formula of the core

    plan: list[tuple[str, Callable[[], Certificate]]] = [
        ("NAIVE-BOUND-FALSE", lambda: certify_naive_bound_false(30, 0.9))]
    for m, gamma, a_scale in PLAN_RATE:
        if a_scale is None:
            inst = {"m": m, "gamma": gamma, "A": "concentrated (A[0,:] = 50)"}
            plan.append(("UNIFORM-RATE", lambda m=m, gamma=gamma, inst=inst:
                         certify_uniform_rate(concentrated_instance(m), gamma, instance=inst)))
        else:
            inst = {"seed": seed, "m": m, "gamma": gamma, "a_scale": a_scale}
            plan.append(("UNIFORM-RATE", lambda m=m, gamma=gamma, a_scale=a_scale, inst=inst:
                         certify_uniform_rate(make_case(seed, m, 1, 1, gamma, a_scale=a_scale).A, gamma,
                                              instance=inst)))
    functions = {"STATE-WISE": certify_state_wise, "ENERGY": certify_energy, "TRUST-REGION": certify_trust_region}
    for claim, shapes in PLAN_SHAPES.items():
        for m, m_y, n in shapes:
            inst = {"seed": seed, "m": m, "m_y": m_y, "n": n, "gamma": PLAN_GAMMA}

            def run(claim=claim, m=m, m_y=m_y, n=n, inst=inst):
                case = make_case(seed, m, m_y, n, PLAN_GAMMA)
                return functions[claim](case.A, case.B, case.Phi, case.Y, PLAN_GAMMA, instance=inst)

            plan.append((claim, run))
    return plan

