"""The certificates: one function per claim, each deciding the claim's finite statement at one
instance in ball arithmetic."""

from __future__ import annotations

from functools import reduce

import numpy as np
from flint import arb, arb_mat

from .ball_model import BallState, apply_jacobians, implicit_matrix_ball, norm_sq_enclosure
from .balls import ball_matrix, ball_sum, ball_vec, frobenius_inner, frobenius_sq, lambda_min_enclosure, mid_array
from .proof import PRECISIONS, Certificate, Enclosure, equation, inequality, positive_definite, run_certificate


# ---- the certificates ---------------------------------------------------------------------------
def concentrated_instance(m: int, logit_gap: float = 50.0) -> np.ndarray:
    """A[0, :] = logit_gap, the rest 0: every softmax column sits near e_1 (docs/theory.md, section 4)."""
    A = np.zeros((m, m))
    A[0, :] = logit_gap
    return A


def rate_enclosures(cert: Certificate, A: np.ndarray, gamma: float) -> tuple[arb, arb]:
    S, U = implicit_matrix_ball(A, gamma)
    norm_sq = norm_sq_enclosure(U)
    lam = arb(1) / norm_sq
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


def certify_naive_bound_false(m: int = 30, gamma: float = 0.9, *, logit_gap: float = 50.0,
                              precisions: tuple[int, ...] = PRECISIONS) -> Certificate:
    """lambda(A) < 1/(1+gamma)^2 at the concentrated A (the naive bound is false), and
    lambda(A) >= 1/(1+gamma sqrt m)^2 there (the uniform bound holds)."""
    A = concentrated_instance(m, logit_gap)

    def compute(cert):
        lam, _ = rate_enclosures(cert, A, gamma)
        g = arb(gamma)
        naive = arb(1) / ((1 + g) ** 2)
        uniform = arb(1) / ((1 + g * arb(m).sqrt()) ** 2)
        cert.enclosures["1/(1+gamma)^2"] = Enclosure.of(naive)
        cert.enclosures["1/(1+gamma sqrt m)^2"] = Enclosure.of(uniform)
        cert.items.append(inequality("lambda(A) < 1/(1+gamma)^2", naive - lam))
        cert.items.append(inequality("lambda(A) >= 1/(1+gamma sqrt m)^2", lam - uniform))

    return run_certificate("NAIVE-BOUND-FALSE", {"m": m, "gamma": gamma, "A": f"concentrated (A[0,:] = {logit_gap:g})"},
                compute, precisions)


def certify_uniform_rate(A: np.ndarray, gamma: float, *, bound_factor: float = 1.0, instance: dict | None = None,
                         precisions: tuple[int, ...] = PRECISIONS) -> Certificate:
    """lambda(A) >= 1/(1+gamma sqrt m)^2, from the rigorous upper bound ||U||_2^2 <= hi(lambda_max(U^T U)).

    ``bound_factor`` multiplies the bound (a false claim when > lambda(A) (1 + gamma sqrt m)^2;
    tests only)."""
    A = np.asarray(A, dtype=np.float64)
    m = A.shape[0]

    def compute(cert):
        lam, _ = rate_enclosures(cert, A, gamma)
        bound = arb(bound_factor) / ((1 + arb(gamma) * arb(m).sqrt()) ** 2)
        cert.enclosures["bound"] = Enclosure.of(bound)
        cert.items.append(inequality("lambda(A) >= 1/(1+gamma sqrt m)^2" + (f" x {bound_factor!r}" if bound_factor != 1 else ""),
                                      lam - bound))

    inst = dict(instance or {"m": m, "gamma": gamma})
    if bound_factor != 1:
        inst["bound_factor"] = bound_factor
    return run_certificate("UNIFORM-RATE", inst, compute, precisions)


def state_instance(A, B, Phi, Y, gamma, instance):
    return dict(instance or {"m": A.shape[0], "m_y": B.shape[0], "n": Phi.shape[1], "gamma": gamma})


def certify_state_wise(A, B, Phi, Y, gamma: float, *, kappa_factor: float = 1.0, instance: dict | None = None,
                       precisions: tuple[int, ...] = PRECISIONS) -> Certificate:
    """||dL/dA||^2 + ||dL/dB||^2 >= 2 kappa lambda(A) (L - L*) (square loss), with every quantity
    enclosed; the inequality is proved for every kappa in its enclosure (so for the true one).

    ``kappa_factor`` multiplies kappa (a false claim when large enough; tests only).
    """
    A, B, Phi, Y = (np.asarray(x, dtype=np.float64) for x in (A, B, Phi, Y))

    def compute(cert):
        st = BallState(A, B, Phi, Y, gamma)
        lam = st.rate()
        kappa, route = st.kappa()
        cert.items.append(positive_definite(f"kappa > 0, kappa = {route}", kappa))
        cert.enclosures["kappa"] = Enclosure.of(kappa)
        W_star = st.minimiser()
        excess = st.excess(W_star)
        rhs = 2 * kappa * arb(kappa_factor) * lam * excess
        cert.items.append(inequality("||dL/dA||^2 + ||dL/dB||^2 >= 2 kappa lambda(A) (L - L*)"
                                      + (f" with kappa x {kappa_factor!r}" if kappa_factor != 1 else ""),
                                      st.grad_norm_sq - rhs))
        cert.enclosures.update({"||dL/dA||^2 + ||dL/dB||^2": Enclosure.of(st.grad_norm_sq), "lambda(A)": Enclosure.of(lam),
                                "L - L*": Enclosure.of(excess), "2 kappa lambda (L - L*)": Enclosure.of(rhs)})
        if rhs > 0:
            cert.enclosures["ratio"] = Enclosure.of(st.grad_norm_sq / rhs)
        cert.balls.update(dL_dA=st.dL_dA, dL_dB=st.dL_dB, W=st.W, W_star=W_star, kappa=kappa, lam=lam,
                          excess=excess, grad_norm_sq=st.grad_norm_sq)

    inst = state_instance(A, B, Phi, Y, gamma, instance)
    if kappa_factor != 1:
        inst["kappa_factor"] = kappa_factor
    return run_certificate("STATE-WISE", inst, compute, precisions)


def size_of(*matrices: arb_mat) -> float:
    return max(max((float(x.abs_upper()) for x in M.entries()), default=0.0) for M in matrices) or 1.0


def certify_energy(A, B, Phi, Y, gamma: float, *, second_term_scale: float = 1.0, instance: dict | None = None,
                   precisions: tuple[int, ...] = PRECISIONS) -> Certificate:
    """Energy identity and rate (docs/theory.md, section 4) at one state of the square loss:

        vec(dW/dt) = -K g      (dW/dt by forward differentiation of W = B U^{-1} along the flow)
        dL/dt = <grad L0, dW/dt> = -(||dL/dA||^2 + ||dL/dB||^2) = -g^T K g
        K >= lambda(A) I       (enclosures of lambda_min(K) and lambda(A))
        -dL/dt >= lambda(A) ||g||^2

    K is built explicitly from its Kronecker formula. ``second_term_scale`` != 1 builds a wrong K
    (tests only). When m < m_y, lambda_min(K) = lambda(A) exactly (W J_j^2 W^T has a common null
    space), so K >= lambda(A) I is tight and cannot be certified by balls.
    """
    A, B, Phi, Y = (np.asarray(x, dtype=np.float64) for x in (A, B, Phi, Y))

    def compute(cert):
        st = BallState(A, B, Phi, Y, gamma)
        lam = st.rate()
        K = st.metric(second_term_scale)
        g = ball_vec(st.grad_L0)
        Kg = K * g
        gKg = (g.transpose() * Kg)[0, 0]
        # forward-mode derivative of W = B U^{-1} along (dA, dB) = (-dL/dA, -dL/dB):
        # dS_j = J_j dA_j, dU = -gamma dS, d(U^{-1}) = -U^{-1} dU U^{-1}
        dS = apply_jacobians(st.S, -st.dL_dA)
        dUinv = st.Uinv * dS * st.Uinv * st.gamma
        dW = -st.dL_dB * st.Uinv + st.B * dUinv
        dL_dt = frobenius_inner(st.grad_L0, dW)
        lam_K = lambda_min_enclosure(K)
        g_sq = frobenius_sq(st.grad_L0)
        energy_scale = float(st.grad_norm_sq.abs_upper())
        cert.items.append(equation("vec(dW/dt) = -K g", list((ball_vec(dW) + Kg).entries()), size_of(Kg)))
        cert.items.append(equation("dL/dt = -(||dL/dA||^2 + ||dL/dB||^2)", [dL_dt + st.grad_norm_sq], energy_scale))
        cert.items.append(equation("dL/dt = -g^T K g", [dL_dt + gKg], energy_scale))
        cert.items.append(inequality("K >= lambda(A) I  (lambda_min(K) - lambda(A))", lam_K - lam))
        cert.items.append(inequality("-dL/dt >= lambda(A) ||g||^2", -dL_dt - lam * g_sq))
        cert.enclosures.update({"lambda(A)": Enclosure.of(lam), "lambda_min(K)": Enclosure.of(lam_K),
                                "-dL/dt": Enclosure.of(-dL_dt), "g^T K g": Enclosure.of(gKg),
                                "||dL/dA||^2 + ||dL/dB||^2": Enclosure.of(st.grad_norm_sq)})
        cert.balls.update(K=K, g=g, lam=lam, lam_K=lam_K, dW=dW, dL_dt=dL_dt)

    inst = state_instance(A, B, Phi, Y, gamma, instance)
    if second_term_scale != 1:
        inst["second_term_scale"] = second_term_scale
    return run_certificate("ENERGY", inst, compute, precisions)


#: the admissible-step items test G_dt at dt = (1 -+ STEP_BOUND_GAP) / lambda_max(K^{1/2} H K^{1/2})
STEP_BOUND_GAP = 2.0 ** -6


def certify_trust_region(A, B, Phi, Y, gamma: float, *, dt_factor: float = 0.5, multiplier: float = 1.0,
                         instance: dict | None = None, precisions: tuple[int, ...] = PRECISIONS) -> Certificate:
    """KKT conditions of the shallow trust-region subproblem (docs/theory.md, section 6) at the Euler
    step v = -dt K g of the DEQ flow, dt = dt_factor / lambda_max(K^{1/2} H K^{1/2}):

        G = K^{-1}/dt - H > 0                        (the trust region is an ellipsoid)
        H + mu G > 0                                  (second-order condition: global minimiser)
        (H + mu G) v + g = 0,  mu = 1                 (stationarity at multiplier 1)
        ||v_KKT||_G = delta = ||v||_G, v_KKT = -(H + mu G)^{-1} g  (the radius; rigorous solve)
        G_dt > 0 just below the step bound, and x^T G_dt x < 0 just above it (the bound depends on H)

    K^{-1} and v_KKT are rigorous enclosures (Arb inverse / solve). ``multiplier`` != 1 and
    ``dt_factor`` >= 1 make false claims (tests only).
    """
    A, B, Phi, Y = (np.asarray(x, dtype=np.float64) for x in (A, B, Phi, Y))

    def compute(cert):
        st = BallState(A, B, Phi, Y, gamma)
        K = st.metric()
        H = st.hessian()
        g = ball_vec(st.grad_L0)
        # float estimate of the step bound 1 / lambda_max(K^{1/2} H K^{1/2}) = 1 / lambda_max(L^T H L), K = L L^T
        Kf, Hf = mid_array(K), mid_array(H)
        Lc = np.linalg.cholesky(0.5 * (Kf + Kf.T))
        top, vecs = np.linalg.eigh(Lc.T @ Hf @ Lc)
        dt_max = 1.0 / top[-1]
        dt = float(dt_factor * dt_max)
        Kinv = K.inv()

        def metric_G(step):
            return Kinv * (arb(1) / arb(step)) - H

        G = metric_G(dt)
        mu = arb(multiplier)
        HG = H + G * mu
        v = -(K * g) * arb(dt)                          # the Euler step of the flow in function space
        residual = HG * v + g
        stationarity = equation(f"(H + {multiplier!r} G) v + g = 0 at v = -dt K g", list(residual.entries()), size_of(g))
        cert.items.append(stationarity)
        cert.give_up_early(stationarity)
        v_kkt = HG.solve(-g)                             # the exact KKT point, rigorously enclosed
        delta_sq = (v.transpose() * G * v)[0, 0]
        radius_kkt = (v_kkt.transpose() * G * v_kkt)[0, 0]
        cert.items.append(inequality("delta = ||v||_G > 0", delta_sq))
        cert.items.append(equation("||v_KKT||_G^2 = delta^2", [radius_kkt - delta_sq], float(delta_sq.abs_upper())))
        lam_G = lambda_min_enclosure(G)
        lam_HG = lambda_min_enclosure(HG)
        cert.items.append(positive_definite("G = K^{-1}/dt - H > 0", lam_G))
        cert.items.append(positive_definite(f"H + {multiplier!r} G > 0", lam_HG))
        # the admissible step bound, which depends on H
        lam_below = lambda_min_enclosure(metric_G(float((1 - STEP_BOUND_GAP) * dt_max)))
        x = ball_matrix(Lc @ vecs[:, -1:])
        above = (x.transpose() * metric_G(float((1 + STEP_BOUND_GAP) * dt_max)) * x)[0, 0]
        cert.items.append(positive_definite("G_dt > 0 at dt = (1 - 2^-6) dt_max", lam_below))
        cert.items.append(inequality("x^T G_dt x < 0 at dt = (1 + 2^-6) dt_max", -above))
        cert.enclosures.update({"lambda_min(G)": Enclosure.of(lam_G), "lambda_min(H + mu G)": Enclosure.of(lam_HG),
                                "delta^2": Enclosure.of(delta_sq), "||v_KKT||_G^2": Enclosure.of(radius_kkt)})
        cert.instance["dt"] = dt
        cert.balls.update(K=K, H=H, G=G, v=v, v_kkt=v_kkt, residual=residual, g=g)

    inst = state_instance(A, B, Phi, Y, gamma, instance)
    if dt_factor != 0.5:
        inst["dt_factor"] = dt_factor
    if multiplier != 1:
        inst["multiplier"] = multiplier
    return run_certificate("TRUST-REGION", inst, compute, precisions)

