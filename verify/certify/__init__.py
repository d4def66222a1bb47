"""Certified verdicts: ball-arithmetic proofs of the finite claims at concrete instances.

Every other verdict of the suite is a float64 comparison with a tolerance. The claims below are
finite statements about one instance (A, B, Phi, Y, gamma); here they are decided in Arb ball
arithmetic (python-flint). Every real quantity is a ball [mid +- rad] that provably contains the
exact value, so an inequality that holds for every point of its balls is a proof for that
instance -- not a proof of the theorem, which quantifies over all instances.

Claims with certificates (docs/theory.md notation):

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
the Hessian H and the KKT system are recomputed from their definitions (docs/theory.md, sections 1-6).
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

Modules: ``proof`` (items, verdicts, the precision loop), ``balls`` (ball-matrix helpers and
eigenvalue enclosures), ``ball_model`` (the model from its definitions), ``statements`` (one
certificate per claim), ``plan`` (the instances of ``--certify``), ``cli`` (the report).
"""

from __future__ import annotations

from .ball_model import BallState, column_softmax_ball, implicit_matrix_ball
from .balls import ball_matrix, lambda_max_enclosure, lambda_min_enclosure
from .cli import run_cli, write_json_atomically
from .plan import HEADLINE, PLAN_GAMMA, PLAN_RATE, PLAN_SHAPES, default_plan
from .proof import (
                    CERTIFIED,
                    CLAIMS,
                    CONTAINED,
                    EQUATION_RTOL,
                    FAILED,
                    NOT_CERTIFIED,
                    PRECISIONS,
                    PROVED,
                    UNDECIDED,
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

__all__ = ["BallState", "column_softmax_ball", "implicit_matrix_ball", "CERTIFIED", "CLAIMS", "CONTAINED", "Certificate", "EQUATION_RTOL", "Enclosure", "FAILED", "HEADLINE", "Item", "NOT_CERTIFIED", "PLAN_GAMMA", "PLAN_RATE", "PLAN_SHAPES", "PRECISIONS", "PROVED", "STEP_BOUND_GAP", "UNDECIDED", "VIOLATED", "ball_matrix", "certify_energy", "certify_naive_bound_false", "certify_state_wise", "certify_trust_region", "certify_uniform_rate", "concentrated_instance", "default_plan", "equation", "inequality", "lambda_max_enclosure", "lambda_min_enclosure", "positive_definite", "run_certificate", "run_cli", "write_json_atomically"]
