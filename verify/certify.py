"""Certified verdicts: ball-arithmetic proofs of the finite claims at concrete instances.

Every other verdict of the suite is a float64 comparison with a tolerance. The claims below are
finite statements about one instance (A, B, Phi, Y, gamma); here they are decided in Arb ball
arithmetic (python-flint). Every real quantity is a ball [mid +- rad] that provably contains the
exact value, so an inequality that holds for every point of its balls is a proof for that
instance -- not a proof of the theorem, which quantifies over all instances.

Claims with certificates (THEORY.md notation):

    NAIVE-BOUND-FALSE  lambda(A) < 1/(1+gamma)^2 at the concentrated A (A[0, :] = 50, rest 0)
    UNIFORM-RATE       lambda(A) >= 1/(1+gamma sqrt m)^2, i.e. ||U||_2 <= 1 + gamma sqrt m
    STATE-WISE         ||dL/dA||^2 + ||dL/dB||^2 >= 2 kappa lambda(A) (L - L*)    (square loss)
    ENERGY             vec(dW/dt) = -K g,  dL/dt = -||dL/dA||^2 - ||dL/dB||^2 = -g^T K g,
                       K >= lambda(A) I,  -dL/dt >= lambda(A) ||g||^2
    TRUST-REGION       KKT of  min g^T v + 1/2 v^T H v  s.t.  v^T G v <= delta^2  at v = -dt K g:
                       G = K^{-1}/dt - H > 0, H + G > 0, (H + 1 G) v + g = 0, radius, step bound

Verdicts (``Certificate.status``):

    certified      every inequality and positive-definiteness claim holds for every point of
                   its balls, and every equation's residual ball contains 0 and is narrower than
                   EQUATION_RTOL times the size of its terms (ball arithmetic cannot prove an
                   equation between irrational numbers; it can refute one, and it bounds how
                   large an undetected deviation could be);
    violated       some claim fails for every point of its balls: a certified counterexample;
    not certified  undecided at every precision in PRECISIONS; the reason names the items.
                   Never a pass.

Independence. Nothing here calls the float64 core (verify.model, gradients, dynamics,
convergence, trust_region). The softmax, U, W = B U^{-1}, the implicit gradients, W*, kappa, K,
the Hessian H and the KKT system are recomputed from their definitions (THEORY.md sections 1-6).
The float64 inputs are dyadic rationals and enter as balls of radius 0; the sums over samples
(Phi Phi^T, Y Phi^T, Phi^T Phi) are formed exactly in rationals (fmpq_mat) and rounded once.

Eigenvalue enclosures (:func:`lambda_min_enclosure`). For a symmetric ball matrix M the smallest
eigenvalue is enclosed from both sides:
  upper  the Rayleigh quotient v^T M v / v^T v of any exact vector v (Courant-Fischer);
  lower  M - lo I > 0, proved by congruence: for an exact X, if N = X^T (M - lo I) X satisfies
         ||N - I||_F < 1 then N > 0, so X is nonsingular and M - lo I > 0 (Sylvester's law of
         inertia). X is an approximate inverse square root built from a float64 eigenbasis,
         with the extremal eigenvector refined by inverse iteration at the working precision.
This handles multiple eigenvalues elsewhere in the spectrum (the concentrated A has an
eigenvalue 1 of multiplicity m - 2), costs a few ball matrix products, and the enclosure width
shrinks with the precision. flint's acb_mat.eig (a different rigorous method) is used in the tests
as a cross-check; it is too slow for the 320 x 320 metric K.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cached_property, reduce
from typing import Callable

import numpy as np
import scipy.linalg as sla
from flint import arb, arb_mat, ctx, fmpq, fmpq_mat

#: Working precisions in bits, tried in turn until the verdict is decided.
PRECISIONS = (53, 106, 212, 424)

#: An equation counts as contained only if its residual ball is narrower than this times the size
#: of its terms: any relative deviation above ~1e-9 would then have been detected (refuted).
EQUATION_RTOL = 2.0 ** -30

CERTIFIED, VIOLATED, NOT_CERTIFIED = "certified", "violated", "not certified"
PROVED, CONTAINED, FAILED, UNDECIDED = "proved", "contained", "violated", "undecided"

CLAIMS = ("NAIVE-BOUND-FALSE", "UNIFORM-RATE", "STATE-WISE", "ENERGY", "TRUST-REGION")


class _Undecided(Exception):
    """A step that cannot be carried out at this precision (e.g. a ball matrix that is not
    certainly invertible); the certificate is undecided there and the precision is raised."""


# ---- records ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Enclosure:
    """[lo, hi] in float64, rounded outwards from the ball, and the ball as Arb prints it."""

    lo: float
    hi: float
    text: str
    #: the ball's midpoint (rounded to float64) and radius
    mid: float
    rad: float
    #: 2 rad / |mid| from the ball itself (float64 endpoints cannot show widths below ~1e-16)
    rel_width: float

    @classmethod
    def of(cls, x: arb) -> "Enclosure":
        if not x.is_finite():
            return cls(-np.inf, np.inf, x.str(radius=True), float("nan"), np.inf, np.inf)
        # float() rounds to nearest; one more ulp outwards keeps the interval an enclosure
        lo = float(np.nextafter(float(x.lower()), -np.inf))
        hi = float(np.nextafter(float(x.upper()), np.inf))
        mid, rad = float(x.mid()), float(x.rad())
        rel = 2 * rad / abs(mid) if mid != 0 else (0.0 if rad == 0 else np.inf)
        return cls(lo, hi, x.str(radius=True), mid, rad, rel)

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi

    def as_dict(self) -> dict:
        return {"lo": self.lo, "hi": self.hi, "mid": self.mid, "rad": self.rad, "ball": self.text,
                "rel_width": self.rel_width}


@dataclass
class Item:
    """One statement of a certificate: an inequality, a positive-definiteness claim or an
    equation; ``margin`` encloses lhs - rhs, lambda_min, or the residual farthest from 0."""

    statement: str
    kind: str
    status: str
    margin: Enclosure | None = None
    detail: str = ""

    def as_dict(self) -> dict:
        return {"statement": self.statement, "kind": self.kind, "status": self.status,
                "margin": None if self.margin is None else self.margin.as_dict(), "detail": self.detail}


@dataclass
class Certificate:
    """The verdict on one claim at one instance, at the precision that decided it (``bits``)."""

    claim: str
    instance: dict
    status: str = NOT_CERTIFIED
    bits: int = 0
    items: list[Item] = field(default_factory=list)
    enclosures: dict[str, Enclosure] = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0
    #: the raw balls (arb / arb_mat) for tests; not serialised
    balls: dict = field(default_factory=dict, repr=False)
    #: True at the last precision tried: no early exit, every item is evaluated for the report
    final: bool = field(default=True, repr=False)

    def give_up_early(self, item: Item) -> None:
        """Below the last precision, stop at an undecided equation (the costly items after it
        cannot make the certificate pass at this precision) and raise the precision."""
        if item.status == UNDECIDED and not self.final:
            raise _Undecided(f"{item.statement}: {item.detail}; raising the precision")

    @property
    def max_rel_width(self) -> float:
        return max((e.rel_width for e in self.enclosures.values()), default=0.0)

    def as_dict(self) -> dict:
        return {"claim": self.claim, "instance": self.instance, "status": self.status, "bits": self.bits,
                "seconds": self.seconds, "reason": self.reason, "max_rel_width": self.max_rel_width,
                "items": [it.as_dict() for it in self.items],
                "enclosures": {k: v.as_dict() for k, v in self.enclosures.items()}}


def _inequality(statement: str, diff: arb, detail: str = "") -> Item:
    """The claim lhs > rhs (or >=) with diff = lhs - rhs: proved iff diff > 0 on the whole ball,
    violated iff diff < 0 on the whole ball."""
    status = PROVED if diff > 0 else FAILED if diff < 0 else UNDECIDED
    return Item(statement, "inequality", status, Enclosure.of(diff), detail)


def _positive_definite(statement: str, lam_min: arb, detail: str = "") -> Item:
    """M > 0 from an enclosure of lambda_min(M) (lower end from a congruence proof)."""
    status = PROVED if lam_min > 0 else FAILED if lam_min < 0 else UNDECIDED
    return Item(statement, "positive definite", status, Enclosure.of(lam_min), detail)


def _equation(statement: str, residuals: list[arb], scale: float) -> Item:
    """lhs = rhs componentwise with residuals = lhs - rhs: violated if some residual ball excludes
    0; contained if every ball holds 0 and the widest radius is <= EQUATION_RTOL * scale."""
    worst = max(residuals, key=lambda r: float(r.abs_upper()))
    for r in residuals:
        if not r.contains(0):
            return Item(statement, "equation", FAILED, Enclosure.of(r), "a residual ball excludes 0")
    rad = max(float(r.rad()) for r in residuals)
    ok = rad <= EQUATION_RTOL * scale
    detail = f"residual radius {rad:.2e} vs size of terms {scale:.2e}"
    return Item(statement, "equation", CONTAINED if ok else UNDECIDED, Enclosure.of(worst),
                detail if ok else detail + ": enclosure too wide to test the equation")


def _verdict(items: list[Item]) -> str:
    if any(it.status == FAILED for it in items):
        return VIOLATED
    if items and all(it.status in (PROVED, CONTAINED) for it in items):
        return CERTIFIED
    return NOT_CERTIFIED


def _run(claim: str, instance: dict, compute: Callable[[Certificate], None],
         precisions: tuple[int, ...] = PRECISIONS) -> Certificate:
    """Run ``compute`` at each precision until the verdict is decided (certified or violated)."""
    t0 = time.perf_counter()
    for bits in precisions:
        cert = Certificate(claim, dict(instance), bits=bits, final=bits == precisions[-1])
        with ctx.workprec(bits):
            try:
                compute(cert)
            except _Undecided as err:
                cert.items.append(Item("computation", "step", UNDECIDED, None, str(err)))
            except ZeroDivisionError as err:  # a ball matrix that is not certainly invertible
                cert.items.append(Item("computation", "step", UNDECIDED, None, f"singular ball: {err}"))
        cert.status = _verdict(cert.items)
        if cert.status != NOT_CERTIFIED:
            break
    cert.seconds = time.perf_counter() - t0
    bad = [it for it in cert.items if it.status == (FAILED if cert.status == VIOLATED else UNDECIDED)]
    if cert.status == VIOLATED:
        cert.reason = "certified violation: " + "; ".join(f"{it.statement} (margin {it.margin.text if it.margin else '?'})"
                                                         for it in bad)
    elif cert.status == NOT_CERTIFIED:
        cert.reason = (f"undecided at every precision up to {cert.bits} bits: "
                       + "; ".join(f"{it.statement}: {it.detail or 'the ball straddles the bound'}"
                                   + (f" (margin {it.margin.text})" if it.margin else "") for it in bad))
    return cert


# ---- exact inputs and ball-matrix helpers -------------------------------------------------------
def _ball_matrix(X: np.ndarray) -> arb_mat:
    """The float64 matrix as an arb_mat of exact balls (radius 0)."""
    X = np.asarray(X, dtype=np.float64)
    return arb_mat(X.tolist()) if X.size else arb_mat(*X.shape)


def _rational_matrix(X: np.ndarray) -> fmpq_mat:
    X = np.asarray(X, dtype=np.float64)
    return fmpq_mat(X.shape[0], X.shape[1], [fmpq(*float(v).as_integer_ratio()) for v in X.ravel()])


def _exact_gram(X: np.ndarray, Z: np.ndarray) -> arb_mat:
    """X Z^T computed exactly in rationals and rounded once to the working precision."""
    return arb_mat(_rational_matrix(X) * _rational_matrix(Z).transpose())


def _identity(n: int) -> arb_mat:
    return arb_mat(np.eye(n).tolist())


def _mid_array(M: arb_mat) -> np.ndarray:
    return np.array([float(x) for x in M.mid().entries()]).reshape(M.nrows(), M.ncols())


def _max_rad(M: arb_mat) -> float:
    return max((float(x.rad()) for x in M.entries()), default=0.0)


def _sum(xs) -> arb:
    total = arb(0)
    for x in xs:
        total += x
    return total


def _frobenius_sq(M: arb_mat) -> arb:
    return _sum(x * x for x in M.entries())


def _inner(M: arb_mat, N: arb_mat) -> arb:
    """Frobenius inner product sum_ij M_ij N_ij."""
    return _sum(a * b for a, b in zip(M.entries(), N.entries()))


def _diagonal(values) -> arb_mat:
    D = arb_mat(len(values), len(values))
    for i, v in enumerate(values):
        D[i, i] = v
    return D


def _vec(M: arb_mat) -> arb_mat:
    """Column-major vec (THEORY.md section 4): vec(M)[i * rows + k] = M[k, i]."""
    r, c = M.nrows(), M.ncols()
    v = arb_mat(r * c, 1)
    for i in range(c):
        for k in range(r):
            v[i * r + k, 0] = M[k, i]
    return v


def _column(M: arb_mat, j: int) -> list[arb]:
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
    v = _ball_matrix(v0[:, None])
    q = _rayleigh(Mm, v)
    for _ in range(bits // 40 + 1):
        r = (Mm * v - v * arb(q.mid())).mid()
        rf = np.array([float(x) for x in r.entries()])
        if not np.all(np.isfinite(rf)):
            break
        step = sla.lu_solve(lu, np.concatenate([-rf, [0.0]]))[:n]
        v = (v + _ball_matrix(step[:, None])).mid()
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
    bits = ctx.prec
    Mf = _mid_array(M)
    Mf = 0.5 * (Mf + Mf.T)
    if not np.all(np.isfinite(Mf)):
        raise _Undecided("non-finite matrix entries")
    d, V = np.linalg.eigh(Mf)
    v = _ball_matrix(V[:, :1])
    q = _rayleigh(M, v)
    scale = float(np.abs(Mf).max()) or 1.0
    # Refine only an isolated eigenvalue; for a cluster the float64 basis limits the resolution.
    isolated = d[1] - d[0] > 2.0 ** -20 * scale
    if bits > 53 and isolated:
        v, q = _refine_eigenvector(M, Mf, V[:, 0], d[0], bits)
    resolution = 2.0 ** -bits if isolated else 2.0 ** -50
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
        delta = base * 4.0 ** k
        lo = (q_mid - arb(delta)).mid()  # exact; formed at the working precision, not in float64
        gaps = np.maximum(d[1:] - float(lo), delta)
        c = [arb(1.0 / np.sqrt(delta * float(vv)))] + [arb(1.0 / np.sqrt(x)) for x in gaps]
        if _congruence_off_identity(BMB_e, BB_e, lo, c) < 1:
            return lo.union(hi)
    return (-_frobenius_sq(M).sqrt()).union(hi)


def lambda_max_enclosure(M: arb_mat) -> arb:
    """A ball containing the largest eigenvalue of every symmetric matrix in the ball M."""
    return -lambda_min_enclosure(-M)


# ---- the model in ball arithmetic (THEORY.md sections 1 and 3) ----------------------------------
def column_softmax_ball(A: np.ndarray) -> arb_mat:
    """S = sigma(A), S_ij = exp(A_ij) / sum_k exp(A_kj) (no shift needed: Arb exponents are
    unbounded)."""
    m = A.shape[0]
    S = arb_mat(m, m)
    for j in range(m):
        e = [arb(float(A[i, j])).exp() for i in range(m)]
        total = _sum(e)
        for i in range(m):
            S[i, j] = e[i] / total
    return S


def _apply_jacobians(S: arb_mat, X: arb_mat) -> arb_mat:
    """Column j of the result is J_j X[:, j], J_j = diag(s_j) - s_j s_j^T (softmax Jacobian)."""
    m = S.nrows()
    out = arb_mat(m, X.ncols())
    for j in range(X.ncols()):
        s = _column(S, j)
        x = _column(X, j)
        dot = _sum(a * b for a, b in zip(s, x))
        for i in range(m):
            out[i, j] = s[i] * (x[i] - dot)
    return out


def implicit_matrix_ball(A: np.ndarray, gamma: float) -> tuple[arb_mat, arb_mat]:
    """(S, U) with U = I - gamma S."""
    S = column_softmax_ball(A)
    return S, _identity(A.shape[0]) - S * arb(gamma)


def _norm_sq_enclosure(U: arb_mat) -> arb:
    """||U||_2^2 = lambda_max(U^T U)."""
    return lambda_max_enclosure(U.transpose() * U)


class _State:
    """W, the implicit gradients and the excess loss of the square loss at (A, B), from the
    definitions (THEORY.md sections 1, 3, 5), in ball arithmetic at the working precision."""

    def __init__(self, A, B, Phi, Y, gamma):
        self.gamma = arb(gamma)
        self.m, self.m_y, self.n = A.shape[0], B.shape[0], Phi.shape[1]
        self.S, self.U = implicit_matrix_ball(A, gamma)
        self.Uinv = self.U.inv()  # ZeroDivisionError if the ball is not certainly invertible
        self.B = _ball_matrix(B)
        self.W = self.B * self.Uinv                       # W = B U^{-1}
        self.P = _exact_gram(Phi, Phi)                    # Phi Phi^T
        self.YPt = _exact_gram(Y, Phi)                    # Y Phi^T
        self.grad_L0 = self.W * self.P - self.YPt         # G Phi^T = (W Phi - Y) Phi^T
        self.dL_dB = self.grad_L0 * self.Uinv.transpose()  # grad L0 U^{-T}
        Gamma = self.W.transpose() * self.dL_dB * self.gamma  # dL/dS = gamma W^T dL/dB
        self.dL_dA = _apply_jacobians(self.S, Gamma)      # dL/dA[:, j] = J_j Gamma[:, j]
        self.grad_norm_sq = _frobenius_sq(self.dL_dA) + _frobenius_sq(self.dL_dB)
        self._Phi, self._Y = Phi, Y

    def rate(self) -> arb:
        """lambda(A) = 1 / ||U||_2^2."""
        return arb(1) / _norm_sq_enclosure(self.U)

    def kappa(self) -> tuple[arb, str]:
        """kappa = the smallest NONZERO eigenvalue of Phi Phi^T.

        m <= n: kappa = lambda_min(Phi Phi^T), and its enclosure's lower end > 0 proves Phi Phi^T > 0.
        m > n: Phi Phi^T is singular; its nonzero eigenvalues are those of Phi^T Phi (n x n; the
        same nonzero spectrum with multiplicities), and a positive lower end proves Phi^T Phi > 0,
        so rank Phi = n and kappa = lambda_min(Phi^T Phi). Rank-deficient data (rank < min(m, n))
        leave a ball around 0: no positive lower bound, not certified.
        """
        if self.m <= self.n:
            return lambda_min_enclosure(self.P), "lambda_min(Phi Phi^T)"
        return lambda_min_enclosure(self.gram_n), "lambda_min(Phi^T Phi): m > n, same nonzero spectrum"

    @cached_property
    def gram_n(self) -> arb_mat:
        """Phi^T Phi (n x n), exact then rounded once."""
        return _exact_gram(self._Phi.T, self._Phi.T)

    def minimiser(self) -> arb_mat:
        """A minimiser W* of L0: Y Phi^T (Phi Phi^T)^{-1} (m <= n), or Y (Phi^T Phi)^{-1} Phi^T (m > n,
        interpolating: W* Phi = Y, L* = 0); rigorous solves (ZeroDivisionError if not certainly
        invertible)."""
        if self.m <= self.n:
            return self.P.solve(self.YPt.transpose()).transpose()
        return _ball_matrix(self._Y) * self.gram_n.solve(_ball_matrix(self._Phi.T))

    def excess(self, W_star: arb_mat) -> arb:
        """L - L* = 1/2 ||(W - W*) Phi||_F^2 = 1/2 <D Phi Phi^T, D>, D = W - W* (no cancellation)."""
        D = self.W - W_star
        return _inner(D * self.P, D) / 2

    def metric(self, second_term_scale: float = 1.0) -> arb_mat:
        """K = (U^{-T} U^{-1}) (x) I_{m_y} + gamma^2 sum_j (U^{-T} e_j e_j^T U^{-1}) (x) (W J_j^2 W^T),
        column-major vec; row (i, k) of K is index i m_y + k. ``second_term_scale`` != 1 builds a
        WRONG K (tests only)."""
        m, m_y = self.m, self.m_y
        Q = self.Uinv.transpose() * self.Uinv
        # N_j = (W J_j)(W J_j)^T = W J_j^2 W^T, stored as rows vec(N_j) of an m x m_y^2 matrix
        Nmat = arb_mat(m, m_y * m_y)
        for j in range(m):
            s = _column(self.S, j)
            Ws = self.W * arb_mat([[x] for x in s])  # W s_j
            V = arb_mat(m_y, m)  # W J_j = W diag(s_j) - (W s_j) s_j^T
            for k in range(m_y):
                for i in range(m):
                    V[k, i] = (self.W[k, i] - Ws[k, 0]) * s[i]
            N = V * V.transpose()
            for k in range(m_y):
                for kk in range(m_y):
                    Nmat[j, k * m_y + kk] = N[k, kk]
        # Pm[(i, i'), j] = a_j[i] a_j[i'] with a_j = U^{-T} e_j, i.e. a_j[i] = U^{-1}[j, i]
        Pm = arb_mat(m * m, m)
        for j in range(m):
            a = [self.Uinv[j, i] for i in range(m)]
            for i in range(m):
                for ii in range(m):
                    Pm[i * m + ii, j] = a[i] * a[ii]
        blocks = (Pm * Nmat) * (self.gamma * self.gamma * arb(second_term_scale))
        K = arb_mat(m * m_y, m * m_y)
        for i in range(m):
            for ii in range(m):
                q = Q[i, ii]
                r = i * m + ii
                for k in range(m_y):
                    for kk in range(m_y):
                        b = blocks[r, k * m_y + kk]
                        K[i * m_y + k, ii * m_y + kk] = b + q if k == kk else b
        return K

    def hessian(self) -> arb_mat:
        """H = (Phi Phi^T) (x) I_{m_y}, the Hessian of L0 in vec(W) (square loss)."""
        m, m_y = self.m, self.m_y
        H = arb_mat(m * m_y, m * m_y)
        for i in range(m):
            for ii in range(m):
                for k in range(m_y):
                    H[i * m_y + k, ii * m_y + k] = self.P[i, ii]
        return H


# ---- the certificates ---------------------------------------------------------------------------
def concentrated_instance(m: int, logit_gap: float = 50.0) -> np.ndarray:
    """A[0, :] = logit_gap, the rest 0: every softmax column sits near e_1 (THEORY.md section 4)."""
    A = np.zeros((m, m))
    A[0, :] = logit_gap
    return A


def _rate_enclosures(cert: Certificate, A: np.ndarray, gamma: float) -> tuple[arb, arb]:
    S, U = implicit_matrix_ball(A, gamma)
    norm_sq = _norm_sq_enclosure(U)
    lam = arb(1) / norm_sq
    m = A.shape[0]
    # the cheap bound ||U||_2 <= sqrt(||U||_1 ||U||_inf), for comparison
    absU = [[abs(U[i, j]) for j in range(m)] for i in range(m)]
    norm1 = reduce(arb.max, (_sum(absU[i][j] for i in range(m)) for j in range(m)))
    norm_inf = reduce(arb.max, (_sum(row) for row in absU))
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
        lam, _ = _rate_enclosures(cert, A, gamma)
        g = arb(gamma)
        naive = arb(1) / ((1 + g) ** 2)
        uniform = arb(1) / ((1 + g * arb(m).sqrt()) ** 2)
        cert.enclosures["1/(1+gamma)^2"] = Enclosure.of(naive)
        cert.enclosures["1/(1+gamma sqrt m)^2"] = Enclosure.of(uniform)
        cert.items.append(_inequality("lambda(A) < 1/(1+gamma)^2", naive - lam))
        cert.items.append(_inequality("lambda(A) >= 1/(1+gamma sqrt m)^2", lam - uniform))

    return _run("NAIVE-BOUND-FALSE", {"m": m, "gamma": gamma, "A": f"concentrated (A[0,:] = {logit_gap:g})"},
                compute, precisions)


def certify_uniform_rate(A: np.ndarray, gamma: float, *, bound_factor: float = 1.0, instance: dict | None = None,
                         precisions: tuple[int, ...] = PRECISIONS) -> Certificate:
    """lambda(A) >= 1/(1+gamma sqrt m)^2, from the rigorous upper bound ||U||_2^2 <= hi(lambda_max(U^T U)).

    ``bound_factor`` multiplies the bound (a false claim when > lambda(A) (1 + gamma sqrt m)^2;
    tests only)."""
    A = np.asarray(A, dtype=np.float64)
    m = A.shape[0]

    def compute(cert):
        lam, _ = _rate_enclosures(cert, A, gamma)
        bound = arb(bound_factor) / ((1 + arb(gamma) * arb(m).sqrt()) ** 2)
        cert.enclosures["bound"] = Enclosure.of(bound)
        cert.items.append(_inequality("lambda(A) >= 1/(1+gamma sqrt m)^2" + (f" x {bound_factor!r}" if bound_factor != 1 else ""),
                                      lam - bound))

    inst = dict(instance or {"m": m, "gamma": gamma})
    if bound_factor != 1:
        inst["bound_factor"] = bound_factor
    return _run("UNIFORM-RATE", inst, compute, precisions)


def _state_instance(A, B, Phi, Y, gamma, instance):
    return dict(instance or {"m": A.shape[0], "m_y": B.shape[0], "n": Phi.shape[1], "gamma": gamma})


def certify_state_wise(A, B, Phi, Y, gamma: float, *, kappa_factor: float = 1.0, instance: dict | None = None,
                       precisions: tuple[int, ...] = PRECISIONS) -> Certificate:
    """||dL/dA||^2 + ||dL/dB||^2 >= 2 kappa lambda(A) (L - L*) (square loss), with every quantity
    enclosed; the inequality is proved for every kappa in its enclosure (so for the true one).

    ``kappa_factor`` multiplies kappa (a false claim when large enough; tests only).
    """
    A, B, Phi, Y = (np.asarray(x, dtype=np.float64) for x in (A, B, Phi, Y))

    def compute(cert):
        st = _State(A, B, Phi, Y, gamma)
        lam = st.rate()
        kappa, route = st.kappa()
        cert.items.append(_positive_definite(f"kappa > 0, kappa = {route}", kappa))
        cert.enclosures["kappa"] = Enclosure.of(kappa)
        W_star = st.minimiser()
        excess = st.excess(W_star)
        rhs = 2 * kappa * arb(kappa_factor) * lam * excess
        cert.items.append(_inequality("||dL/dA||^2 + ||dL/dB||^2 >= 2 kappa lambda(A) (L - L*)"
                                      + (f" with kappa x {kappa_factor!r}" if kappa_factor != 1 else ""),
                                      st.grad_norm_sq - rhs))
        cert.enclosures.update({"||dL/dA||^2 + ||dL/dB||^2": Enclosure.of(st.grad_norm_sq), "lambda(A)": Enclosure.of(lam),
                                "L - L*": Enclosure.of(excess), "2 kappa lambda (L - L*)": Enclosure.of(rhs)})
        if rhs > 0:
            cert.enclosures["ratio"] = Enclosure.of(st.grad_norm_sq / rhs)
        cert.balls.update(dL_dA=st.dL_dA, dL_dB=st.dL_dB, W=st.W, W_star=W_star, kappa=kappa, lam=lam,
                          excess=excess, grad_norm_sq=st.grad_norm_sq)

    inst = _state_instance(A, B, Phi, Y, gamma, instance)
    if kappa_factor != 1:
        inst["kappa_factor"] = kappa_factor
    return _run("STATE-WISE", inst, compute, precisions)


def _scale(*matrices: arb_mat) -> float:
    return max(max((float(x.abs_upper()) for x in M.entries()), default=0.0) for M in matrices) or 1.0


def certify_energy(A, B, Phi, Y, gamma: float, *, second_term_scale: float = 1.0, instance: dict | None = None,
                   precisions: tuple[int, ...] = PRECISIONS) -> Certificate:
    """Energy identity and rate (THEORY.md section 4) at one state of the square loss:

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
        st = _State(A, B, Phi, Y, gamma)
        lam = st.rate()
        K = st.metric(second_term_scale)
        g = _vec(st.grad_L0)
        Kg = K * g
        gKg = (g.transpose() * Kg)[0, 0]
        # forward-mode derivative of W = B U^{-1} along (dA, dB) = (-dL/dA, -dL/dB):
        # dS_j = J_j dA_j, dU = -gamma dS, d(U^{-1}) = -U^{-1} dU U^{-1}
        dS = _apply_jacobians(st.S, -st.dL_dA)
        dUinv = st.Uinv * dS * st.Uinv * st.gamma
        dW = -st.dL_dB * st.Uinv + st.B * dUinv
        dL_dt = _inner(st.grad_L0, dW)
        lam_K = lambda_min_enclosure(K)
        g_sq = _frobenius_sq(st.grad_L0)
        energy_scale = float(st.grad_norm_sq.abs_upper())
        cert.items.append(_equation("vec(dW/dt) = -K g", list((_vec(dW) + Kg).entries()), _scale(Kg)))
        cert.items.append(_equation("dL/dt = -(||dL/dA||^2 + ||dL/dB||^2)", [dL_dt + st.grad_norm_sq], energy_scale))
        cert.items.append(_equation("dL/dt = -g^T K g", [dL_dt + gKg], energy_scale))
        cert.items.append(_inequality("K >= lambda(A) I  (lambda_min(K) - lambda(A))", lam_K - lam))
        cert.items.append(_inequality("-dL/dt >= lambda(A) ||g||^2", -dL_dt - lam * g_sq))
        cert.enclosures.update({"lambda(A)": Enclosure.of(lam), "lambda_min(K)": Enclosure.of(lam_K),
                                "-dL/dt": Enclosure.of(-dL_dt), "g^T K g": Enclosure.of(gKg),
                                "||dL/dA||^2 + ||dL/dB||^2": Enclosure.of(st.grad_norm_sq)})
        cert.balls.update(K=K, g=g, lam=lam, lam_K=lam_K, dW=dW, dL_dt=dL_dt)

    inst = _state_instance(A, B, Phi, Y, gamma, instance)
    if second_term_scale != 1:
        inst["second_term_scale"] = second_term_scale
    return _run("ENERGY", inst, compute, precisions)


#: the admissible-step items test G_dt at dt = (1 -+ STEP_BOUND_GAP) / lambda_max(K^{1/2} H K^{1/2})
STEP_BOUND_GAP = 2.0 ** -6


def certify_trust_region(A, B, Phi, Y, gamma: float, *, dt_factor: float = 0.5, multiplier: float = 1.0,
                         instance: dict | None = None, precisions: tuple[int, ...] = PRECISIONS) -> Certificate:
    """KKT conditions of the shallow trust-region subproblem (THEORY.md section 6) at the Euler
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
        st = _State(A, B, Phi, Y, gamma)
        K = st.metric()
        H = st.hessian()
        g = _vec(st.grad_L0)
        # float estimate of the step bound 1 / lambda_max(K^{1/2} H K^{1/2}) = 1 / lambda_max(L^T H L), K = L L^T
        Kf, Hf = _mid_array(K), _mid_array(H)
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
        stationarity = _equation(f"(H + {multiplier!r} G) v + g = 0 at v = -dt K g", list(residual.entries()), _scale(g))
        cert.items.append(stationarity)
        cert.give_up_early(stationarity)
        v_kkt = HG.solve(-g)                             # the exact KKT point, rigorously enclosed
        delta_sq = (v.transpose() * G * v)[0, 0]
        radius_kkt = (v_kkt.transpose() * G * v_kkt)[0, 0]
        cert.items.append(_inequality("delta = ||v||_G > 0", delta_sq))
        cert.items.append(_equation("||v_KKT||_G^2 = delta^2", [radius_kkt - delta_sq], float(delta_sq.abs_upper())))
        lam_G = lambda_min_enclosure(G)
        lam_HG = lambda_min_enclosure(HG)
        cert.items.append(_positive_definite("G = K^{-1}/dt - H > 0", lam_G))
        cert.items.append(_positive_definite(f"H + {multiplier!r} G > 0", lam_HG))
        # the admissible step bound, which depends on H
        lam_below = lambda_min_enclosure(metric_G(float((1 - STEP_BOUND_GAP) * dt_max)))
        x = _ball_matrix(Lc @ vecs[:, -1:])
        above = (x.transpose() * metric_G(float((1 + STEP_BOUND_GAP) * dt_max)) * x)[0, 0]
        cert.items.append(_positive_definite("G_dt > 0 at dt = (1 - 2^-6) dt_max", lam_below))
        cert.items.append(_inequality("x^T G_dt x < 0 at dt = (1 + 2^-6) dt_max", -above))
        cert.enclosures.update({"lambda_min(G)": Enclosure.of(lam_G), "lambda_min(H + mu G)": Enclosure.of(lam_HG),
                                "delta^2": Enclosure.of(delta_sq), "||v_KKT||_G^2": Enclosure.of(radius_kkt)})
        cert.instance["dt"] = dt
        cert.balls.update(K=K, H=H, G=G, v=v, v_kkt=v_kkt, residual=residual, g=g)

    inst = _state_instance(A, B, Phi, Y, gamma, instance)
    if dt_factor != 0.5:
        inst["dt_factor"] = dt_factor
    if multiplier != 1:
        inst["multiplier"] = multiplier
    return _run("TRUST-REGION", inst, compute, precisions)


# ---- the default plan and the command line (`python -m verify --certify`) -----------------------
#: the enclosure shown in the table for each claim
HEADLINE = {"NAIVE-BOUND-FALSE": "lambda(A)", "UNIFORM-RATE": "lambda(A)", "STATE-WISE": "ratio",
            "ENERGY": "lambda_min(K)", "TRUST-REGION": "lambda_min(G)"}

#: (m, m_y, n) per claim in the default plan; the first of each is the size the issue asks for.
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
    from .sampling import make_case  # the instance generator only; no formula of the core

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


def _describe(instance: dict) -> str:
    return ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in instance.items())


def write_json_atomically(path: str, data: dict) -> None:
    """Write to a temporary file in the same directory, then rename (no half-written report)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".certify-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(data, indent=2, sort_keys=True, default=float) + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run_cli(console, *, seed: int = 0, json_path: str | None = None,
            plan: list[tuple[str, Callable[[], Certificate]]] | None = None) -> int:
    """Certify every instance of the plan, print a table (and the reasons for anything not
    certified), optionally write JSON. Exit status 0 iff every certificate is certified."""
    from rich.table import Table

    plan = default_plan(seed) if plan is None else plan
    certificates = []
    with console.status("certifying", spinner="dots") if console.is_terminal else nullcontext():
        for _, run in plan:
            certificates.append(run())
    table = Table(title=f"deq-verify --certify (seed {seed}; ball arithmetic, python-flint)")
    for col, kw in [("claim", {}), ("instance", {}), ("verdict", {}), ("bits", {"justify": "right"}),
                    ("headline enclosure", {}), ("max rel width", {"justify": "right"}),
                    ("time (s)", {"justify": "right"})]:
        table.add_column(col, **kw)
    colour = {CERTIFIED: "green", VIOLATED: "red", NOT_CERTIFIED: "yellow"}
    for c in certificates:
        head = HEADLINE.get(c.claim)
        enc = c.enclosures.get(head)
        table.add_row(c.claim, _describe(c.instance), f"[{colour[c.status]}]{c.status}[/]", str(c.bits),
                      f"{head} = {enc.mid:.12g} +/- {enc.rad:.1e}" if enc else "-", f"{c.max_rel_width:.1e}", f"{c.seconds:.2f}")
    console.print(table)
    console.print("certified = proved for this instance (every point of the balls), not the theorem; "
                  f"equations: residual ball holds 0 and is narrower than {EQUATION_RTOL:.1e} x their size.")
    for c in certificates:
        if c.status != CERTIFIED:
            console.print(f"[{colour[c.status]}]{c.status.upper()}[/] {c.claim} ({_describe(c.instance)}): {c.reason}",
                          soft_wrap=True)
    all_certified = all(c.status == CERTIFIED for c in certificates)
    if json_path:
        write_json_atomically(json_path, {"seed": seed, "precisions": list(PRECISIONS), "equation_rtol": EQUATION_RTOL,
                                          "all_certified": all_certified,
                                          "certificates": [c.as_dict() for c in certificates]})
    return 0 if all_certified else 1
