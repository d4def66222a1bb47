"""The uniform rate bound and its tightness, derived in SymPy (docs/theory.md, section 4).

**Norms of sigma(A)** (:func:`softmax_norm_facts`, symbolic e_ij = exp(A_ij) > 0, m = 3): the
columns of S = sigma(A) sum to 1 and every entry is > 0, so ||S||_1 = 1; every entry is < 1
(m >= 2), so every row sum is < m and ||S||_inf <= m. Proof on paper: ||S||_2 <= sqrt(||S||_1
||S||_inf) <= sqrt(m), ||U||_2 <= 1 + gamma ||S||_2, lambda(A) = 1/||U||_2^2 >=
1/(1 + gamma sqrt(m))^2. The false bound 1/(1 + gamma)^2 would need ||S||_2 <= 1, which the
column sums alone do not give; the concentrated instance refutes it exactly.

**The concentrated softmax** (:func:`concentrated_rate`): A[row, :] = logit_gap, 0 elsewhere (the
A of verify.convergence.concentrated_weight), with exact exponentials. SymPy shows S = s 1^T (every
column equal), U^T U x = x for the m - 2 vectors x = e_k - e_{k+1} (k != row, k + 1 != row; they
span the complement of span{1, s}: orthogonal to 1 and to s), and U^T U maps span{1, s} to itself
with a 2 x 2 matrix T in the basis (1, s). So the spectrum of U^T U is {1 (m - 2 times)} and the
two roots of charpoly(T); with mu_max = the largest root, charpoly(T)(1) < 0 (decided) puts 1
strictly between the roots, so ||U||_2^2 = mu_max and lambda(A) = 1/mu_max exactly. SymPy then
decides 1/(1 + gamma sqrt(m))^2 <= lambda(A) (the uniform bound holds) and lambda(A) <
1/(1 + gamma)^2 (the naive bound fails) at that instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from .symbolic_model import column_softmax_from_exponentials, symbol_matrix


def softmax_norm_facts(m: int = 3) -> dict[str, bool]:
    """||sigma(A)||_1 = 1 and ||sigma(A)||_inf <= m from the definition (decided truth values)."""
    if m < 2:
        raise ValueError(f"m must be >= 2 (at m = 1, sigma(A) = 1); got {m}")
    E = symbol_matrix("e", m, m, positive=True)
    S = column_softmax_from_exponentials(E)
    facts = {
        "column sums of sigma(A) = 1": all(sp.cancel(sum(S[:, j]) - 1) == 0 for j in range(m)),
        "entries of sigma(A) > 0": all(x.is_positive is True for x in S),
    }
    facts["||sigma(A)||_1 = max_j sum_i |S_ij| = 1"] = (
        facts["column sums of sigma(A) = 1"] and facts["entries of sigma(A) > 0"]
    )
    below_one = [sp.cancel(1 - x) for x in S]
    facts["entries of sigma(A) < 1 (m >= 2)"] = all(x.is_positive is True for x in below_one)
    facts["row sums of sigma(A) < m: ||sigma(A)||_inf <= m"] = all(
        sp.Add(*[below_one[i * m + j] for j in range(m)]).is_positive is True for i in range(m)
    )
    return facts


@dataclass(frozen=True)
class ConcentratedRate:
    """lambda(A) at the concentrated A, exactly; ``A`` has integer entries, ``lam`` = 1/mu_max;
    ``naive_bound_fails``: SymPy decided lambda(A) < 1/(1 + gamma)^2 (it holds for large enough
    gamma sqrt(m), not at every instance: a fact about this instance, not a theorem)."""

    m: int
    gamma: sp.Rational
    A: sp.Matrix
    S: sp.Matrix
    lam: sp.Expr
    naive_bound_fails: bool
    facts: dict = field(default_factory=dict)


def concentrated_weight(m: int, logit_gap: int = 50, row: int = 0) -> sp.Matrix:
    """A[row, :] = logit_gap, 0 elsewhere (integers: exp(A) is exact in SymPy)."""
    A = sp.zeros(m, m)
    A[row, :] = sp.Matrix([[logit_gap] * m])
    return A


def gram_of_implicit_matrix(s: sp.Matrix, gamma) -> callable:
    """x -> U^T U x for U = I - gamma s 1^T (S = s 1^T), as two rank-one updates (O(m) each):
    U x = x - gamma s (1^T x), U^T y = y - gamma 1 (s^T y)."""
    one = sp.ones(s.rows, 1)

    def apply(x):
        y = x - gamma * s * (one.T * x)[0, 0]
        return y - gamma * one * sp.cancel((s.T * y)[0, 0])

    return apply


def concentrated_rate(m: int, gamma, logit_gap: int = 50, row: int = 0) -> ConcentratedRate:
    """lambda(A) = 1/||I - gamma sigma(A)||_2^2 at the concentrated A (module docstring)."""
    if m < 3:
        raise ValueError(f"m must be >= 3 (a complement of span{{1, s}}); got {m}")
    gamma = sp.Rational(gamma)
    if not 0 < gamma < 1:
        raise ValueError(f"gamma must lie in (0, 1); got {gamma}")
    A = concentrated_weight(m, logit_gap, row)
    # exp(logit_gap) is kept as a positive symbol during the algebra, which runs in the field
    # QQ(big) of rational functions (exact, and fast), then replaced by the exact exp(logit_gap)
    big = sp.Symbol("big", positive=True)
    E = A.applyfunc(lambda a: big if a == logit_gap else sp.exp(a))
    S = column_softmax_from_exponentials(E)
    s, one = S[:, 0], sp.ones(m, 1)
    facts = {"S = s 1^T (every column of sigma(A) equal)": all(S[:, j] == s for j in range(m))}

    UtU = gram_of_implicit_matrix(s, gamma)
    others = [k for k in range(m) if k != row]
    basis = [sp.eye(m)[:, a] - sp.eye(m)[:, b] for a, b in zip(others, others[1:])]
    facts["U^T U x = x on the complement (x = e_k - e_k+1, x . 1 = x . s = 0)"] = all(
        UtU(x) == x and (x.T * one)[0, 0] == 0 and sp.cancel((x.T * s)[0, 0]) == 0 for x in basis
    )

    def coordinates(y):
        # y = a 1 + b s, solved on two coordinates (s_row != s_other) and checked on all
        i, j = row, others[0]
        b = sp.cancel((y[i] - y[j]) / (s[i] - s[j]))
        a = sp.cancel(y[i] - b * s[i])
        return a, b, all(sp.cancel(a + b * s[k] - y[k]) == 0 for k in range(m))

    facts["1, s independent (s_row != s_other)"] = sp.cancel(s[row] - s[others[0]]) != 0
    a1, b1, ok1 = coordinates(UtU(one))
    a2, b2, ok2 = coordinates(UtU(s))
    facts["U^T U maps span{1, s} to itself"] = ok1 and ok2
    T = sp.Matrix([[a1, a2], [b1, b2]])
    x = sp.Symbol("x")
    charpoly = sp.cancel(T.charpoly(x).as_expr())
    tr, det = T.trace(), T.det()
    mu_max = (tr + sp.sqrt(tr**2 - 4 * det)) / 2
    exact = {big: sp.exp(logit_gap)}
    facts["charpoly(T)(1) < 0: 1 lies strictly between the roots, ||U||_2^2 = mu_max"] = (
        charpoly.subs(x, 1).xreplace(exact).is_negative is True
    )
    facts["mu_max is a root of charpoly(T)"] = sp.cancel(charpoly.subs(x, mu_max)) == 0
    lam = (1 / mu_max).xreplace(exact)
    facts["1/(1 + gamma sqrt(m))^2 <= lambda(A) (uniform bound holds)"] = (
        lam - 1 / (1 + gamma * sp.sqrt(m)) ** 2
    ).is_nonnegative is True
    naive_fails = (1 / (1 + gamma) ** 2 - lam).is_positive is True
    return ConcentratedRate(m, gamma, A, S.xreplace(exact), lam, naive_fails, facts)


__all__ = [
    "softmax_norm_facts",
    "ConcentratedRate",
    "concentrated_weight",
    "gram_of_implicit_matrix",
    "concentrated_rate",
]
