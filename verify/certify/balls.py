"""Ball-matrix helpers and rigorous enclosures of extremal eigenvalues of symmetric ball matrices."""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from flint import arb, arb_mat, ctx, fmpq, fmpq_mat

from .proof import NON_FINITE, Undecided


# ---- exact inputs and ball-matrix helpers -------------------------------------------------------
def ball_matrix(X: np.ndarray) -> arb_mat:
    """The float64 matrix as an arb_mat of exact balls (radius 0)."""
    X = np.asarray(X, dtype=np.float64)
    return arb_mat(X.tolist()) if X.size else arb_mat(*X.shape)


def rational_matrix(X: np.ndarray) -> fmpq_mat:
    X = np.asarray(X, dtype=np.float64)
    return fmpq_mat(X.shape[0], X.shape[1], [fmpq(*float(v).as_integer_ratio()) for v in X.ravel()])


def exact_gram(X: np.ndarray, Z: np.ndarray) -> arb_mat:
    """X Z^T computed exactly in rationals and rounded once to the working precision."""
    return arb_mat(rational_matrix(X) * rational_matrix(Z).transpose())


def ball_identity(n: int) -> arb_mat:
    return arb_mat(np.eye(n).tolist())


def mid_array(M: arb_mat) -> np.ndarray:
    """The midpoints as float64 (entries beyond float64's range become +-inf or 0: use
    :func:`scaled_mid_array` where the scale is not known to be moderate)."""
    return np.array([float(x) for x in M.mid().entries()]).reshape(M.nrows(), M.ncols())


def binary_exponent(M: arb_mat) -> int:
    """e with max_ij |mid M_ij| in [2^(e-1), 2^e) (0 for a zero matrix); Undecided if an entry
    is not finite."""
    e = None
    for x in M.entries():
        if not x.is_finite():
            raise Undecided(NON_FINITE)
        man, exp = x.mid().man_exp()
        if man != 0:
            top = int(exp) + int(abs(int(man))).bit_length()
            e = top if e is None else max(e, top)
    return 0 if e is None else e


def power_of_two(e: int) -> arb:
    """2^e, exact."""
    return arb(2) ** e


def scaled_mid_array(M: arb_mat) -> tuple[np.ndarray, int]:
    """(X, e) with mid(M) ~ 2^e X, |X| < 1, X in float64: the float64 helpers (eigh, Cholesky)
    work on X at every scale of M (an exact power of two in and out; entries below 2^(e-1074)
    relative to the largest are lost, as float64 would lose them anyway)."""
    e = binary_exponent(M)
    return mid_array(M * power_of_two(-e)), e


def ball_sum(xs) -> arb:
    total = arb(0)
    for x in xs:
        total += x
    return total


def frobenius_sq(M: arb_mat) -> arb:
    return ball_sum(x * x for x in M.entries())


def frobenius_inner(M: arb_mat, N: arb_mat) -> arb:
    """Frobenius inner product sum_ij M_ij N_ij."""
    return ball_sum(a * b for a, b in zip(M.entries(), N.entries()))


def ball_vec(M: arb_mat) -> arb_mat:
    """Column-major vec (docs/theory.md, section 4): vec(M)[i * rows + k] = M[k, i]."""
    r, c = M.nrows(), M.ncols()
    v = arb_mat(r * c, 1)
    for i in range(c):
        for k in range(r):
            v[i * r + k, 0] = M[k, i]
    return v


def ball_column(M: arb_mat, j: int) -> list[arb]:
    return [M[i, j] for i in range(M.nrows())]


# ---- eigenvalue enclosures -----------------------------------------------------------------------
def _rayleigh(M: arb_mat, v: arb_mat) -> arb:
    return (v.transpose() * (M * v))[0, 0] / (v.transpose() * v)[0, 0]


def _refine_eigenvector(M: arb_mat, Mf: np.ndarray, v0: np.ndarray, d0: float, bits: int) -> tuple[arb_mat, arb]:
    """Newton steps for the eigenpair (v, q) near (v0, d0): the residual r = M v - q v is formed at
    the working precision, the correction solves the bordered system [[M - d0 I, v0], [v0^T, 0]]
    [dv; dq] = [-r; 0] in float64 (well conditioned for an isolated eigenvalue), and v + dv is
    kept exact. Each step gains about the float64 accuracy, so bits / 40 steps reach ~2^-bits."""
    n = len(v0)
    bordered = np.zeros((n + 1, n + 1))
    bordered[:n, :n] = Mf - d0 * np.eye(n)
    bordered[:n, n] = v0
    bordered[n, :n] = v0
    lu = sla.lu_factor(bordered)
    Mm = M.mid()
    v = ball_matrix(v0[:, None])
    q = _rayleigh(Mm, v)
    for _ in range(bits // 40 + 1):
        r = (Mm * v - v * arb(q.mid())).mid()
        rf = np.array([float(x) for x in r.entries()])
        if not np.all(np.isfinite(rf)):
            break
        step = sla.lu_solve(lu, np.concatenate([-rf, [0.0]]))[:n]
        v = (v + ball_matrix(step[:, None])).mid()
        q = _rayleigh(Mm, v)
    return v, _rayleigh(M, v)


def _congruence_off_identity(BMB_e: list[arb], BB_e: list[arb], lo: arb, c: list[arb]) -> arb:
    """||N - I||_F^2 for N = diag(c) (BMB - lo BB) diag(c), entries given row-major."""
    n = len(c)
    total = arb(0)
    for i in range(n):
        ci = c[i]
        row = i * n
        for j in range(n):
            x = (BMB_e[row + j] - lo * BB_e[row + j]) * (ci * c[j])
            if i == j:
                x -= 1
            total += x * x
    return total


def lambda_min_enclosure(M: arb_mat) -> arb:
    """A ball containing the smallest eigenvalue of every symmetric matrix in the ball M.

    Upper end: the Rayleigh quotient of an exact approximate eigenvector (Courant-Fischer).
    Lower end: lo with M - lo I > 0, proved by congruence (module docstring); the shift gap
    delta = q - lo grows by 4x from the resolution of the ball until the proof succeeds. If it
    never does, the lower end falls back to the trivial -||M||_F (so an upper end below 0 still
    proves that M is not positive definite).
    """
    n = M.nrows()
    if n == 1:
        return M[0, 0]
    # the float64 eigenbasis is computed for 2^-e M (exact scaling), the result scaled back
    e = binary_exponent(M)
    if e != 0:
        return _lambda_min_unit(M * power_of_two(-e)) * power_of_two(e)
    return _lambda_min_unit(M)


def _lambda_min_unit(M: arb_mat) -> arb:
    """lambda_min_enclosure for max |mid M_ij| < 1."""
    n = M.nrows()
    bits = ctx.prec
    Mf = mid_array(M)
    Mf = 0.5 * (Mf + Mf.T)
    if not np.all(np.isfinite(Mf)):
        raise Undecided(NON_FINITE)
    d, V = np.linalg.eigh(Mf)
    v = ball_matrix(V[:, :1])
    q = _rayleigh(M, v)
    scale = float(np.abs(Mf).max()) or 1.0
    # Refine only an isolated eigenvalue; for a cluster the float64 basis limits the resolution.
    isolated = d[1] - d[0] > 2.0**-20 * scale
    if bits > 53 and isolated:
        v, q = _refine_eigenvector(M, Mf, V[:, 0], d[0], bits)
    resolution = 2.0**-bits if isolated else 2.0**-50
    hi = arb(q.upper())
    # basis = [v, the other float64 eigenvectors]; no re-orthogonalisation is needed: the cross
    # terms v^T (M - lo I) x_j = delta v^T x_j + r^T x_j are O(eps delta + |r|), small against
    # sqrt(delta gap_j), and float64 entries keep the products cheap
    vv = (v.transpose() * v)[0, 0]
    basis = arb_mat(n, n)
    for i in range(n):
        basis[i, 0] = v[i, 0]
        for j in range(1, n):
            basis[i, j] = float(V[i, j])
    # X = basis diag(c) gives X^T (M - lo I) X = diag(c) (basis^T M basis - lo basis^T basis) diag(c):
    # the two products are formed once, each trial shift costs O(n^2)
    BMB = basis.transpose() * (M * basis)
    BB = basis.transpose() * basis
    BMB_e, BB_e = BMB.entries(), BB.entries()
    # the smallest gap worth trying: the Rayleigh quotient's own radius and the resolution
    base = 2.0 * float(q.rad()) + n * resolution * scale
    q_mid = arb(q.mid())
    for k in range(12):
        delta = base * 4.0**k
        lo = (q_mid - arb(delta)).mid()  # exact; formed at the working precision, not in float64
        gaps = np.maximum(d[1:] - float(lo), delta)
        c = [arb(1.0 / np.sqrt(delta * float(vv)))] + [arb(1.0 / np.sqrt(x)) for x in gaps]
        if _congruence_off_identity(BMB_e, BB_e, lo, c) < 1:
            return lo.union(hi)
    return (-frobenius_sq(M).sqrt()).union(hi)


def lambda_max_enclosure(M: arb_mat) -> arb:
    """A ball containing the largest eigenvalue of every symmetric matrix in the ball M."""
    return -lambda_min_enclosure(-M)
