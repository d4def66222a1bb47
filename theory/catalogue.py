"""The names of the derivations the SYMBOLIC claim runs (verify/claims/symbolic.py).

Kept free of SymPy imports so that listing the campaign's claims stays cheap.
"""

DERIVATIONS = (
    "softmax Jacobian",
    "conservation (column homogeneity)",
    "metric K = J J^T (exact rational point)",
    "metric K lambdified = verify.dynamics.preconditioner",
    "PL inequality: kappa = smallest nonzero eigenvalue (2 x 2)",
    "PL constant at rational data = verify.losses pl_constant",
    "comparison ODE solved by dsolve",
    "uniform bound: ||sigma(A)||_1 = 1, ||sigma(A)||_inf <= m",
    "lambda(A) at the concentrated softmax = verify.convergence.rate_constant",
    "square-loss Hessian = (Phi Phi^T) (x) I",
    "admissible step: G_dt > 0 iff dt < 1/lambda_max (2 x 2, every symmetric H)",
    "admissible step at the derived K and H = verify.trust_region.admissible_step_bound",
    "trust-region subproblem at the derived K and H, both sides of the threshold",
    "steepest descent in metric K^-1",
)
