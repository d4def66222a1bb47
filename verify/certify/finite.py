"""Certificates of the remaining finite claims at their instances (docs/theory.md, sections 2 and 3):

    NONCONVEX     L(mid) - (L(theta_1) + L(theta_2)) / 2 > gap_bound (default 0) for two parameter
                  points and their exact midpoint: a certified violation of midpoint convexity,
                  i.e. a proof that L is not convex (the comparison is made on excess losses
                  E = L - L*, the same differences without cancellation)
    CONSERVATION  1^T dL/dA = 0 (every column), two ways:
                  exact    at the rational column-stochastic s~ (sigma(A) rounded to rationals and
                           renormalised exactly, 1^T s~ = 1) and the rational Gamma~ = mid(Gamma):
                           1^T J(s~) Gamma~_j = (1 - 1^T s~)(s~ . Gamma~_j) = 0, in rationals (fmpq);
                           proved with every residual exactly 0;
                  balls    at the true softmax (irrational: no exact rational input exists), the
                           residual balls contain 0: consistent to 2^-k, never proved;
    STATIONARY    grad L0(W) = dL/dB U^T, dL/dB by forward differentiation of L along each
                  entry of B (dW = E_kl U^{-1}); exact at the rational stand-in U~ = I - gamma s~
                  (fmpq solves), consistent to 2^-k at the true softmax; and ||gamma S||_1 < 1
                  proved, so U is invertible and dL/dB = 0 forces grad L0(W) = 0.

Canaries: ``jacobian_scale`` != 1 (J = diag(s) - c s s^T, not the softmax Jacobian: its column
sums are (1 - c) s^T), ``multiplier`` != 1 (grad L0 = c dL/dB U^T) and ``transpose=False``
(dL/dB U instead of U^T) make the equations false; ``gap_bound`` above the true gap makes
NONCONVEX false.
"""

from __future__ import annotations

from flint import arb, arb_mat, fmpq, fmpq_mat

from .balls import ball_column, ball_matrix, mid_array, rational_matrix
from .paths import ProblemBalls
from .proof import PRECISIONS, Certificate, Enclosure, equation, inequality, run_certificate
from .validation import check_instance, check_precisions, check_real, check_state


def certify_nonconvex(
    A1,
    B1,
    A2,
    B2,
    Phi,
    Y,
    gamma: float,
    *,
    gap_bound: float = 0.0,
    instance: dict | None = None,
    precisions: tuple[int, ...] = PRECISIONS,
) -> Certificate:
    """L((theta_1 + theta_2)/2) - (L(theta_1) + L(theta_2))/2 > gap_bound (module docstring)."""
    A1, B1, Phi, Y, gamma = check_state(A1, B1, Phi, Y, gamma)
    A2, B2, _, _, _ = check_state(A2, B2, Phi, Y, gamma)
    gap_bound = check_real("gap_bound", gap_bound, positive=False)
    precisions = check_precisions(precisions)
    instance = check_instance(instance)

    def compute(cert):
        problem = ProblemBalls(Phi, Y, gamma)
        a1, b1, a2, b2 = (ball_matrix(X) for X in (A1, B1, A2, B2))
        e1 = problem.at(a1, b1, gradient=False).excess()
        e2 = problem.at(a2, b2, gradient=False).excess()
        e_mid = problem.at((a1 + a2) / 2, (b1 + b2) / 2, gradient=False).excess()  # the exact midpoint, enclosed
        gap = e_mid - (e1 + e2) / 2
        label = "L(midpoint) > (L(theta_1) + L(theta_2)) / 2" + ("" if gap_bound == 0 else f" + {gap_bound!r}")
        cert.items.append(inequality(label, gap - arb(gap_bound)))
        cert.enclosures.update(
            {
                "L(theta_1) - L*": Enclosure.of(e1),
                "L(theta_2) - L*": Enclosure.of(e2),
                "L(midpoint) - L*": Enclosure.of(e_mid),
                "gap": Enclosure.of(gap),
            }
        )

    inst = dict(instance or {"m": A1.shape[0], "m_y": B1.shape[0], "n": Phi.shape[1], "gamma": gamma})
    if gap_bound != 0:
        inst["gap_bound"] = gap_bound
    return run_certificate("NONCONVEX", inst, compute, precisions)


def rational_softmax(S_ball: arb_mat) -> fmpq_mat:
    """s~: the midpoints of the ball softmax as rationals, each column divided by its exact sum, so
    1^T s~ = 1 exactly."""
    m = S_ball.nrows()
    mids = rational_matrix(mid_array(S_ball))
    out = fmpq_mat(m, m)
    for j in range(m):
        total = sum((mids[i, j] for i in range(m)), fmpq(0))
        for i in range(m):
            out[i, j] = mids[i, j] / total
    return out


def certify_conservation(
    A,
    B,
    Phi,
    Y,
    gamma: float,
    *,
    jacobian_scale: float = 1.0,
    instance: dict | None = None,
    precisions: tuple[int, ...] = PRECISIONS,
) -> Certificate:
    """1^T dL/dA = 0 exactly at rational inputs and consistent to 2^-k at the true softmax (module
    docstring); ``jacobian_scale`` c builds J = diag(s) - c s s^T (c != 1: a wrong Jacobian)."""
    A, B, Phi, Y, gamma = check_state(A, B, Phi, Y, gamma)
    c = check_real("jacobian_scale", jacobian_scale)
    precisions = check_precisions(precisions)
    instance = check_instance(instance)
    m = A.shape[0]

    def compute(cert):
        problem = ProblemBalls(Phi, Y, gamma)
        point = problem.at(ball_matrix(A), ball_matrix(B))
        Gamma = point.W.transpose() * point.dL_dB * problem.gamma
        sums, terms = [], []
        for j in range(m):
            s, x = ball_column(point.S, j), ball_column(Gamma, j)
            dot = sum((a * b for a, b in zip(s, x)), arb(0))
            column = [s[i] * x[i] - arb(c) * s[i] * dot for i in range(m)]
            sums.append(sum(column, arb(0)))
            terms += column
        balls = equation(
            "1^T dL/dA = 0 at sigma(A) (balls)" + ("" if c == 1 else f", J = diag(s) - {c!r} s s^T"), sums, terms
        )
        # exact: rational s~ with 1^T s~ = 1 and rational Gamma~
        s_q = rational_softmax(point.S)
        g_q = rational_matrix(mid_array(Gamma))
        c_q = fmpq(*float(c).as_integer_ratio())
        exact_sums = []
        for j in range(m):
            dot = sum((s_q[i, j] * g_q[i, j] for i in range(m)), fmpq(0))
            exact_sums.append(sum((s_q[i, j] * g_q[i, j] - c_q * s_q[i, j] * dot for i in range(m)), fmpq(0)))
        exact = equation(
            "1^T J(s~) Gamma~_j = 0 at rational s~ (1^T s~ = 1), Gamma~ (exact rationals)",
            [arb(x) for x in exact_sums],
            [arb(s_q[i, j] * g_q[i, j]) for i in range(m) for j in range(m)],
        )
        cert.items += [exact, balls]
        cert.enclosures["max |1^T dL/dA|"] = balls.margin

    inst = dict(instance or {"m": m, "m_y": B.shape[0], "n": Phi.shape[1], "gamma": gamma})
    if c != 1:
        inst["jacobian_scale"] = c
    return run_certificate("CONSERVATION", inst, compute, precisions)


def certify_stationary(
    A,
    B,
    Phi,
    Y,
    gamma: float,
    *,
    multiplier: float = 1.0,
    transpose: bool = True,
    instance: dict | None = None,
    precisions: tuple[int, ...] = PRECISIONS,
) -> Certificate:
    """grad L0(W) = dL/dB U^T (module docstring); ``multiplier`` != 1 or ``transpose=False`` make it false."""
    A, B, Phi, Y, gamma = check_state(A, B, Phi, Y, gamma)
    mult = check_real("multiplier", multiplier)
    if not isinstance(transpose, bool):
        raise ValueError(f"transpose must be a bool; got {transpose!r}")
    precisions = check_precisions(precisions)
    instance = check_instance(instance)
    m, m_y = A.shape[0], B.shape[0]

    def compute(cert):
        problem = ProblemBalls(Phi, Y, gamma)
        point = problem.at(ball_matrix(A), ball_matrix(B), gradient=False)
        # dL/dB[k, l] = <grad L0(W), E_kl U^{-1}>: the directional derivative of L along E_kl
        dL_dB = arb_mat(m_y, m)
        for k in range(m_y):
            for j in range(m):
                E = arb_mat(m_y, m)
                E[k, j] = 1
                dL_dB[k, j] = point.directional_derivative(arb_mat(m, m), E)
        U = point.U.transpose() if transpose else point.U
        rhs = dL_dB * U * arb(mult)
        label = f"grad L0(W) = {'' if mult == 1 else repr(mult) + ' '}dL/dB U{'^T' if transpose else ''}"
        balls = equation(
            label + " at sigma(A) (balls)", list((point.grad_L0 - rhs).entries()), list(point.grad_L0.entries())
        )
        # ||gamma S||_1 < 1: U = I - gamma S is invertible, so dL/dB = 0 forces grad L0 = 0
        col = max(
            (sum((point.S[i, j] for i in range(m)), arb(0)) * problem.gamma for j in range(m)), key=lambda x: x.mid()
        )
        invertible = inequality("||gamma sigma(A)||_1 < 1 (U invertible: dL/dB = 0 => grad L0(W) = 0)", 1 - col)
        # exact at the rational stand-in U~ = I - gamma s~
        s_q = rational_softmax(point.S)
        g = fmpq(*float(gamma).as_integer_ratio())
        U_q = fmpq_mat([[fmpq(int(i == j)) - g * s_q[i, j] for j in range(m)] for i in range(m)])
        B_q = rational_matrix(B)
        P_q = rational_matrix(Phi) * rational_matrix(Phi).transpose()
        YP_q = rational_matrix(Y) * rational_matrix(Phi).transpose()
        W_q = U_q.transpose().solve(B_q.transpose()).transpose()
        grad_q = W_q * P_q - YP_q
        dB_q = U_q.solve(grad_q.transpose()).transpose()  # grad L0 U~^{-T}
        U_used = U_q.transpose() if transpose else U_q
        mult_q = fmpq(*float(mult).as_integer_ratio())
        residual = grad_q - dB_q * U_used * mult_q
        exact = equation(
            label + " at the rational stand-in U~ = I - gamma s~ (exact rationals)",
            [arb(x) for x in residual.entries()],
            [arb(x) for x in grad_q.entries()],
        )
        cert.items += [invertible, exact, balls]
        cert.enclosures["||gamma S||_1"] = Enclosure.of(col)

    inst = dict(instance or {"m": m, "m_y": m_y, "n": Phi.shape[1], "gamma": gamma})
    if mult != 1:
        inst["multiplier"] = mult
    if not transpose:
        inst["transpose"] = False
    return run_certificate("STATIONARY", inst, compute, precisions)
