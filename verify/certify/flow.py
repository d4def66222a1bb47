"""A validated integrator of gradient flow, and Theorem 1's integrated bound certified along it
(docs/theory.md, sections 5 and 10).

The flow d theta/dt = -grad L(theta), theta = (A, B), is integrated from an exact float64 start in
steps [t_n, t_n + h] by the interval Taylor method:

  1. a-priori enclosure (Picard-Lindelof): a box X with theta_n + [0, h] f(X) inside X, found by
     iteration with inflation; then every solution from the ball theta_n exists on [t_n, t_n + h]
     and stays in X;
  2. Taylor coefficients theta_[k], k < N, of the solution at the ball theta_n, by automatic
     Taylor recursion on the vector field (:func:`taylor_coefficients`: the column softmax by the
     exp and quotient recursions, W = B U^{-1} by the recursion W_k = (B_k - sum_{j>=1} W_{k-j} U_j)
     U_0^{-1} with one ball inverse, dL/dB and dL/dA likewise), and the N-th coefficient over X;
  3. theta(t_n + h) in sum_{k<N} theta_[k] h^k + theta_[N](X) h^N (Lagrange remainder, per component).

The sets are balls (direct interval method, no Lohner coordinates): their radii grow by the
wrapping effect of each step, which is what ends the integration (the run stops when the
relative width of the state or of E(t) exceeds ``max_rel_width``, reported with the time reached).

Certified along the enclosure, at every step end t_j (c = ``rate_factor``, 1 for the theorem):

    integrated bound   E(t_j) <= E(0) exp(-2 c kappa int_0^{t_j} lambda(A_t) dt)   for every point of
                       the enclosures; int lambda is enclosed by sum over sub-steps of
                       (length) x lambda(A(ball of the sub-step)) (:data:`QUADRATURE_PIECES` per step);
    gradient field     |dL/dt + ||d theta/dt||^2| <= 2^-40 ||d theta/dt||^2 at each step's start,
                       dL/dt from the Taylor series of L along the computed solution (not from the
                       gradient code): true for the gradient flow of L, false for a vector field
                       that is not grad L (e.g. gamma dropped in dL/dA).

``gamma_in_gradient=False`` integrates the WRONG field (dL/dA without its factor gamma): the
canary of the plan and the tests, which must not come back certified.
"""

from __future__ import annotations

import time

import numpy as np
from flint import arb, arb_mat, ctx

from .._validation import check_gamma
from .ball_model import rate_enclosure
from .balls import ball_identity, ball_matrix, frobenius_inner, frobenius_sq, lambda_min_enclosure
from .paths import ProblemBalls, hessian_of_loss, interval, softmax_of_balls
from .proof import (
    CERTIFIED,
    FAILED,
    NOT_CERTIFIED,
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
from .validation import check_instance, check_real, check_state

#: Taylor order, working precision and local error target (relative to the state's size)
ORDER, BITS, LOCAL_TOLERANCE = 20, 128, 2.0**-100
#: a step is accepted when its remainder term is at most this many times the local tolerance
REMAINDER_SLACK = 16.0
#: sub-steps per step in the enclosure of int lambda
QUADRATURE_PIECES = 4
#: the integration stops when a relative width (state or E(t)) exceeds this (wrapping)
MAX_REL_WIDTH = 1e-3
#: at most this many steps per certificate
MAX_STEPS = 20000
#: the field check's relative threshold
FIELD_CHECK = 2.0**-40


# ---- automatic Taylor recursion of the gradient field ------------------------------------------------
def taylor_coefficients(
    problem: ProblemBalls, A0: arb_mat, B0: arb_mat, order: int, *, gamma_in_gradient: bool = True
) -> tuple[list, list, arb]:
    """(A_[k], B_[k]) for k = 0..order, the Taylor coefficients at t = 0 of the solution of
    dA/dt = -dL/dA, dB/dt = -dL/dB from (A0, B0) (balls: the coefficients of every solution from a
    point of the balls), and L_[1] = dL/dt at t = 0 from the series of W (docs/theory.md, sections
    1 and 3; module docstring)."""
    m, m_y = A0.nrows(), B0.nrows()
    gamma = problem.gamma
    gamma_field = gamma if gamma_in_gradient else arb(1)
    shift = [arb(max(A0[i, j].mid() for i in range(m))) for j in range(m)]
    A, B = [A0], [B0]
    Ek = []  # Ek[k][i][j]
    sig = []  # sig[k][j]
    Sk = []  # Sk[k][i][j]
    Smat, W, D, Gam = [], [], [], []
    T = []  # T[k][j] = (s_j . Gamma_j)_[k]
    X0 = None
    for k in range(order):
        a = A[k]
        if k == 0:
            E = [[(a[i, j] - shift[j]).exp() for j in range(m)] for i in range(m)]
        else:
            E = [
                [ball_sum_terms(q * A[q][i, j] * Ek[k - q][i][j] for q in range(1, k + 1)) / k for j in range(m)]
                for i in range(m)
            ]
        Ek.append(E)
        sig.append([ball_sum_terms(E[i][j] for i in range(m)) for j in range(m)])
        S = [[None] * m for _ in range(m)]
        for j in range(m):
            for i in range(m):
                acc = E[i][j]
                for q in range(1, k + 1):
                    acc -= sig[q][j] * Sk[k - q][i][j]
                S[i][j] = acc / sig[0][j]
        Sk.append(S)
        Smat.append(arb_mat(S))
        Uk = -Smat[k] * gamma + (ball_identity(m) if k == 0 else arb_mat(m, m))
        if k == 0:
            U_series = [Uk]
            X0 = Uk.inv()
        else:
            U_series.append(Uk)
        acc = B[k]
        for q in range(1, k + 1):
            acc = acc - W[k - q] * U_series[q]
        W.append(acc * X0)
        G = W[k] * problem.P - (problem.YP if k == 0 else arb_mat(m_y, m))
        acc = G
        for q in range(1, k + 1):
            acc = acc - D[k - q] * U_series[q].transpose()
        D.append(acc * X0.transpose())
        acc = arb_mat(m, m)
        for q in range(k + 1):
            acc += W[q].transpose() * D[k - q]
        Gam.append((acc * gamma_field).entries())
        T.append(
            [
                ball_sum_terms(Sk[q][i][j] * Gam[k - q][i * m + j] for q in range(k + 1) for i in range(m))
                for j in range(m)
            ]
        )
        dA = arb_mat(m, m)
        for i in range(m):
            for j in range(m):
                dA[i, j] = ball_sum_terms(Sk[q][i][j] * (Gam[k - q][i * m + j] - T[k - q][j]) for q in range(k + 1))
        A.append(-dA / (k + 1))
        B.append(-D[k] / (k + 1))
    L1 = frobenius_inner(W[1], W[0] * problem.P - problem.YP) if order >= 2 else None
    return A, B, L1


def ball_sum_terms(terms) -> arb:
    total = arb(0)
    for t in terms:
        total += t
    return total


def horner(coeffs: list, tau: arb) -> arb_mat:
    """sum_k coeffs[k] tau^k for a ball tau."""
    acc = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        acc = acc * tau + c
    return acc


# ---- one validated step ------------------------------------------------------------------------------
def _field(problem, A, B, gamma_in_gradient):
    p = problem.at(A, B, gamma_in_gradient=gamma_in_gradient)
    return -p.dL_dA, -p.dL_dB


def _inflate(M: arb_mat, factor: float = 2.0, floor: float = 0.0) -> arb_mat:
    out = arb_mat(M.nrows(), M.ncols())
    for i in range(M.nrows()):
        for j in range(M.ncols()):
            x = M[i, j]
            out[i, j] = arb(x.mid(), x.rad() * factor + arb(floor))
    return out


def _inside(inner: arb_mat, outer: arb_mat) -> bool:
    return all(o.contains_interior(x) for x, o in zip(inner.entries(), outer.entries()))


def a_priori(problem, A, B, h: arb, gamma_in_gradient: bool, tries: int = 6):
    """A box (A_X, B_X) with (A, B) + [0, h] f(X) inside it, or None."""
    tau = interval(0, h)
    fA, fB = _field(problem, A, B, gamma_in_gradient)
    XA, XB = A + fA * tau, B + fB * tau
    scale = max(float(abs(x.mid())) for x in list(A.entries()) + list(B.entries())) or 1.0
    floor = scale * 2.0 ** (-ctx.prec + 8)
    XA, XB = _inflate(XA, 2.0, floor), _inflate(XB, 2.0, floor)
    for _ in range(tries):
        try:
            fA, fB = _field(problem, XA, XB, gamma_in_gradient)
        except ZeroDivisionError:
            return None
        YA, YB = A + fA * tau, B + fB * tau
        if _inside(YA, XA) and _inside(YB, XB):
            return YA, YB
        XA, XB = _inflate(YA, 2.0, floor), _inflate(YB, 2.0, floor)
    return None


def _max_abs(M: arb_mat) -> float:
    return max(float(abs(x.mid()) + x.rad()) for x in M.entries())


def proposed_step(A_co: list, B_co: list, scale: float, tolerance: float) -> float:
    """h with the last two coefficients times h^k near tolerance x scale (their geometric decay)."""
    hs = []
    for k in (len(A_co) - 2, len(A_co) - 1):
        size = max(_max_abs(A_co[k]), _max_abs(B_co[k]))
        if size > 0:
            hs.append((tolerance * scale / size) ** (1.0 / k))
    return 0.9 * min(hs) if hs else 1.0


def validated_step(problem, CA, CB, SA, SB, h_try: float, order: int, tolerance: float, gamma_in_gradient: bool):
    """One step: the Taylor coefficients at the exact centre (CA, CB) with the order-N coefficient
    replaced by its enclosure over the a-priori box X of the set (SA, SB) (so horner(coefficients, tau)
    encloses the centre's solution at t_n + tau, tau in [0, h]); returns (h, A coefficients,
    B coefficients, dL/dt at the centre from the series of L, X)."""
    A_co, B_co, L1 = taylor_coefficients(problem, CA, CB, order, gamma_in_gradient=gamma_in_gradient)
    scale = max(_max_abs(CA), _max_abs(CB), 1.0)
    h = min(h_try, proposed_step(A_co, B_co, scale, tolerance))
    for _ in range(30):
        hb = arb(h)
        box = a_priori(problem, SA, SB, hb, gamma_in_gradient)
        if box is not None:
            try:
                RA, RB, _ = taylor_coefficients(problem, box[0], box[1], order, gamma_in_gradient=gamma_in_gradient)
            except ZeroDivisionError:
                RA = None
            # the remainder over the box is overestimated (dependency): shrink h until it meets the target
            if (
                RA is not None
                and max(_max_abs(RA[order]), _max_abs(RB[order])) * h**order <= REMAINDER_SLACK * tolerance * scale
            ):
                return h, A_co[:order] + [RA[order]], B_co[:order] + [RB[order]], L1, box
            if RA is not None:
                h *= 0.7
                continue
        h /= 2
    raise Undecided("no a-priori enclosure with a small remainder found (30 reductions of the step)")


# ---- the integration and the certificate ---------------------------------------------------------------
def _rel_width(M: arb_mat) -> float:
    size = max(float(abs(x.mid())) for x in M.entries()) or 1.0
    return max(2 * float(x.rad()) for x in M.entries()) / size


def _state_rel_width(A: arb_mat, B: arb_mat) -> float:
    """The largest diameter of the state's balls relative to the state's largest entry."""
    entries = list(A.entries()) + list(B.entries())
    size = max(float(abs(x.mid())) for x in entries) or 1.0
    return max(2 * float(x.rad()) for x in entries) / size


def _ball_rel_width(x: arb) -> float:
    return float(2 * x.rad() / abs(x.mid())) if x.mid() != 0 else np.inf


def _spread(C: arb_mat, r: arb) -> arb_mat:
    """The balls C_ij +- r (C exact or a ball)."""
    out = arb_mat(C.nrows(), C.ncols())
    for i in range(C.nrows()):
        for j in range(C.ncols()):
            out[i, j] = C[i, j] + interval(-r, r)
    return out


def _centre(M: arb_mat) -> tuple[arb_mat, arb]:
    """(mid M, sum over entries of (rad + |mid - centre|)^2): the exact centre and the squared
    2-norm radius of the box M around it."""
    C = M.mid()
    total = arb(0)
    for x in M.entries():
        total += arb(x.rad()) ** 2
    return C, total


def log_norm_bound(problem: ProblemBalls, XA: arb_mat, XB: arb_mat) -> arb:
    """mu >= sup over the box X of mu_2(Df) = -lambda_min(grad^2 L): the logarithmic norm of the
    gradient field's Jacobian (docs/theory.md, section 10), from a ball Hessian over X."""
    H = hessian_of_loss(problem.at(XA, XB, gradient=False))
    # Weyl: every matrix of the ball is mid H + Delta with ||Delta||_2 <= ||rad H||_F, and the exact
    # midpoint matrix's lambda_min is enclosed tightly (the ball's own enclosure is loose when wide)
    spread = arb(0)
    for x in H.entries():
        spread += arb(x.rad()) ** 2
    return -arb((lambda_min_enclosure(H.mid()) - spread.sqrt()).lower())


def integrate(
    problem: ProblemBalls,
    A0: np.ndarray,
    B0: np.ndarray,
    T: float,
    *,
    order: int = ORDER,
    tolerance: float = LOCAL_TOLERANCE,
    gamma_in_gradient: bool = True,
    max_rel_width: float = MAX_REL_WIDTH,
    pieces: int = QUADRATURE_PIECES,
    max_steps: int = MAX_STEPS,
    stop=None,
):
    """Enclosures of the gradient flow on [0, T] at the working precision. The set at t_n is
    {theta : ||theta - c_n||_2 <= r_n} with an exact centre c_n: the centre's solution is enclosed by
    the Taylor method from an exact point (no wrapping), and two solutions in the step's a-priori
    box X separate at most like exp(mu h), mu >= sup_X -lambda_min(grad^2 L) (the logarithmic norm of
    the gradient field's Jacobian), so r_{n+1} = exp(mu h) r_n + (the centre enclosure's radius).
    Returns the records {t, A, B (component balls of the set), E, R (int lambda), h, mu,
    field_residual, field_size} at each step end (t = 0 first), and the stop reason ("" at T)."""
    CA, CB = ball_matrix(A0), ball_matrix(B0)
    r = arb(0)
    t = arb(0)
    R = arb(0)
    start = problem.at(CA, CB, gradient=False)
    records = [{"t": t, "A": CA, "B": CB, "E": start.excess(), "R": R, "h": 0.0, "r": 0.0}]
    h_next, reason = float(T), ""
    m = CA.nrows()
    while t < T:
        if len(records) > max_steps:
            reason = f"stopped after MAX_STEPS = {max_steps} steps"
            break
        remaining = float((arb(T) - t).upper())
        SA, SB = _spread(CA, r), _spread(CB, r)
        try:
            h, A_co, B_co, L1, box = validated_step(
                problem, CA, CB, SA, SB, min(h_next * 2, remaining), order, tolerance, gamma_in_gradient
            )
            mu = log_norm_bound(problem, *box)
        except (Undecided, ZeroDivisionError) as err:
            reason = f"step failed at t = {float(t.mid()):.6g}: {err}"
            break
        hb = arb(h)
        growth = (mu * hb).exp()
        spread_step = (mu.max(arb(0)) * hb).exp() * r  # the largest separation within the step
        A_end, B_end = horner(A_co, hb), horner(B_co, hb)
        lam_step, integral = None, arb(0)
        for j in range(pieces):
            tau = interval(hb * j / pieces, hb * (j + 1) / pieces)
            A_piece = _spread(horner(A_co, tau), spread_step)
            A_piece = arb_mat(
                [
                    [x.intersection(y) for x, y in zip(row_a, row_b)]
                    for row_a, row_b in zip(A_piece.tolist(), box[0].tolist())
                ]
            )
            lam = rate_enclosure(ball_identity(m) - softmax_of_balls(A_piece) * problem.gamma)[0]
            lam_step = lam if lam_step is None else lam_step.union(lam)
            integral += lam * hb / pieces
        field_size = frobenius_sq(A_co[1]) + frobenius_sq(B_co[1])
        CA, ra = _centre(A_end)
        CB, rb = _centre(B_end)
        r = arb((growth * r + (ra + rb).sqrt()).upper())
        t, R = t + hb, R + integral
        SA, SB = _spread(CA, r), _spread(CB, r)
        E = problem.at(SA, SB, gradient=False).excess()
        records.append(
            {
                "t": t,
                "A": SA,
                "B": SB,
                "E": E,
                "R": R,
                "lambda_step": lam_step,
                "h": h,
                "mu": float(mu.upper()),
                "r": float(r.upper()),
                "field_residual": L1 + field_size,
                "field_size": field_size,
            }
        )
        h_next = h
        if stop is not None and stop(records[0], records[-1]):
            reason = f"stopped at t = {float(t.mid()):.6g}: a certified violation"
            break
        width = max(_state_rel_width(SA, SB), _ball_rel_width(E))
        if width > max_rel_width:
            reason = (
                f"enclosure width: relative width {width:.2e} > {max_rel_width:g} at t = {float(t.mid()):.6g} "
                f"after {len(records) - 1} steps"
            )
            break
    return records, reason


def certify_integrated(
    A0,
    B0,
    Phi,
    Y,
    gamma: float,
    T: float,
    *,
    rate_factor: float = 1.0,
    gamma_in_gradient: bool = True,
    order: int = ORDER,
    bits: int = BITS,
    tolerance: float = LOCAL_TOLERANCE,
    max_rel_width: float = MAX_REL_WIDTH,
    instance: dict | None = None,
) -> Certificate:
    """Theorem 1's integrated bound along a validated enclosure of the gradient flow on [0, T]
    (module docstring), at ``bits`` of working precision."""
    A0, B0, Phi, Y, gamma = check_state(A0, B0, Phi, Y, gamma)
    gamma = check_gamma(gamma)
    T = check_real("T", T)
    rate_factor = check_real("rate_factor", rate_factor)
    for name, value, low in (("order", order, 2), ("bits", bits, 53)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    if A0.shape[0] * (A0.shape[0] + B0.shape[0]) > 64:
        raise ValueError(
            f"m (m + m_y) = {A0.shape[0] * (A0.shape[0] + B0.shape[0])} exceeds 64 "
            "(the validated flow is for small sizes)"
        )
    inst = dict(check_instance(instance) or {"m": A0.shape[0], "m_y": B0.shape[0], "n": Phi.shape[1], "gamma": gamma})
    inst["T"] = T
    for name, value, default in (("rate_factor", rate_factor, 1.0), ("gamma_in_gradient", gamma_in_gradient, True)):
        if value != default:
            inst[name] = value
    t0 = time.perf_counter()
    cert = Certificate("INTEGRATED", inst, bits=bits)
    with ctx.workprec(bits):
        try:
            problem = ProblemBalls(Phi, Y, gamma)

            def violated(first, record):  # a certified violation decides the verdict: no need to go on
                return any(it.status == FAILED for it in _record_items(first, record, problem.kappa, rate_factor))

            records, reason = integrate(
                problem,
                A0,
                B0,
                T,
                order=order,
                tolerance=tolerance,
                gamma_in_gradient=gamma_in_gradient,
                max_rel_width=max_rel_width,
                stop=violated,
            )
        except (Undecided, ZeroDivisionError) as err:
            cert.items.append(Item("computation", "step", UNDECIDED, None, str(err)))
            cert.status = NOT_CERTIFIED
            cert.reason = f"not certified: {err}"
            cert.seconds = time.perf_counter() - t0
            return cert
        kappa = problem.kappa
        cert.balls.update(records=records, kappa=kappa)
        cert.items.append(positive_definite(f"kappa > 0, kappa = {problem.kappa_route}", kappa))
        _judge(cert, records, kappa, rate_factor, T, reason)
    cert.history = [(bits, cert.status, None)]
    cert.seconds = time.perf_counter() - t0
    return cert


def _record_items(first: dict, r: dict, kappa: arb, rate_factor: float) -> tuple[Item, Item]:
    """The integrated bound and the gradient-field check at one record."""
    bound = first["E"] * (-2 * arb(rate_factor) * kappa * r["R"]).exp()
    bound_item = inequality("E(t) <= E(0) exp(-2 kappa int lambda)", bound - r["E"])
    field_item = inequality(
        "|dL/dt + ||dtheta/dt||^2| <= 2^-40 ||dtheta/dt||^2",
        r["field_size"] * arb(FIELD_CHECK) - abs(r["field_residual"]),
    )
    return bound_item, field_item


def _judge(cert: Certificate, records: list, kappa: arb, rate_factor: float, T: float, reason: str) -> None:
    E0 = records[0]["E"]
    c = arb(rate_factor)
    bound_items, field_items, worst = [], [], None
    for j, r in enumerate(records[1:], 1):
        bound_item, field_item = _record_items(records[0], r, kappa, rate_factor)
        bound_items.append((j, bound_item))
        field_items.append((j, field_item))
        ratio = r["E"] / (E0 * (-2 * c * kappa * r["R"]).exp())
        if worst is None or ratio.mid() > worst[1].mid():
            worst = (j, ratio)
    label = "E(t) <= E(0) exp(-2 kappa int_0^t lambda(A_s) ds) at every step end" + (
        "" if rate_factor == 1 else f" x rate_factor {rate_factor!r}"
    )
    cert.items.append(_collect(label, bound_items))
    cert.items.append(
        _collect(
            "the enclosure follows a gradient field of L: |dL/dt + ||dtheta/dt||^2| <= "
            "2^-40 ||dtheta/dt||^2 at every step",
            field_items,
        )
    )
    reached = records[-1]["t"] >= T
    cert.items.append(
        Item(
            f"the enclosure reaches T = {T:g}",
            "horizon",
            PROVED if reached else UNDECIDED,
            Enclosure.of(records[-1]["t"]),
            reason or "reached",
        )
    )
    cert.status = verdict_of(cert.items)
    last = records[-1]
    steps = len(records) - 1
    widths = [_state_rel_width(r["A"], r["B"]) for r in records]
    cert.enclosures.update(
        {
            "kappa": Enclosure.of(kappa),
            "E(0)": Enclosure.of(E0),
            "E(t_end)": Enclosure.of(last["E"]),
            "int_0^t_end lambda": Enclosure.of(last["R"]),
            "E(0) exp(-2 kappa int lambda) at t_end": Enclosure.of(E0 * (-2 * c * kappa * last["R"]).exp()),
            "t_end": Enclosure.of(last["t"]),
        }
    )
    if worst is not None:
        cert.enclosures["worst E(t) / bound(t)"] = Enclosure.of(worst[1])
        cert.instance["worst_step"] = worst[0]
    if steps and last["E"] > 0 and E0 > 0:
        cert.enclosures["decades of decay at t_end"] = Enclosure.of((E0 / last["E"]).log() / arb(10).log())
    cert.instance.update(
        steps=steps,
        t_end=float(last["t"].mid()),
        max_state_rel_width=float(max(widths)),
        r_end=last["r"],
        mu_max=max((r.get("mu", 0.0) for r in records[1:]), default=0.0),
        E_rel_width_end=_ball_rel_width(last["E"]),
        h_min=min((r["h"] for r in records[1:]), default=0.0),
        h_max=max((r["h"] for r in records[1:]), default=0.0),
        stop=reason,
    )
    if cert.status == VIOLATED:
        cert.reason = "certified violation: " + "; ".join(
            f"{it.statement} ({it.detail})" for it in cert.items if it.status == FAILED
        )
    elif cert.status == NOT_CERTIFIED:
        cert.reason = f"undecided at {cert.bits} bits: " + "; ".join(
            f"{it.statement}: {it.detail}" for it in cert.items if it.status != PROVED
        )
    elif cert.status == CERTIFIED:
        cert.reason = ""


def _collect(statement: str, items: list) -> Item:
    if not items:
        return Item(statement, "inequality", UNDECIDED, None, "no step")
    failed = [(j, it) for j, it in items if it.status == FAILED]
    if failed:
        j, it = failed[0]
        return Item(statement, "inequality", FAILED, it.margin, f"violated at step {j} of {len(items)}")
    undecided = [(j, it) for j, it in items if it.status == UNDECIDED]
    if undecided:
        j, it = undecided[0]
        return Item(
            statement,
            "inequality",
            UNDECIDED,
            it.margin,
            f"undecided at {len(undecided)} of {len(items)} steps, first {j}: {it.detail or 'straddles'}",
        )
    return Item(statement, "inequality", PROVED, items[-1][1].margin, f"proved at all {len(items)} steps")
