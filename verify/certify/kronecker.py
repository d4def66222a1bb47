"""Inertia of Z = E (x) I_{m_y} + blockdiag(D_1, ..., D_m) without forming the (m m_y)^2 matrix, and
Temple's eigenvalue bounds: the two tools of the structured metric (:mod:`verify.certify.metric`).

Ordering. Column-major vec (docs/theory.md, section 4): index i m_y + alpha is entry (alpha, i) of an
m_y x m matrix, so E (x) I has entry E_ij delta_{alpha beta} at ((i, alpha), (j, beta)) and block j of
blockdiag(D) acts on column j.

The Schur bound (:func:`prove_inertia`). Let E be symmetric m x m and every D_j symmetric positive
semidefinite (the caller's obligation: structural or proved). For an exact m x m matrix V (float64
eigenvectors of E, ascending) split V = [V_L, V_H] after k columns. The congruence by V (x) I gives

    Z~ = (V^T E V) (x) I + sum_j (V^T e_j)(e_j^T V) (x) D_j = [[Z~_LL, Z~_LH], [Z~_HL, Z~_HH]].

(a) Z~_HH = E~_HH (x) I + (PSD) >= E~_HH (x) I >= diag(h) (x) I with h_i = E~_ii - sum_{j != i} |E~_ij|
    (E~_HH - diag(h) is symmetric, diagonally dominant with a non-negative diagonal, hence PSD).
    If every h_i > 0, Z~_HH > 0 and Z~_HH^{-1} <= diag(1/h) (x) I (the inverse reverses the order).
(b) Haynsworth: In(Z~) = In(Z~_HH) + In(S), S = Z~_LL - Z~_LH Z~_HH^{-1} Z~_HL, and by (a)
    S >= T := Z~_LL - Z~_LH (diag(1/h) (x) I) Z~_HL, a (k m_y)^2 matrix; so lambda_i(S) >= lambda_i(T).
(c) count = 0: T > 0 gives S > 0, Z~ > 0, so V (x) I is nonsingular and Z > 0 (Sylvester).
    count = 1: lambda_2(T) > 0 (Courant-Fischer: Y^T T Y > 0 for the k m_y - 1 columns Y of T's float
    eigenbasis after the first) gives at most one eigenvalue of S, hence of Z~, that is <= 0; V is
    proved nonsingular separately (Gershgorin on V^T V), so Z has at most one eigenvalue <= 0.
k >= m is the dense case: T = Z itself (d = m m_y; no V).

What is proved in balls: the entries of V^T E V, of T and the definiteness of T (or Y^T T Y) by
:func:`lambda_min_enclosure`, h_i > 0, and the Gershgorin margins. What is on paper: (a)-(c) and
that D_j >= 0. The bound drops Z~_LH (diag(1/h) (x) I - Z~_HH^{-1}) Z~_HL >= 0, i.e. the PSD part of
Z~_HH: it is sharp when the coupling into the H directions is small against h (a few percent of
lambda at k = 2 on the benchmark states; it only has to separate two eigenvalues).

Temple's inequality (:func:`temple_lower`). For symmetric K with lambda_2(K) >= nu and any x != 0
with Rayleigh quotient theta < nu: lambda_1(K) >= theta - ||(K - theta) x||^2 / ((nu - theta)||x||^2),
from x^T (K - lambda_1)(K - nu) x >= 0 in K's eigenbasis. Shifted by an exact sigma it reads, with
q0 = x^T x, q1 = x^T (K - sigma) x, q2 = ||(K - sigma) x||^2 and nu' = nu - sigma,
lambda_1 - sigma >= (nu' q1 - q2) / (nu' q0 - q1).
"""

from __future__ import annotations

import numpy as np
from flint import arb, arb_mat

from .balls import ball_matrix, lambda_min_enclosure, scaled_mid_array
from .proof import NON_FINITE, Undecided


def gershgorin_margins(M: arb_mat, index: range) -> list[arb]:
    """h_i = M_ii - sum_{j in index, j != i} |M_ij| for i in index (the principal submatrix on index)."""
    out = []
    for i in index:
        total = arb(0)
        for j in index:
            if j != i:
                total += abs(M[i, j])
        out.append(M[i, i] - total)
    return out


def dense_blocks(E: arb_mat, D: list[arb_mat]) -> arb_mat:
    """Z = E (x) I_{m_y} + blockdiag(D_j), formed (dense case: small m m_y only)."""
    m, my = E.nrows(), D[0].nrows()
    Z = arb_mat(m * my, m * my)
    for i in range(m):
        for j in range(m):
            e = E[i, j]
            for a in range(my):
                Z[i * my + a, j * my + a] = e
    for j in range(m):
        Dj = D[j]
        for a in range(my):
            for b in range(my):
                Z[j * my + a, j * my + b] += Dj[a, b]
    return Z


def float_blocks(E: np.ndarray, D: np.ndarray) -> np.ndarray:
    m, my = E.shape[0], D.shape[1]
    Z = np.kron(E, np.eye(my))
    for j in range(m):
        Z[j * my : (j + 1) * my, j * my : (j + 1) * my] += D[j]
    return Z


def float_schur(E: np.ndarray, D: np.ndarray, k: int) -> np.ndarray | None:
    """The float64 T of the Schur bound (a helper to choose k and shifts; it decides nothing):
    None when some h_i <= 0."""
    m, my = E.shape[0], D.shape[1]
    if k >= m:
        return float_blocks(E, D)
    _, V = np.linalg.eigh(0.5 * (E + E.T))
    Et = V.T @ E @ V
    H = Et[k:, k:]
    h = np.diag(H) - (np.abs(H).sum(axis=1) - np.abs(np.diag(H)))
    if not np.all(h > 0):
        return None
    A1 = np.einsum("ja,jxy->axyj", V[:, :k], D).reshape(k * my * my, m)
    ZLH = (A1 @ V[:, k:]).reshape(k, my, my, m - k).transpose(0, 1, 3, 2).reshape(k * my, (m - k) * my)
    ZLH += np.kron(Et[:k, k:], np.eye(my))
    ZLL = (A1 @ V[:, :k]).reshape(k, my, my, k).transpose(0, 1, 3, 2).reshape(k * my, k * my)
    ZLL += np.kron(Et[:k, :k], np.eye(my))
    return ZLL - (ZLH / np.repeat(h, my)) @ ZLH.T


def _schur_T(E: arb_mat, D: list[arb_mat], k: int, count: int) -> arb_mat:
    """T of the module docstring in balls (Undecided when a margin h_i or V's nonsingularity is not proved)."""
    m, my = E.nrows(), D[0].nrows()
    Ef, _ = scaled_mid_array(E)
    if not np.all(np.isfinite(Ef)):
        raise Undecided(NON_FINITE)
    _, V = np.linalg.eigh(0.5 * (Ef + Ef.T))
    Vb = ball_matrix(V)
    Et = Vb.transpose() * (E * Vb)
    if count > 0 and not all(x > 0 for x in gershgorin_margins(Vb.transpose() * Vb, range(m))):
        raise Undecided("the float64 basis V is not proved nonsingular (Gershgorin on V^T V)")
    h = gershgorin_margins(Et, range(k, m))
    if not all(x > 0 for x in h):
        raise Undecided(f"Schur bound: E~_HH is not proved diagonally dominant after k = {k} directions")
    # A1[(a, alpha, beta), j] = V[j, a] D_j[alpha, beta]
    A1 = arb_mat(k * my * my, m)
    for j in range(m):
        Dj = D[j].entries()
        for a in range(k):
            v = Vb[j, a]
            row = a * my * my
            for t, x in enumerate(Dj):
                A1[row + t, j] = v * x
    VL, VH = arb_mat(m, k), arb_mat(m, m - k)
    for i in range(m):
        for a in range(k):
            VL[i, a] = Vb[i, a]
        for b in range(m - k):
            VH[i, b] = Vb[i, k + b]
    PLH, PLL = A1 * VH, A1 * VL
    ZLH, ZLH_scaled, ZLL = arb_mat(k * my, (m - k) * my), arb_mat(k * my, (m - k) * my), arb_mat(k * my, k * my)
    inv_h = [arb(1) / x for x in h]
    for a in range(k):
        for al in range(my):
            r = a * my + al
            base = (a * my + al) * my
            for b in range(m - k):
                for be in range(my):
                    x = PLH[base + be, b]
                    if al == be:
                        x += Et[a, k + b]
                    ZLH[r, b * my + be] = x
                    ZLH_scaled[r, b * my + be] = x * inv_h[b]
            for b in range(k):
                for be in range(my):
                    x = PLL[base + be, b]
                    if al == be:
                        x += Et[a, b]
                    ZLL[r, b * my + be] = x
    return ZLL - ZLH_scaled * ZLH.transpose()


def prove_inertia(E: arb_mat, D: list[arb_mat], k: int, count: int) -> arb:
    """A ball whose positive lower end proves that Z = E (x) I + blockdiag(D_j) (every D_j >= 0)
    has at most ``count`` (0: Z > 0, or 1) eigenvalues <= 0 (module docstring): lambda_min of T
    (count 0) or of Y^T T Y (count 1). Undecided when a step of the bound cannot be proved."""
    m = E.nrows()
    T = dense_blocks(E, D) if k >= m else _schur_T(E, D, k, count)
    if count == 0:
        return lambda_min_enclosure(T)
    n = T.nrows()
    if n < 2:
        return arb(1)  # a 1 x 1 T has at most one eigenvalue
    Tf, _ = scaled_mid_array(T)
    if not np.all(np.isfinite(Tf)):
        raise Undecided(NON_FINITE)
    _, vecs = np.linalg.eigh(0.5 * (Tf + Tf.T))
    Y = ball_matrix(vecs[:, 1:])
    return lambda_min_enclosure(Y.transpose() * T * Y)


def temple_lower(q0: arb, q1: arb, q2: arb, nu_shifted: arb) -> arb | None:
    """Lower bound of lambda_1 - sigma from q0 = x^T x, q1 = x^T (K - sigma) x, q2 = ||(K - sigma) x||^2,
    given lambda_2 - sigma >= nu_shifted (module docstring); None unless q1/q0 < nu_shifted is proved."""
    den = nu_shifted * q0 - q1
    if not den > 0:
        return None
    return (nu_shifted * q1 - q2) / den
