"""The discrete Theorem 1 (docs/theory.md, section 9), certified step by step along a descent run.

A run is a list of float64 iterates theta_k = (A_k, B_k), k = 0..K, exact dyadic rationals. With
g_k = grad L(theta_k) (the exact gradient, enclosed), lr the step, E = L - L*, kappa and
lambda(A) as in docs/theory.md, section 5, and M_k >= sup_{s in [0, lr]} phi_k''(s) / ||g_k||^2 the
curvature of phi_k(s) = L(theta_k - s g_k) along the step, each step k is decided by these items:

    step-size condition   lr M_k <= 1    (proved from an upper bound on the sup over [0, lr] in
                          SUBDIVISIONS sub-segments; refuted when lr phi_k''(0)/||g_k||^2 > 1)
    discrete Theorem 1    E(theta_k - lr g_k) <= (1 - c lr kappa lambda(A_k)) E(theta_k)
    refined form          E(theta_k - lr g_k) <= (1 - 2 c lr kappa lambda(A_k) (1 - lr M_k / 2)) E(theta_k)
                          with M_k the proved upper bound (the statement holds for every M >= the sup)
    the run               E(theta_{k+1}) <= (1 - c lr kappa lambda(A_k)) E(theta_k) for the recorded iterate
    the run is descent    ||theta_{k+1} - (theta_k - lr g_k)|| <= 2^-40 ||theta_{k+1}|| + 2^-30 lr ||g_k||

(c = ``rate_factor``, 1 for the theorem; c > 1 is a wrong rate constant). The exact step
theta_k - lr g_k is enclosed in balls (theta_k exact, g_k a ball), so the second and third items
are the theorem at the state theta_k; the fourth is the same bound for the float64 run, whose
product over k gives E_K <= E_0 prod_k (1 - lr kappa lambda(A_k)) <= E_0 exp(-lr kappa sum lambda).

Each step is decided at the lowest precision of ``precisions`` that decides all its items, so the
report gives the precision per step; the run stops at the first step with a violated item (a
certified counterexample: the verdict is "violated"). Steps whose items stay undecided at every
precision make the run "not certified", with the steps named.
"""

from __future__ import annotations

import time

import numpy as np
from flint import arb, ctx

from .._validation import check_gamma
from .ball_model import rate_enclosure
from .balls import frobenius_sq
from .paths import ProblemBalls, interval, segment
from .proof import (
    CERTIFIED,
    FAILED,
    NOT_CERTIFIED,
    PRECISIONS,
    PROVED,
    UNDECIDED,
    VIOLATED,
    Certificate,
    Enclosure,
    Item,
    Undecided,
    inequality,
    positive_definite,
    verdict_of,
)
from .validation import check_instance, check_precisions, check_real, check_state

#: sub-segments of [0, lr] over which the curvature's sup is bounded
SUBDIVISIONS = 4
#: most sub-segments used to bound the curvature's sup (:func:`curvature_bounds`)
MAX_PIECES = 256
#: the run is a descent run: its iterates are the exact steps up to float64 rounding, which is
#: eps ||theta_{k+1}|| for the subtraction plus (cond + 1) eps lr ||g|| for the float gradient
RUN_ROUNDING = (2.0**-40, 2.0**-30)
#: largest run the certificate accepts (steps) and width (m)
MAX_STEPS, MAX_WIDTH = 2000, 32

STATEMENTS = {
    "condition": "lr M_k <= 1 at every step (step-size condition; M_k = sup curvature along the step)",
    "theorem": "E(theta_k - lr g_k) <= (1 - lr kappa lambda(A_k)) E(theta_k) at every step (discrete Theorem 1)",
    "refined": "E(theta_k - lr g_k) <= (1 - 2 lr kappa lambda(A_k) (1 - lr M_k/2)) E(theta_k) at every step",
    "run": "run: E(theta_{k+1}) <= (1 - lr kappa lambda(A_k)) E(theta_k) at every step (float64 iterates)",
    "descent": "the iterates are descent steps: ||theta_{k+1} - (theta_k - lr g_k)|| <= 2^-40 ||theta_{k+1}|| "
    "+ 2^-30 lr ||g_k||",
}


# ---- a float64 descent run from the definitions (the certificate treats its iterates as given) --------
def float_gradient(A, B, P, YP, gamma: float):
    """(dL/dA, dL/dB) in float64 from docs/theory.md, section 3 (stable softmax, LU solves)."""
    E = np.exp(A - A.max(axis=0, keepdims=True))
    S = E / E.sum(axis=0, keepdims=True)
    U = np.eye(A.shape[0]) - gamma * S
    W = np.linalg.solve(U.T, B.T).T
    dB = np.linalg.solve(U, (W @ P - YP).T).T
    Gamma = gamma * W.T @ dB
    dA = S * (Gamma - np.sum(S * Gamma, axis=0, keepdims=True))
    return dA, dB


def descent_run(A0, B0, Phi, Y, gamma: float, lr: float, steps: int) -> tuple[list, list]:
    """Iterates theta_{k+1} = theta_k - lr grad L(theta_k), k < steps, in float64 (lists of arrays)."""
    P, YP = Phi @ Phi.T, Y @ Phi.T
    As, Bs = [np.array(A0, dtype=float)], [np.array(B0, dtype=float)]
    for _ in range(steps):
        dA, dB = float_gradient(As[-1], Bs[-1], P, YP, gamma)
        As.append(As[-1] - lr * dA)
        Bs.append(Bs[-1] - lr * dB)
    return As, Bs


# ---- one step in balls ------------------------------------------------------------------------------
def _step_balls(problem: ProblemBalls, cache: dict, k: int, A, B, lr: float, subdivisions: int) -> dict:
    """The balls of step k at the working precision: E_k, lambda(A_k), ||g_k||^2, E at the exact step,
    the curvature bounds and the run's next state (from ``cache``: point states by index)."""
    here = cache.get(k) or problem.at_floats(A[k], B[k])
    cache[k] = here
    nxt = cache.get(k + 1) or problem.at_floats(A[k + 1], B[k + 1], gradient=k + 1 < len(A) - 1)
    cache[k + 1] = nxt
    eta = arb(lr)
    VA, VB = -here.dL_dA, -here.dL_dB
    exact = problem.at(segment(here.A, VA, eta), segment(here.B, VB, eta), gradient=False)
    lam = rate_enclosure(here.U)[0]
    g_sq = here.grad_norm_sq
    if not g_sq > 0:
        raise Undecided(f"step {k}: ||g_k||^2 is not bounded away from 0 (a stationary point?)")
    curvature, pieces = curvature_bounds(problem, here, VA, VB, g_sq, lr, subdivisions)
    deviation = frobenius_sq(nxt.A - exact.A) + frobenius_sq(nxt.B - exact.B)
    theta_next = frobenius_sq(nxt.A) + frobenius_sq(nxt.B)
    return {
        "E": here.excess(),
        "E_step": exact.excess(),
        "E_next": nxt.excess(),
        "lambda": lam,
        "g_sq": g_sq,
        "M": curvature,
        "M_hat": arb(curvature.upper()),
        "pieces": pieces,
        "deviation_sq": deviation,
        "theta_next_sq": theta_next,
    }


def curvature_bounds(
    problem: ProblemBalls, here, VA, VB, g_sq: arb, lr: float, subdivisions: int, max_pieces: int = MAX_PIECES
) -> tuple[arb, int]:
    """A ball [lo, hi] containing M = sup_{s in [0, lr]} phi''(s) / ||g||^2 (phi(s) = L(theta + s V)):
    hi from ball evaluations on sub-segments of [0, lr], bisecting the piece with the largest upper end
    while it exceeds ||g||^2 / lr (the step-size condition) and fewer than ``max_pieces`` are used
    (best-first branch and bound: only the sup matters, so the budget goes where the sup may be); lo
    from exact points (s = 0 and the worst piece's centre)."""
    threshold = g_sq / arb(lr)

    def evaluate(lo, hi):
        piece = problem.at(segment(here.A, VA, interval(lo, hi)), segment(here.B, VB, interval(lo, hi)), gradient=False)
        return piece.second_derivative(VA, VB), lo, hi

    def upper_end(piece) -> float:
        return float(piece[0].upper().mid()) if piece[0].is_finite() else np.inf

    pieces = [evaluate(arb(lr) * i / subdivisions, arb(lr) * (i + 1) / subdivisions) for i in range(subdivisions)]
    count = subdivisions
    while count < max_pieces:
        worst = max(pieces, key=upper_end)
        if worst[0] < threshold:
            break
        _, lo, hi = worst
        middle = arb(((lo + hi) / 2).mid())
        pieces.remove(worst)
        pieces += [evaluate(lo, middle), evaluate(middle, hi)]
        count += 1
    top = max((v.upper() for v, _, _ in pieces), key=lambda x: x.mid() if x.is_finite() else np.inf)
    worst = max(pieces, key=lambda x: x[0].mid() if x[0].is_finite() else np.inf)
    centre = arb(((worst[1] + worst[2]) / 2).mid())
    points = [
        here.second_derivative(VA, VB),
        problem.at(segment(here.A, VA, centre), segment(here.B, VB, centre), gradient=False).second_derivative(VA, VB),
    ]
    bottom = max((p.lower() for p in points), key=lambda x: x.mid())
    return interval(bottom, top) / g_sq, count


def _step_items(b: dict, kappa: arb, lr: float, rate_factor: float) -> dict:
    eta, c = arb(lr), arb(rate_factor)
    E, lam = b["E"], b["lambda"]
    rho = 1 - c * eta * kappa * lam
    rho_refined = 1 - 2 * c * eta * kappa * lam * (1 - eta * b["M_hat"] / 2)
    rounding = arb(RUN_ROUNDING[0]) * b["theta_next_sq"].sqrt() + arb(RUN_ROUNDING[1]) * eta * b["g_sq"].sqrt()
    return {
        "condition": inequality(STATEMENTS["condition"], 1 - eta * b["M"]),
        "theorem": inequality(STATEMENTS["theorem"], rho * E - b["E_step"]),
        "refined": inequality(STATEMENTS["refined"], rho_refined * E - b["E_step"]),
        "run": inequality(STATEMENTS["run"], rho * E - b["E_next"]),
        "descent": inequality(STATEMENTS["descent"], rounding * rounding - b["deviation_sq"]),
        "rho": rho,
        "rho_refined": rho_refined,
    }


def _relative(item: Item, E: arb) -> float:
    """The item's margin relative to E_k (for choosing the worst step; a display choice)."""
    if item.margin is None or not np.isfinite(item.margin.mid):
        return -np.inf
    return item.margin.mid / max(float(E.mid()), 1e-300)


def certify_descent(
    A_steps,
    B_steps,
    Phi,
    Y,
    gamma: float,
    lr: float,
    *,
    rate_factor: float = 1.0,
    subdivisions: int = SUBDIVISIONS,
    instance: dict | None = None,
    precisions: tuple[int, ...] = PRECISIONS,
    stop_at_violation: bool = True,
) -> Certificate:
    """The discrete Theorem 1 along the run (A_k, B_k), k = 0..K (module docstring)."""
    if (
        not isinstance(A_steps, (list, tuple))
        or not isinstance(B_steps, (list, tuple))
        or len(A_steps) < 2
        or len(A_steps) != len(B_steps)
    ):
        raise ValueError("A_steps and B_steps must be lists of the same length >= 2 (the iterates theta_0..theta_K)")
    if len(A_steps) - 1 > MAX_STEPS:
        raise ValueError(f"a run of {len(A_steps) - 1} steps exceeds MAX_STEPS = {MAX_STEPS}")
    states = [check_state(A, B, Phi, Y, gamma) for A, B in zip(A_steps, B_steps)]
    A = [s[0] for s in states]
    B = [s[1] for s in states]
    Phi, Y, gamma = states[0][2], states[0][3], check_gamma(gamma)
    if A[0].shape[0] > MAX_WIDTH:
        raise ValueError(f"m = {A[0].shape[0]} exceeds MAX_WIDTH = {MAX_WIDTH} for a descent certificate")
    lr = check_real("lr", lr)
    rate_factor = check_real("rate_factor", rate_factor)
    if isinstance(subdivisions, bool) or not isinstance(subdivisions, int) or subdivisions < 1:
        raise ValueError(f"subdivisions must be an integer >= 1; got {subdivisions!r}")
    precisions = check_precisions(precisions)
    inst = dict(
        check_instance(instance) or {"m": A[0].shape[0], "m_y": B[0].shape[0], "n": Phi.shape[1], "gamma": gamma}
    )
    inst.update(lr=lr, steps=len(A) - 1)
    if rate_factor != 1:
        inst["rate_factor"] = rate_factor
    t0 = time.perf_counter()
    cert = Certificate("GD-RATE", inst)
    problems, caches = {}, {bits: {} for bits in precisions}
    steps, bits_used, first_violation = [], {}, None
    for k in range(len(A) - 1):
        for bits in precisions:
            with ctx.workprec(bits):
                try:
                    problem = problems.get(bits) or ProblemBalls(Phi, Y, gamma)
                    problems[bits] = problem
                    balls = _step_balls(problem, caches[bits], k, A, B, lr, subdivisions)
                    items = _step_items(balls, problem.kappa, lr, rate_factor)
                    items["kappa"] = positive_definite(f"kappa > 0, kappa = {problem.kappa_route}", problem.kappa)
                except (Undecided, ZeroDivisionError) as err:
                    balls, items = (
                        None,
                        {"computation": Item("computation", "step", UNDECIDED, None, f"step {k}: {err}")},
                    )
            decided = all(it.status in (PROVED, FAILED) for it in items.values() if isinstance(it, Item))
            if decided or any(it.status == FAILED for it in items.values() if isinstance(it, Item)):
                break
        for cache in caches.values():  # states before k are not needed again
            cache.pop(k, None)
        bits_used[k] = bits
        steps.append((k, bits, balls, items))
        if any(it.status == FAILED for it in items.values() if isinstance(it, Item)) and first_violation is None:
            first_violation = k
            if stop_at_violation:
                break
    _summarise(cert, steps, lr, first_violation)
    cert.balls["steps"] = steps
    cert.seconds = time.perf_counter() - t0
    return cert


def _aggregate(name: str, steps) -> Item:
    """One item for the statement ``name`` over every step: violated if some step is, proved if every
    step is, otherwise undecided; the margin and detail are the worst step's."""
    per_step = [(k, items[name], balls) for k, _, balls, items in steps if name in items]
    if not per_step:
        return Item(STATEMENTS.get(name, name), "inequality", UNDECIDED, None, "no step computed")
    failed = [(k, it) for k, it, _ in per_step if it.status == FAILED]
    undecided = [(k, it) for k, it, _ in per_step if it.status == UNDECIDED]
    if failed:
        k, it = failed[0]
        return Item(it.statement, it.kind, FAILED, it.margin, f"violated at step {k}")
    if undecided:
        k, it = undecided[0]
        ks = [j for j, _ in undecided]
        return Item(
            it.statement,
            it.kind,
            UNDECIDED,
            it.margin,
            f"undecided at {len(ks)} step(s), first {ks[0]}: {it.detail or 'the ball straddles the bound'}",
        )
    scale = {k: balls["E"] if balls is not None and name != "condition" else arb(1) for k, _, balls in per_step}
    k, it, _ = min(per_step, key=lambda x: _relative(x[1], scale[x[0]]))
    return Item(
        it.statement, it.kind, PROVED, it.margin, f"proved at all {len(per_step)} steps; least margin at step {k}"
    )


def _summarise(cert: Certificate, steps, lr: float, first_violation) -> None:
    computed = [s for s in steps if s[2] is not None]
    kappa_items = [items["kappa"] for _, _, _, items in computed]
    if kappa_items:
        cert.items.append(kappa_items[-1])
    for _, _, balls, items in steps:
        if "computation" in items:
            cert.items.append(items["computation"])
    for name in ("condition", "theorem", "refined", "run", "descent"):
        cert.items.append(_aggregate(name, steps))
    cert.status = verdict_of(cert.items)
    cert.bits = max(bits for _, bits, _, _ in steps)
    histogram = {}
    for _, bits, _, _ in steps:
        histogram[bits] = histogram.get(bits, 0) + 1
    cert.history = [(bits, f"{count} step(s) decided here", None) for bits, count in sorted(histogram.items())]
    if computed:
        eta = arb(lr)
        ratio_worst, bound_worst, k_worst = None, None, None
        product_run, product_bound, lam_sum = arb(1), arb(1), arb(0)
        for k, _, balls, items in computed:
            ratio = balls["E_step"] / balls["E"]
            over = ratio / items["rho"]
            if bound_worst is None or over.mid() > bound_worst.mid():
                bound_worst, k_worst = over, k
            ratio_worst = ratio if ratio_worst is None else ratio_worst.max(ratio)
            product_run *= balls["E_next"] / balls["E"]
            product_bound *= items["rho"]
            lam_sum += balls["lambda"]
        kappa = computed[-1][3]["kappa"].margin
        cert.enclosures.update(
            {
                "worst ratio / bound": Enclosure.of(bound_worst),
                "max_k E(theta_k - lr g_k) / E(theta_k)": Enclosure.of(ratio_worst),
                "E_K / E_0 (run)": Enclosure.of(product_run),
                "prod_k (1 - lr kappa lambda(A_k))": Enclosure.of(product_bound),
                "lr max_k M_k": Enclosure.of(max((b["M_hat"] for _, _, b, _ in computed), key=lambda x: x.mid()) * eta),
                "min_k lambda(A_k)": Enclosure.of(min((b["lambda"] for _, _, b, _ in computed), key=lambda x: x.mid())),
            }
        )
        if kappa is not None:
            cert.enclosures["kappa"] = kappa
        cert.instance["worst_step"] = k_worst
        cert.instance["steps_checked"] = len(computed)
    if cert.status == VIOLATED:
        cert.reason = f"certified violation at step {first_violation}: " + "; ".join(
            f"{it.statement} (margin {it.margin.text if it.margin else '?'})"
            for it in cert.items
            if it.status == FAILED
        )
    elif cert.status == NOT_CERTIFIED:
        cert.reason = f"undecided at every precision up to {cert.bits} bits: " + "; ".join(
            f"{it.statement}: {it.detail}" for it in cert.items if it.status != PROVED
        )
    elif cert.status == CERTIFIED:
        cert.reason = ""
