"""The names of the derivations the SYMBOLIC claim runs (see :mod:`theory.checks`).

Kept free of SymPy imports so that listing the campaign's claims stays cheap.
"""

DERIVATIONS = (
    "softmax Jacobian",
    "conservation (column homogeneity)",
    "metric K = J J^T (exact rational point)",
    "metric K lambdified = verify.dynamics.preconditioner",
    "PL constant of the square loss",
    "comparison ODE solved by dsolve",
    "uniform bound: columns of sigma(A) sum to 1",
    "square-loss Hessian = (Phi Phi^T) (x) I",
    "KKT stationarity solved at multiplier 1",
    "second-order condition: Lagrangian Hessian at multiplier 1",
    "KKT solution lambdified = verify.trust_region solver",
    "admissible step (congruence)",
    "admissible step in one dimension (solved inequality)",
    "steepest descent in metric K^-1",
)
