"""Certified verdicts: ball-arithmetic proofs of the finite claims at concrete instances.

Every other verdict of the suite is a float64 comparison with a tolerance. The claims below are
finite statements about one instance (A, B, Phi, Y, gamma); here they are decided in Arb ball
arithmetic (python-flint). Every real quantity is a ball [mid +- rad] that provably contains the
exact value, and every decision is an Arb comparison of balls (never of floats), so a verdict is
a proof about that instance -- not a proof of the theorem, which quantifies over all instances.

Claims with certificates (docs/theory.md notation):

    NAIVE-BOUND-FALSE  lambda(A) < 1/(1+gamma)^2 at the concentrated A (A[0, :] = 50, rest 0)
    UNIFORM-RATE       lambda(A) >= 1/(1+gamma sqrt m)^2, i.e. ||U||_2 <= 1 + gamma sqrt m
    STATE-WISE         ||dL/dA||^2 + ||dL/dB||^2 >= 2 kappa lambda(A) (L - L*)    (square loss)
    ENERGY             vec(dW/dt) = -K g,  dL/dt = -||dL/dA||^2 - ||dL/dB||^2 = -g^T K g,
                       K >= lambda(A) I (proved strictly: lambda_min(K) > lambda(A)),
                       -dL/dt >= lambda(A) ||g||^2
    TRUST-REGION       KKT of  min g^T v + 1/2 v^T H v  s.t.  v^T G v <= delta^2  at v = -dt K g:
                       G = K^{-1}/dt - H > 0, H + G > 0, (H + 1 G) v + g = 0, radius, step bound

Along trajectories and the remaining finite claims (docs/theory.md, sections 9 and 10):

    GD-RATE       the discrete Theorem 1 at every step of a float64 descent run: lr M_k <= 1,
                  E(theta_k - lr g_k) <= (1 - lr kappa lambda(A_k)) E(theta_k) and its refined form,
                  the run's own E_{k+1} <= (1 - lr kappa lambda(A_k)) E_k (``descent``)
    INTEGRATED    E(t) <= E(0) exp(-2 kappa int lambda) along a validated enclosure of gradient flow
                  (interval Taylor method, logarithmic-norm spreading; ``flow``)
    NONCONVEX     a certified midpoint violation of convexity            (``finite``)
    CONSERVATION  1^T dL/dA = 0: exact at rationals, consistent to 2^-k at sigma(A)
    STATIONARY    grad L0(W) = dL/dB U^T: exact at rationals, consistent at sigma(A); U invertible

(``paths``: the model at ball parameters and along segments; ``trajectory_plan``: their plan entries.)

Items. Each certificate is a list of items; an item is

    proved           an inequality (or lambda_min > 0) that holds at every point of its balls;
                     an equation only if every residual is exactly 0 (radius 0);
    consistent to 2^-k   an equation lhs = rhs whose residual balls all contain 0, with k the
                     largest integer such that max|lhs - rhs| <= 2^-k max|term| (upper and
                     lower ends of the balls; exact comparisons). This is a proof that the
                     relative deviation is at most 2^-k, not a proof of the equation: balls
                     cannot prove an equation between irrational numbers;
    violated         the claim fails at every point of its balls (an equation: some residual
                     ball excludes 0);
    undecided        anything else: a ball that straddles the bound, a non-finite ball
                     (infinite or NaN radius), terms not bounded away from 0.

Verdicts (``Certificate.status``):

    certified      EVERY item proved. Only claims without equations (NAIVE-BOUND-FALSE,
                   UNIFORM-RATE, STATE-WISE) can be certified.
    consistent     every inequality and definiteness item proved and every equation consistent
                   to 2^-k with k >= EQUATION_BITS = 64 (ENERGY, TRUST-REGION). Never reported
                   as certified; the report shows k in its own column.
    violated       some item violated: a certified counterexample (for a true claim: evidence
                   that the certificate computes a wrong formula).
    not certified  neither, at every precision of the loop; the reason names the blocking items
                   (undecided ones, equations consistent only to 2^-k with k < 64). Never a pass.

The precision loop (:func:`verify.certify.proof.run_certificate`) tries 53, 106, 212 and 424
bits and stops at the first precision whose verdict is certified, consistent or violated. An
equation short of k >= 64 keeps the loop going, so a relative deviation above 2^-64 (1e-12
certainly) ends as violated or not certified, never as consistent.

Extreme scales. Arb exponents are unbounded, so sizes never overflow in a decision; exp is
taken of A_ij - max_k A_kj (Arb's exp of 1e300 is [+/- inf]). The float64 helpers (the
eigenbases of the eigenvalue enclosures, the step-bound estimate) work on 2^-e M for an exact
power of two, and their results are scaled back exactly. A non-finite ball or a helper that
fails (a float64 Cholesky at a spectrum wider than float64) makes the item undecided: "not
certified" with the reason.

Arguments and size (:mod:`verify.certify.validation`): ValueError naming the argument and the
rule for a non-square A, shapes that do not fit, gamma outside (0, 1) or a bool, complex,
object, boolean, NaN or inf arrays, non-positive factors; instances whose estimated cost exceeds
COST_LIMIT ball operations per precision are refused before any work.

Independence. Nothing here calls the float64 core (verify.model, gradients, dynamics,
convergence, trust_region, losses, batched; a test enforces it). The softmax, U, W = B U^{-1},
the implicit gradients, W*, kappa, K, the Hessian H and the KKT system are recomputed from their
definitions (docs/theory.md, sections 1-6). The float64 inputs are dyadic rationals and enter as
balls of radius 0; the sums over samples (Phi Phi^T, Y Phi^T, Phi^T Phi) are formed exactly in
rationals (fmpq_mat) and rounded once. The plan (:mod:`verify.certify.plan`) places its
near-tight instances and false canaries with the independent float64 reference
(verify.reference), never with the certificate it judges.

Eigenvalue enclosures (:func:`lambda_min_enclosure`). For a symmetric ball matrix M the smallest
eigenvalue is enclosed from both sides:
  upper  the Rayleigh quotient v^T M v / v^T v of any exact vector v (Courant-Fischer);
  lower  M - lo I > 0, proved by congruence: for an exact X, if N = X^T (M - lo I) X satisfies
         ||N - I||_F < 1 then N > 0, so X is nonsingular and M - lo I > 0 (Sylvester's law of
         inertia). X is an approximate inverse square root built from a float64 eigenbasis,
         with the extremal eigenvector refined by inverse iteration at the working precision.
flint's acb_mat.eig (a different rigorous method) is used in the tests as a cross-check.

The metric without its matrix (:mod:`verify.certify.metric`). ENERGY and TRUST-REGION never form
the (m m_y)^2 matrix K or its inverse. On paper (exact identities and structure): K v and H v are
the Kronecker formulas applied term by term ((A (x) B) vec X = vec(B X A^T)); K = F M F^T with
F = U^{-T} (x) I and M = blockdiag(I + gamma^2 W J_j^2 W^T), so K^{-1} v costs m solves of size m_y
and products with U; every term of K's A part is a Kronecker product of PSD matrices, so
K >= (U^{-T} U^{-1}) (x) I; and K - nu I, K^{-1} - H/tau are congruent to matrices E (x) I +
blockdiag(PSD) of the same inertia. Proved in balls: lambda_min(K) from above by a Rayleigh quotient
and from below by Temple's inequality, whose gap lambda_2(K) > nu is proved by a Schur-complement
bound on that inertia (:mod:`verify.certify.kronecker`: m x m and (k m_y)^2 ball matrices); the
same for lambda_max(K^{1/2} H K^{1/2}) = 1/dt_max, which decides every G_dt > 0. Where no gap can
be proved (a multiple smallest eigenvalue, e.g. m < m_y) the lower end comes from the Schur bound
alone. The explicit K (BallState.metric) is kept only as the tests' cross-check at small sizes.

Modules: ``proof`` (items, verdicts, the precision loop), ``balls`` (ball-matrix helpers and
eigenvalue enclosures), ``ball_model`` (the model from its definitions), ``metric`` (K, K^{-1}
and H as operators, the structured eigenvalue enclosures), ``kronecker`` (the Schur inertia bound
and Temple's inequality), ``validation``
(arguments, size budget), ``statements`` (one certificate per claim), ``instances`` (the plan's
instances and reference values), ``plan`` (the entries of ``--certify``), ``cli`` (the report).
"""

from __future__ import annotations

from .ball_model import BallState, column_softmax_ball, implicit_matrix_ball
from .balls import ball_matrix, lambda_max_enclosure, lambda_min_enclosure
from .proof import (
    CERTIFIED,
    CLAIMS,
    CONSISTENT,
    EQUATION_BITS,
    FAILED,
    NOT_CERTIFIED,
    PRECISIONS,
    PROVED,
    UNDECIDED,
    VERDICTS,
    VIOLATED,
    Certificate,
    Enclosure,
    Item,
    equation,
    inequality,
    positive_definite,
    run_certificate,
)
from .statements import (
    STEP_BOUND_GAP,
    certify_energy,
    certify_naive_bound_false,
    certify_state_wise,
    certify_trust_region,
    certify_uniform_rate,
    concentrated_instance,
)
from .validation import COST_LIMIT, estimated_cost

__all__ = [
    "BallState",
    "column_softmax_ball",
    "implicit_matrix_ball",
    "ball_matrix",
    "lambda_max_enclosure",
    "lambda_min_enclosure",
    "CERTIFIED",
    "CLAIMS",
    "CONSISTENT",
    "EQUATION_BITS",
    "FAILED",
    "NOT_CERTIFIED",
    "PRECISIONS",
    "PROVED",
    "UNDECIDED",
    "VERDICTS",
    "VIOLATED",
    "Certificate",
    "Enclosure",
    "Item",
    "equation",
    "inequality",
    "positive_definite",
    "run_certificate",
    "STEP_BOUND_GAP",
    "certify_energy",
    "certify_naive_bound_false",
    "certify_state_wise",
    "certify_trust_region",
    "certify_uniform_rate",
    "concentrated_instance",
    "COST_LIMIT",
    "estimated_cost",
]
