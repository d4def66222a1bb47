"""The certificates: one function per claim, each deciding the claim's finite statement at one
instance in ball arithmetic (docs/theory.md, sections 4-6).

The keyword factors (``bound_factor``, ``rate_factor``, ``energy_factor``, ``dt_factor``) move
a bound: the statement with the factor is true or false depending on the factor, which is how
the plan (:mod:`verify.certify.plan`) builds near-tight instances and false canaries from an
independent float64 reference. ``second_term_scale`` and ``multiplier`` != 1 make an equation
false (a wrong K, a wrong Lagrange multiplier).
"""

from __future__ import annotations

from functools import reduce

import numpy as np
from flint import arb, arb_mat

from .._validation import check_gamma
from .ball_model import BallState, apply_jacobians, implicit_matrix_ball, rate_enclosure
from .balls import ball_sum, ball_vec, frobenius_inner, frobenius_sq, lambda_max_enclosure
from .metric import StructuredMetric
from .proof import (
    PRECISIONS,
    Certificate,
    Enclosure,
    Undecided,
    equation,
    inequality,
    positive_definite,
    run_certificate,
)
from .validation import (
    check_budget,
    check_fraction,
    check_instance,
    check_precisions,
    check_real,
    check_state,
    check_weight,
    check_width,
)


def concentrated_instance(m: int, logit_gap: float = 50.0) -> np.ndarray:
    """A[0, :] = logit_gap, the rest 0: every softmax column sits near e_1 (docs/theory.md, section 4)."""
    A = np.zeros((m, m))
    A[0, :] = logit_gap
    return A


def _factor_label(name: str, value: float) -> str:
    return "" if value == 1 else f" x {name} {value!r}"


def rate_enclosures(cert: Certificate, A: np.ndarray, gamma: float) -> tuple[arb, arb]:
    S, U = implicit_matrix_ball(A, gamma)
    lam, norm_sq = rate_enclosure(U)
    m = A.shape[0]
    # the cheap bound ||U||_2 <= sqrt(||U||_1 ||U||_inf), for comparison
    absU = [[abs(U[i, j]) for j in range(m)] for i in range(m)]
    norm1 = reduce(arb.max, (ball_sum(absU[i][j] for i in range(m)) for j in range(m)))
    norm_inf = reduce(arb.max, (ball_sum(row) for row in absU))
    cert.enclosures["lambda(A)"] = Enclosure.of(lam)
    cert.enclosures["||U||_2"] = Enclosure.of(norm_sq.sqrt())
    cert.enclosures["sqrt(||U||_1 ||U||_inf)"] = Enclosure.of((norm1 * norm_inf).sqrt())
    cert.balls.update(S=S, U=U, lam=lam, norm_sq=norm_sq)
    return lam, norm_sq


def certify_naive_bound_false(
    m: int = 30,
    gamma: float = 0.9,
    *,
    logit_gap: float = 50.0,
    bound_factor: float = 1.0,
    instance: dict | None = None,
    precisions: tuple[int, ...] = PRECISIONS,
) -> Certificate:
    """lambda(A) < bound_factor/(1+gamma)^2 at the concentrated A (the naive bound is false), and
    lambda(A) >= 1/(1+gamma sqrt m)^2 there (the uniform bound holds); docs/theory.md, section 4."""
    m = check_width("m", m)
    gamma = check_gamma(gamma)
    logit_gap = check_real("logit_gap", logit_gap, positive=False)
    bound_factor = check_real("bound_factor", bound_factor)
    precisions = check_precisions(precisions)
    instance = check_instance(instance)
    check_budget("NAIVE-BOUND-FALSE", m)
    A = concentrated_instance(m, logit_gap)

    def compute(cert):
        lam, _ = rate_enclosures(cert, A, gamma)
        g = arb(gamma)
        naive = arb(bound_factor) / ((1 + g) ** 2)
        uniform = arb(1) / ((1 + g * arb(m).sqrt()) ** 2)
        cert.enclosures["1/(1+gamma)^2"] = Enclosure.of(naive)
        cert.enclosures["1/(1+gamma sqrt m)^2"] = Enclosure.of(uniform)
        cert.enclosures["ratio"] = Enclosure.of(lam / naive)
        cert.items.append(
            inequality("lambda(A) < 1/(1+gamma)^2" + _factor_label("bound_factor", bound_factor), naive - lam)
        )
        cert.items.append(inequality("lambda(A) >= 1/(1+gamma sqrt m)^2", lam - uniform))

    inst = dict(instance or {"m": m, "gamma": gamma, "A": f"concentrated (A[0,:] = {logit_gap:g})"})
    if bound_factor != 1:
        inst["bound_factor"] = bound_factor
    return run_certificate("NAIVE-BOUND-FALSE", inst, compute, precisions)


def certify_uniform_rate(
    A,
    gamma: float,
    *,
    bound_factor: float = 1.0,
    instance: dict | None = None,
    precisions: tuple[int, ...] = PRECISIONS,
) -> Certificate:
    """lambda(A) >= bound_factor/(1+gamma sqrt m)^2, from the rigorous upper bound
    ||U||_2^2 <= hi(lambda_max(U^T U)) (docs/theory.md, section 4)."""
    A, gamma = check_weight(A, gamma)
    bound_factor = check_real("bound_factor", bound_factor)
    precisions = check_precisions(precisions)
    instance = check_instance(instance)
    m = A.shape[0]
    check_budget("UNIFORM-RATE", m)

    def compute(cert):
        lam, _ = rate_enclosures(cert, A, gamma)
        bound = arb(bound_factor) / ((1 + arb(gamma) * arb(m).sqrt()) ** 2)
        cert.enclosures["bound"] = Enclosure.of(bound)
        cert.enclosures["ratio"] = Enclosure.of(lam / bound)
        cert.items.append(
            inequality("lambda(A) >= 1/(1+gamma sqrt m)^2" + _factor_label("bound_factor", bound_factor), lam - bound)
        )

    inst = dict(instance or {"m": m, "gamma": gamma})
    if bound_factor != 1:
        inst["bound_factor"] = bound_factor
    return run_certificate("UNIFORM-RATE", inst, compute, precisions)


def state_instance(A, B, Phi, instance, gamma):
    return dict(instance or {"m": A.shape[0], "m_y": B.shape[0], "n": Phi.shape[1], "gamma": gamma})


def certify_state_wise(
    A,
    B,
    Phi,
    Y,
    gamma: float,
    *,
    bound_factor: float = 1.0,
    loss: str = "square",
    instance: dict | None = None,
    precisions: tuple[int, ...] = PRECISIONS,
) -> Certificate:
    """||dL/dA||^2 + ||dL/dB||^2 >= bound_factor 2 kappa lambda(A) (L - L*) (docs/theory.md, section 5),
    with every quantity enclosed; the inequality is proved for every kappa in its enclosure (so for
    the true one).

    ``loss="square"``: kappa = kappa_Phi (the smallest nonzero eigenvalue of Phi Phi^T) and L* from
    the least-squares minimiser. ``loss="pseudo_huber"``: kappa = kappa_Phi / (1 + L)^3, the PL
    constant on the sublevel set {L0 <= L} of the current state, and only where n <= m: a positive
    lower end of kappa_Phi's enclosure then proves rank Phi = n, so some W has W Phi = Y and L* = 0
    exactly (the loss is >= 0, zero at r = 0). At n > m the pseudo-Huber L* has no closed form and
    no finite certificate here (ValueError).
    """
    A, B, Phi, Y, gamma = check_state(A, B, Phi, Y, gamma)
    bound_factor = check_real("bound_factor", bound_factor)
    if loss not in ("square", "pseudo_huber"):
        raise ValueError(f"loss must be 'square' or 'pseudo_huber' for the STATE-WISE certificate; got {loss!r}")
    if loss == "pseudo_huber" and Phi.shape[1] > A.shape[0]:
        raise ValueError(
            f"the pseudo-Huber STATE-WISE certificate needs n <= m (then L* = 0 is proved by "
            f"rank Phi = n); got n = {Phi.shape[1]} > m = {A.shape[0]}"
        )
    precisions = check_precisions(precisions)
    instance = check_instance(instance)
    check_budget("STATE-WISE", A.shape[0], B.shape[0], Phi.shape[1])

    def compute(cert):
        st = BallState(A, B, Phi, Y, gamma, loss)
        lam = st.rate()
        kappa, route = st.kappa()
        if loss == "square":
            cert.items.append(positive_definite(f"kappa > 0, kappa = {route}", kappa))
            W_star = st.minimiser()
            excess = st.excess(W_star)
            label = "||dL/dA||^2 + ||dL/dB||^2 >= 2 kappa lambda(A) (L - L*)"
        else:
            cert.items.append(
                positive_definite(
                    f"kappa_Phi > 0, kappa_Phi = {route} (so rank Phi = n <= m, W Phi = Y is solvable and L* = 0)",
                    kappa,
                )
            )
            W_star, excess = None, st.value
            cert.enclosures["kappa_Phi"] = Enclosure.of(kappa)
            kappa = kappa / (1 + st.value) ** 3
            label = "||dL/dA||^2 + ||dL/dB||^2 >= 2 kappa_Phi (1 + L)^-3 lambda(A) (L - 0) (pseudo-Huber)"
        cert.enclosures["kappa"] = Enclosure.of(kappa)
        rhs = 2 * kappa * lam * excess
        bound = rhs * arb(bound_factor)
        cert.items.append(inequality(label + _factor_label("bound_factor", bound_factor), st.grad_norm_sq - bound))
        cert.enclosures.update(
            {
                "||dL/dA||^2 + ||dL/dB||^2": Enclosure.of(st.grad_norm_sq),
                "lambda(A)": Enclosure.of(lam),
                "L - L*": Enclosure.of(excess),
                "2 kappa lambda (L - L*)": Enclosure.of(rhs),
            }
        )
        if rhs > 0:
            cert.enclosures["ratio"] = Enclosure.of(st.grad_norm_sq / rhs)
        cert.balls.update(
            dL_dA=st.dL_dA,
            dL_dB=st.dL_dB,
            W=st.W,
            W_star=W_star,
            kappa=kappa,
            lam=lam,
            excess=excess,
            grad_norm_sq=st.grad_norm_sq,
        )

    inst = state_instance(A, B, Phi, instance, gamma)
    if bound_factor != 1:
        inst["bound_factor"] = bound_factor
    if loss != "square":
        inst["loss"] = loss
    return run_certificate("STATE-WISE", inst, compute, precisions)


def certify_energy(
    A,
    B,
    Phi,
    Y,
    gamma: float,
    *,
    second_term_scale: float = 1.0,
    rate_factor: float = 1.0,
    energy_factor: float = 1.0,
    instance: dict | None = None,
    precisions: tuple[int, ...] = PRECISIONS,
) -> Certificate:
    """Energy identity and rate (docs/theory.md, section 4) at one state of the square loss:

        vec(dW/dt) = -K g      (dW/dt by forward differentiation of W = B U^{-1} along the flow)
        dL/dt = <grad L0, dW/dt> = -(||dL/dA||^2 + ||dL/dB||^2) = -g^T K g
        K >= rate_factor lambda(A) I              (enclosures of lambda_min(K) and lambda(A))
        -dL/dt >= energy_factor lambda(A) ||g||^2

    The equations can be at best consistent to 2^-k (module :mod:`verify.certify.proof`). K is never
    formed: K g by its Kronecker formula term by term, lambda_min(K) by a Rayleigh quotient above and
    Temple's bound (or a Schur bound) below (:mod:`verify.certify.metric`); ``second_term_scale`` != 1
    builds a wrong K. When m < m_y or m = 1, lambda_min(K) = lambda(A) exactly (W J_j^2 W^T has a common
    null space; J = 0), so K >= lambda(A) I is tight and cannot be certified by balls.
    """
    A, B, Phi, Y, gamma = check_state(A, B, Phi, Y, gamma)
    second_term_scale = check_real("second_term_scale", second_term_scale, allow_zero=True)
    rate_factor = check_real("rate_factor", rate_factor)
    energy_factor = check_real("energy_factor", energy_factor)
    precisions = check_precisions(precisions)
    instance = check_instance(instance)
    check_budget("ENERGY", A.shape[0], B.shape[0], Phi.shape[1])

    def compute(cert):
        st = BallState(A, B, Phi, Y, gamma)
        K = StructuredMetric(st, second_term_scale)
        Kg_mat = K.apply(st.grad_L0)
        Kg = ball_vec(Kg_mat)
        gKg = frobenius_inner(st.grad_L0, Kg_mat)
        # forward-mode derivative of W = B U^{-1} along (dA, dB) = (-dL/dA, -dL/dB):
        # dS_j = J_j dA_j, dU = -gamma dS, d(U^{-1}) = -U^{-1} dU U^{-1}
        dS = apply_jacobians(st.S, -st.dL_dA)
        dUinv = st.Uinv * dS * st.Uinv * st.gamma
        dW = -st.dL_dB * st.Uinv + st.B * dUinv
        dL_dt = frobenius_inner(st.grad_L0, dW)
        Kg_entries = list(Kg.entries())
        flow = equation("vec(dW/dt) = -K g", list((ball_vec(dW) + Kg).entries()), Kg_entries)
        cert.items.append(flow)
        cert.items.append(
            equation("dL/dt = -(||dL/dA||^2 + ||dL/dB||^2)", [dL_dt + st.grad_norm_sq], [st.grad_norm_sq])
        )
        cert.items.append(equation("dL/dt = -g^T K g", [dL_dt + gKg], [gKg]))
        for item in cert.items:
            cert.give_up_early(item)
        lam = st.rate()
        lam_K, how = K.lambda_min()
        g_sq = frobenius_sq(st.grad_L0)
        cert.items.append(
            inequality(
                "K >= lambda(A) I  (lambda_min(K) - lambda(A))" + _factor_label("rate_factor", rate_factor),
                lam_K - lam * arb(rate_factor),
                detail=how,
            )
        )
        cert.items.append(
            inequality(
                "-dL/dt >= lambda(A) ||g||^2" + _factor_label("energy_factor", energy_factor),
                -dL_dt - lam * g_sq * arb(energy_factor),
            )
        )
        cert.enclosures.update(
            {
                "lambda(A)": Enclosure.of(lam),
                "lambda_min(K)": Enclosure.of(lam_K),
                "-dL/dt": Enclosure.of(-dL_dt),
                "g^T K g": Enclosure.of(gKg),
                "||dL/dA||^2 + ||dL/dB||^2": Enclosure.of(st.grad_norm_sq),
            }
        )
        if lam > 0:
            cert.enclosures["lambda_min(K) / lambda(A)"] = Enclosure.of(lam_K / lam)
            if g_sq > 0:
                cert.enclosures["-dL/dt / (lambda ||g||^2)"] = Enclosure.of(-dL_dt / (lam * g_sq))
        cert.balls.update(Kg=Kg, g=ball_vec(st.grad_L0), lam=lam, lam_K=lam_K, dW=dW, dL_dt=dL_dt, metric=K)

    inst = state_instance(A, B, Phi, instance, gamma)
    for name, value in (
        ("second_term_scale", second_term_scale),
        ("rate_factor", rate_factor),
        ("energy_factor", energy_factor),
    ):
        if value != 1:
            inst[name] = value
    return run_certificate("ENERGY", inst, compute, precisions)


#: the admissible-step items test G_dt at dt = (1 -+ STEP_BOUND_GAP) dt_max
STEP_BOUND_GAP = 2.0**-6


def _lambda_min_G(Lam: arb, step: arb, lam_max_K: arb, lam_min_K, witness: arb) -> arb:
    """An enclosure of lambda_min(G_s), G_s = K^{-1}/s - H = K^{-1/2} (I/s - K^{1/2} H K^{1/2}) K^{-1/2}, so
    x^T G_s x = y^T (I/s - K^{1/2} H K^{1/2}) y with y = K^{-1/2} x, ||x||^2/lambda_max(K) <= ||y||^2 <=
    ||x||^2/lambda_min(K): below (1/s - Lambda)/lambda_max(K) if 1/s - Lambda >= 0, else (1/s - Lambda)/
    lambda_min(K) (``lam_min_K()`` a lower bound, computed only then); above the Rayleigh quotient
    ``witness`` of the witness x. Both ends have comparable sizes, so the ball keeps the sign of each."""
    gap = arb((arb(1) / step - Lam).lower())
    lower = gap / arb(lam_max_K.upper()) if gap >= 0 else gap / lam_min_K()
    return arb(lower.lower()).union(witness)


def certify_trust_region(
    A,
    B,
    Phi,
    Y,
    gamma: float,
    *,
    dt_factor: float = 0.5,
    dt_max: float | None = None,
    step_gap: float = STEP_BOUND_GAP,
    multiplier: float = 1.0,
    instance: dict | None = None,
    precisions: tuple[int, ...] = PRECISIONS,
) -> Certificate:
    """KKT conditions of the shallow trust-region subproblem (docs/theory.md, section 6) at the Euler
    step v = -dt K g of the DEQ flow, dt = dt_factor dt_max (dt_max a float64 value of
    1 / lambda_max(K^{1/2} H K^{1/2}): given, e.g. by the reference, or estimated here):

        G = K^{-1}/dt - H > 0                        (the trust region is an ellipsoid)
        H + mu G > 0                                  (second-order condition: global minimiser)
        (H + mu G) v + g = 0,  mu = multiplier        (stationarity; true at mu = 1)
        ||v_KKT||_G = delta = ||v||_G, v_KKT = -(H + mu G)^{-1} g  (the radius)
        G_dt > 0 at (1 - step_gap) dt_max, and x^T G_dt x < 0 at (1 + step_gap) dt_max

    Nothing of size (m m_y)^2 is formed (:mod:`verify.certify.metric`): K v and H v by their Kronecker
    formulas, K^{-1} v by m_y x m_y solves with M_j and products with U. G_s > 0 iff s Lambda < 1,
    Lambda = lambda_max(K^{1/2} H K^{1/2}) (a congruence); Lambda is enclosed (Temple or a Schur bound
    above, a Rayleigh quotient below), and x^T G x < 0 uses the witness x = K Xi y. lambda_min(G) is
    enclosed by Temple at a float64 eigenvector of G (else from Lambda by Ostrowski: x^T G x =
    y^T (I/s - K^{1/2} H K^{1/2}) y, y = K^{-1/2} x); lambda_min(H + mu G) by Weyl from lambda_max(K)
    (Temple, else max_j lambda_max(M_j) lambda_max(Q)); the G_dt > 0 item below dt_max from Lambda.
    v_KKT is enclosed around v: (H + mu G)(v_KKT - v) = -residual, so
    ||v_KKT - v||_2 <= ||residual||_2 / lambda_min(H + mu G), and ||v_KKT||_G^2 follows with the error
    terms 2 e^T G v and e^T G e bounded by norms. dt is exact (a dyadic number).
    """
    A, B, Phi, Y, gamma = check_state(A, B, Phi, Y, gamma)
    dt_factor = check_real("dt_factor", dt_factor)
    if dt_max is not None:
        dt_max = check_real("dt_max", dt_max)
    step_gap = check_fraction("step_gap", step_gap)
    multiplier = check_real("multiplier", multiplier)
    precisions = check_precisions(precisions)
    instance = check_instance(instance)
    check_budget("TRUST-REGION", A.shape[0], B.shape[0], Phi.shape[1])

    def compute(cert):
        st = BallState(A, B, Phi, Y, gamma)
        K = StructuredMetric(st)
        g = st.grad_L0
        estimate_f = K.largest_pairs()[0]
        if not (np.isfinite(estimate_f) and estimate_f > 0):
            raise Undecided("no finite estimate of dt_max = 1/lambda_max(K^{1/2} H K^{1/2}) in float64")
        estimate = arb(1.0 / estimate_f)
        bound = estimate if dt_max is None else arb(dt_max)
        dt = arb((bound * arb(dt_factor)).mid())  # exact
        mu = arb(multiplier)

        def metric_G(X: arb_mat, step: arb) -> arb_mat:
            return K.apply_inverse(X) / step - K.apply_hessian(X)

        v = -K.apply(g) * dt  # the Euler step of the flow in function space
        Hv, Gv = K.apply_hessian(v), metric_G(v, dt)
        residual = Hv + Gv * mu + g
        stationarity = equation(
            f"(H + {multiplier!r} G) v + g = 0 at v = -dt K g", list(residual.entries()), list(g.entries())
        )
        cert.items.append(stationarity)
        cert.give_up_early(stationarity)
        delta_sq = frobenius_inner(v, Gv)
        cert.items.append(inequality("delta = ||v||_G > 0", delta_sq))
        lam_max_K, how_K = K.lambda_max()
        lam_max_H = arb(lambda_max_enclosure(st.P).upper())
        # Weyl: H + mu G = mu K^{-1}/dt + (1 - mu) H, lambda_min(mu K^{-1}/dt) = mu/(dt lambda_max(K)), 0 <= H
        lam_HG = mu / (dt * lam_max_K) + arb(0).union((1 - mu) * lam_max_H)
        if lam_HG > 0:
            # v_KKT = v + e, ||e||_2 <= spread; ||v_KKT||_G^2 = delta^2 + 2 e^T G v + e^T G e, and
            # ||G||_2 <= ||K^{-1}||_2/dt + ||H||_2 <= ||U||_F^2/dt + ||Phi Phi^T||_F (K^{-1} = (U (x) I) M^{-1}
            # (U^T (x) I), M >= I)
            spread = arb(frobenius_sq(residual).upper()).sqrt() / arb(lam_HG.lower())
            norm_G = frobenius_sq(K.U) / dt + frobenius_sq(st.P).sqrt()
            error = 2 * spread * frobenius_sq(Gv).sqrt() + spread * spread * norm_G
            radius_kkt = delta_sq + (-error).union(error)  # + a ball around 0 holding [-error, error]
            box = (-spread).union(spread)
            v_kkt = v + arb_mat([[box for _ in range(v.ncols())] for _ in range(v.nrows())])
        else:
            v_kkt, radius_kkt = None, arb(0, float("inf"))
        radius = equation("||v_KKT||_G^2 = delta^2", [radius_kkt - delta_sq], [delta_sq])
        cert.items.append(radius)
        cert.give_up_early(radius)  # before the costly step-bound enclosure
        step = K.step_bound()
        Lam, q1, q2, xx = step["Lambda"], step["q1"], step["q2"], step["xx"]
        below, above = (arb((bound * (1 + s * arb(step_gap))).mid()) for s in (-1, 1))

        def lam_min_K() -> arb:  # lambda_min(K) >= lambda(A) = 1/||U||_2^2 (K >= Q (x) I; section 4)
            if "lam" not in cert.balls:
                cert.balls["lam"] = arb(st.rate().lower())
                if not cert.balls["lam"] > 0:
                    raise Undecided("lambda(A) > 0 not proved")
            return cert.balls["lam"]

        def ostrowski(s: arb) -> tuple[arb, str]:
            return (
                _lambda_min_G(Lam, s, lam_max_K, lam_min_K, (q1 / s - q2) / xx),
                "Ostrowski from 1/dt_max (" + step["how"] + ")",
            )

        lam_G, how_G = K.lambda_min_G(dt) or ostrowski(dt)  # Temple where a gap is proved
        lam_below, how_below = ostrowski(below)  # the admissible step bound decides it
        quad_above = q1 / above - q2  # x^T G x at x = K Xi y: x^T K^{-1} x = q1, x^T H x = q2
        cert.items.append(
            positive_definite("G = K^{-1}/dt - H > 0" + _factor_label("dt_factor", dt_factor), lam_G, detail=how_G)
        )
        cert.items.append(positive_definite(f"H + {multiplier!r} G > 0", lam_HG, detail=f"lambda_max(K): {how_K}"))
        cert.items.append(
            positive_definite(f"G_dt > 0 at dt = (1 - {step_gap:.3g}) dt_max", lam_below, detail=how_below)
        )
        cert.items.append(
            inequality(f"x^T G_dt x < 0 at dt = (1 + {step_gap:.3g}) dt_max", -quad_above, detail=step["how"])
        )
        cert.enclosures.update(
            {
                "lambda_min(G)": Enclosure.of(lam_G),
                "lambda_min(H + mu G)": Enclosure.of(lam_HG),
                "delta^2": Enclosure.of(delta_sq),
                "||v_KKT||_G^2": Enclosure.of(radius_kkt),
                "dt": Enclosure.of(dt),
                "dt_max estimate": Enclosure.of(estimate),
                "dt_max = 1/lambda_max(K^1/2 H K^1/2)": Enclosure.of(arb(1) / Lam),
                "lambda_max(K)": Enclosure.of(lam_max_K),
            }
        )
        cert.instance["dt"] = float(dt)
        cert.balls.update(
            v=ball_vec(v),
            v_kkt=None if v_kkt is None else ball_vec(v_kkt),
            residual=ball_vec(residual),
            g=ball_vec(g),
            dt=dt,
            Lambda=Lam,
            metric=K,
        )

    inst = state_instance(A, B, Phi, instance, gamma)
    for name, value, default in (
        ("dt_factor", dt_factor, 0.5),
        ("step_gap", step_gap, STEP_BOUND_GAP),
        ("multiplier", multiplier, 1.0),
    ):
        if value != default:
            inst[name] = value
    if dt_max is not None:
        inst["dt_max"] = dt_max
    return run_certificate("TRUST-REGION", inst, compute, precisions)
