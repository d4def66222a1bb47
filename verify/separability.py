"""(Partial) linear separability of multiclass data, the question that decides whether the
cross-entropy optimum L* is attained (docs/theory.md, section 5).

A pair (k, i), k != y_i, is *strict* when some direction D (m_y x m) has

    (D_{y_i} - D_k) . phi_i > 0   while   (D_{y_j} - D_l) . phi_j >= 0 for every pair (l, j).

Write M for the matrix with one row per pair, (M D)_{(k, i)} = (D_{y_i} - D_k) . phi_i. The
directions form the cone C = {D : M D >= 0}, and by the Goldman-Tucker theorem of the
alternative the pairs split into the strict ones J and the always-tight ones I, with

    some D in C has (M D)_J > 0,   and   some y >= 0 with M^T y = 0 has y_I > 0, y_J = 0.

So there are two certificates, each checkable by a matrix product:

- *separable* (every pair strict): a W whose margins (W_{y_i} - W_k) . phi_i all exceed their
  rounding. Newton's method on the cross-entropy reaches one on separable data: once the loss
  of every sample is below log 2, p_{y_i} > 1/2 > p_k, i.e. every margin is positive.
- *non-separable* (no pair strict): y > 0 with M^T y = 0. At a minimiser W* of the
  cross-entropy the gradient is G Phi^T = 0 with G = softmax(W* Phi) - Y, so y_{(k, i)} =
  p_k(phi_i) > 0 is such a y (the equations M^T y = 0 are, class by class, Phi (-G)^T = 0).
  Newton's W* satisfies them up to its stopping tolerance; projecting -G onto {C : Phi C^T = 0}
  (each row minus its component in Phi's row space) makes them hold to rounding, and the
  certificate stands if every entry keeps its sign by more than the projection's rounding.

Only when neither certificate is found (partially separable data, or margins and probabilities
too close to zero for a certificate at rounding level) is the exact linear program
:func:`separability_lp` solved: its size is n (m_y - 1) rows of 2 m + 1 nonzeros, and HiGHS
needs tens of seconds at m = 64, m_y = 10, n = 2000 (measured: 25-70 s on 2 loaded cores),
where the certificates above cost a Newton solve (which L* needs anyway) and two products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sps
from scipy.optimize import linprog

EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class Separability:
    """Outcome of the linear-separability test for multiclass data.

    ``strict_pairs[k, i]`` is True when some direction D has (D_{y_i} - D_k) . phi_i > 0 while
    every other margin is >= 0: along D the cross-entropy term of that pair tends to 0, so L* is
    approached but not attained. ``status`` is "separable" (every pair strict: L* = 0, not
    attained), "partially separable" (some: L* not attained) or "non-separable" (none: attained).
    ``decided_by`` says how: "separating W" or "dual certificate" (see the module notes), or
    "linear program".
    """

    status: str
    strict_pairs: np.ndarray
    decided_by: str = "linear program"

    @property
    def attained(self) -> bool:
        return self.status == "non-separable"


def power_of_two_scale(x: float) -> float:
    """2^k with x / 2^k in [0.5, 1) (1 for x = 0): dividing by it is exact in float64."""
    if x == 0.0:
        return 1.0
    return float(np.ldexp(1.0, int(np.frexp(x)[1])))


def _pairs(labels: np.ndarray, m_y: int) -> np.ndarray:
    """The mask of the pairs (k, i), k != y_i, as an m_y x n boolean array."""
    return np.arange(m_y)[:, None] != labels[None, :]


def separating_certificate(Phi: np.ndarray, labels: np.ndarray, W: np.ndarray) -> bool:
    """Whether W separates every pair strictly: (W_{y_i} - W_k) . phi_i > 0 for all k != y_i,
    each margin larger than the rounding of its two dot products, gamma_{m+1} (|W_{y_i}| +
    |W_k|) . |phi_i| <= 2 gamma_{m+1} max_a |W_a| . |phi_i| (Higham, section 3.1)."""
    m, n = Phi.shape
    m_y = W.shape[0]
    if m_y < 2 or not np.all(np.isfinite(W)):
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        Q = W @ Phi
        true = Q[labels, np.arange(n)]
        rest = np.where(_pairs(labels, m_y), Q, -np.inf).max(axis=0)
        rounding = 2 * (m + 1) * EPS * (np.abs(W) @ np.abs(Phi)).max(axis=0) * 1.01
        return bool(np.all(true - rest > rounding))


def dual_certificate(Phi: np.ndarray, labels: np.ndarray, G: np.ndarray) -> bool:
    """Whether C = -G (G = softmax(W Phi) - Y at an approximate minimiser W) certifies that no
    pair is strict: C with each row projected onto the null space of Phi, C' = C (I - V V^T)
    (V an orthonormal basis of Phi's row space, by the SVD), satisfies Phi C'^T = 0 and keeps
    the columns' zero sums; C'[y_i, i] > 0 and C'[k, i] < 0 for k != y_i then make y = -C' on
    the pairs a positive solution of M^T y = 0. Each sign must hold by more than the rounding of
    C' (the SVD's basis and the two products: 8 (m + n) eps ||C_a||_2 for row a)."""
    m, n = Phi.shape
    m_y = G.shape[0]
    if not np.all(np.isfinite(G)):
        return False
    _, s, Vt = np.linalg.svd(Phi, full_matrices=False)
    rank = int(np.sum(s > s.max() * max(m, n) * EPS)) if s.size and s.max() > 0 else 0
    Vt = Vt[:rank]
    C = -G
    C = C - (C @ Vt.T) @ Vt
    rounding = 8 * (m + n) * EPS * np.sqrt(np.sum(G * G, axis=1))[:, None]
    sign = np.where(_pairs(labels, m_y), -1.0, 1.0)  # + on the true class, - on the others
    return bool(np.all(sign * C > rounding))


def separability_lp(Phi: np.ndarray, Y: np.ndarray) -> Separability:
    """Maximise sum t_ki over directions D with (D_{y_i} - D_k).phi_i >= t_ki, 0 <= t_ki <= 1.

    The directions form a convex cone closed under addition, so the LP optimum sets t_ki = 1 for
    every pair that some direction separates strictly: it finds the maximal set of strict pairs.

    D is free: the objective is bounded by the caps t <= 1 alone, and since the cone is closed
    under positive scaling every strict pair reaches t = 1, every other pair has t = 0. (A box on
    D would change that: with a box, maximising the sum can trade one pair's margin for another's,
    and a box of 1e6 against O(1) coefficients made HiGHS fail on ordinary data.)

    Scale: whether (D_{y_i} - D_k).phi_i > 0 is attainable does not change when a column phi_i is
    multiplied by a positive number, so each column is first divided by the power of two that
    brings its largest entry into [0.5, 1) (exact). The answer is then the same at every scale
    of Phi, and the LP's coefficients are O(1) whatever the data.

    Size: the constraint matrix has n (m_y - 1) rows and m m_y + n (m_y - 1) columns but only
    2 m + 1 nonzeros per row, so it is built and passed to HiGHS as a sparse matrix.
    """
    m, n = Phi.shape
    m_y = Y.shape[0]
    labels = np.argmax(Y, axis=0)
    if m_y < 2:
        return Separability("non-separable", np.zeros((m_y, n), dtype=bool))
    column_scale = np.array([power_of_two_scale(x) for x in np.abs(Phi).max(axis=0)])
    P = Phi / column_scale
    # pairs (k, i), k != y_i, sample-major (the order of the t variables)
    k_all = np.broadcast_to(np.arange(m_y), (n, m_y))
    keep = k_all != labels[:, None]
    pair_i = np.broadcast_to(np.arange(n)[:, None], (n, m_y))[keep]
    pair_k = k_all[keep]
    n_pairs = pair_i.size
    nd = m_y * m
    j = np.arange(m)
    rows = np.repeat(np.arange(n_pairs), 2 * m + 1)
    # per row: -phi_i on D[y_i, :], +phi_i on D[k, :] (D[a, j] at index a m + j), +1 on t_row
    cols = np.concatenate(
        [labels[pair_i][:, None] * m + j, pair_k[:, None] * m + j, (nd + np.arange(n_pairs))[:, None]], axis=1
    ).ravel()
    vals = np.concatenate([-P[:, pair_i].T, P[:, pair_i].T, np.ones((n_pairs, 1))], axis=1).ravel()
    A_ub = sps.csr_matrix((vals, (rows, cols)), shape=(n_pairs, nd + n_pairs))
    A_ub.sum_duplicates()  # k = y_i never occurs, but a zero column entry leaves an explicit zero
    A_ub.eliminate_zeros()
    bounds = [(None, None)] * nd + [(0.0, 1.0)] * n_pairs
    c = np.concatenate([np.zeros(nd), -np.ones(n_pairs)])
    # HiGHS's interior-point solver: its dual simplex (what method="highs" picks) returned
    # "Status 0: Not Set" after a minute at m = 64, m_y = 10, n = 2000, where IPM solves it in 30 s.
    # Any optimal point serves (every strict pair has t = 1 in all of them); simplex is the fallback.
    for method in ("highs-ipm", "highs-ds"):
        res = linprog(c, A_ub=A_ub, b_ub=np.zeros(n_pairs), bounds=bounds, method=method)
        if res.status == 0:
            break
    else:
        raise RuntimeError(f"separability LP failed: {res.message}")
    strict = np.zeros((m_y, n), dtype=bool)
    strict[pair_k, pair_i] = res.x[nd:] > 0.5
    n_strict = int(strict.sum())
    status = "non-separable" if n_strict == 0 else ("separable" if n_strict == n_pairs else "partially separable")
    return Separability(status, strict)


def certified(labels: np.ndarray, m_y: int, status: str) -> Separability:
    """The Separability of a certificate: no strict pair, or every pair strict."""
    pairs = _pairs(labels, m_y)
    return Separability(
        status,
        np.zeros_like(pairs) if status == "non-separable" else pairs,
        "dual certificate" if status == "non-separable" else "separating W",
    )
