"""The implicit-bias experiment (docs/theory.md, section 7): its three training loops judged step by
step against the reference.

The experiment (:func:`verify.implicit_bias.train_three_models`) trains the DEQ-linear model, the
linear model and a deep linear network by gradient descent from the same end-to-end start W_0 and
compares their test losses. Its finding is only as good as its loops: each recorded step must be
a gradient-descent step of its own model's per-sample-mean loss, and each recorded loss the
loss of the recorded parameters. The direction of the test-loss gap is an empirical question and
is not judged here.
"""

from __future__ import annotations

import numpy as np

from .. import reference as ref
from .. import rounding
from ..implicit_bias import split_classification, synthetic_overparameterised, train_three_models
from ..results import DERIVED, EPS, condition, equal, outcome
from ._shared import norm
from .spec import ClaimSpec, Tier


def _split(config: dict, rng: np.random.Generator):
    m, m_y, n = config["m"], config["m_y"], config["n"]
    if config["loss"] == "square":
        return synthetic_overparameterised(rng, m=m, n_train=n, n_test=2 * n, m_y=m_y)
    # images with m pixels in [0, 255], labels uniform over m_y classes (cross-entropy)
    images = rng.integers(0, 256, (3 * n, m)).astype(float)
    labels = rng.integers(0, m_y, 3 * n)
    return split_classification(images, labels, rng, n_train=n, n_test=2 * n, name="synthetic", classes=m_y)


def _loss_tol(W, Phi, Y, loss, gamma) -> float:
    """Rounding of one evaluation of L0 at W (both implementations): twice the forward bound."""
    G = ref.output_gradient(W @ Phi, Y, loss)
    return 2 * rounding.forward_errors(W, Phi, G, gamma)["L"]


def check_implicit_bias_loops(config):
    """Three recorded steps of each model of the implicit-bias experiment: the common start
    (W(A_0, B_0) = W_lin,0 = W_2,0 W_1,0 with W_1,0 = I), every step theta_{k+1} = theta_k - lr
    grad(L / n)(theta_k) with the reference gradient (complex step for the DEQ, the reference
    shallow gradient for the linear model and through the product for the deep linear network),
    and every recorded train and test loss equal to the reference mean loss of the recorded
    parameters."""
    rng = np.random.default_rng(config["seed"])
    split = _split(config, rng)
    gamma, loss = config["gamma"], config["loss"]
    out = train_three_models(
        split,
        np.random.default_rng(config["seed"] + 1),
        gamma=gamma,
        steps=3,
        record_every=1,
        a_scale=config["a_scale"],
        init_scale=config["init_scale"],
        record_states=True,
    )
    lr, states = out["lr"], out["states"]
    Phi, Y, Phi_t, Y_t = split.Phi_train, split.Y_train, split.Phi_test, split.Y_test
    n, n_t = Phi.shape[1], Phi_t.shape[1]
    m = Phi.shape[0]

    def weight(model, k):
        if model == "deq":
            A, B = states["deq"][k]
            return ref.end_to_end_weight(A, B, gamma)
        if model == "linear":
            return states["linear"][k]
        W1, W2 = states["deep_linear"][k]
        return W2 @ W1

    A0, B0 = states["deq"][0]
    W1_0, W2_0 = states["deep_linear"][0]
    W0 = states["linear"][0]
    start_tol = 2 * rounding.forward_errors(W0, Phi, np.zeros_like(Y), gamma)["W"] + 2 * m * EPS * norm(W0)
    meas = [
        equal("common start: W(A_0, B_0) = W_lin,0 (reference forward pass)", norm(weight("deq", 0) - W0), start_tol),
        condition(
            "common start: W_1,0 = I and W_2,0 = W_lin,0", np.array_equal(W1_0, np.eye(m)) and np.array_equal(W2_0, W0)
        ),
    ]
    worst_loss, worst_step = 0.0, 0.0
    for k in range(len(states["linear"])):
        for model in ("deq", "linear", "deep_linear"):
            W = weight(model, k)
            for label, P, T, count in (("train", Phi, Y, n), ("test", Phi_t, Y_t, n_t)):
                value = ref.output_loss(W @ P, T, loss) / count
                tol = _loss_tol(W, P, T, loss, gamma) / count
                worst_loss = max(worst_loss, abs(out[model][label][k] - value) / tol)
        if k + 1 == len(states["linear"]):
            break
        # one step of each model from its own recorded state, with the reference gradient
        A, B = states["deq"][k]
        W = ref.end_to_end_weight(A, B, gamma)
        dA, dB = ref.gradients(A, B, Phi, Y, gamma, loss)
        e = rounding.forward_errors(W, Phi, ref.output_gradient(W @ Phi, Y, loss), gamma)
        A1, B1 = states["deq"][k + 1]
        err = norm(A1 - (A - lr * dA / n)) + norm(B1 - (B - lr * dB / n))
        worst_step = max(worst_step, err / (2 * lr / n * (e["dA"] + e["dB"]) + 2 * EPS * (norm(A) + norm(B))))
        W_lin = states["linear"][k]
        g = ref.shallow_gradient(W_lin, Phi, Y, loss) / n
        e_lin = rounding.forward_errors(W_lin, Phi, ref.output_gradient(W_lin @ Phi, Y, loss), gamma)["grad_L0"] / n
        err = norm(states["linear"][k + 1] - (W_lin - lr * g))
        worst_step = max(worst_step, err / (2 * lr * e_lin + 2 * EPS * norm(W_lin)))
        W1, W2 = states["deep_linear"][k]
        P = W2 @ W1
        g = ref.shallow_gradient(P, Phi, Y, loss) / n
        # the product W_2 W_1 rounds by m eps ||W_2|| ||W_1||; the gradient then moves by ||Phi||^2 that much
        e_dln = (
            rounding.forward_errors(P, Phi, ref.output_gradient(P @ Phi, Y, loss), gamma)["grad_L0"] / n
            + m * EPS * norm(W2) * norm(W1) * float(np.linalg.norm(Phi, 2)) ** 2 / n
        )
        V1, V2 = states["deep_linear"][k + 1]
        err = norm(V1 - (W1 - lr * W2.T @ g)) + norm(V2 - (W2 - lr * g @ W1.T))
        tol = 2 * lr * (e_dln * (norm(W1) + norm(W2)) + m * EPS * norm(g) * (norm(W1) + norm(W2))) + 2 * EPS * (
            norm(W1) + norm(W2)
        )
        worst_step = max(worst_step, err / tol)
    meas += [
        equal("recorded train and test losses = reference mean losses (worst error/tolerance)", worst_loss, 1.0),
        equal(
            "each recorded step = theta - lr grad(L / n) with the reference gradient (worst error/tolerance)",
            worst_step,
            1.0,
        ),
    ]
    return outcome(meas, f"lr = {lr:.3g}, loss {loss}")


def _sample(rng, index):
    loss = "square" if index % 2 == 0 else "cross_entropy"
    m = int(rng.integers(3, 9))
    return {
        "seed": int(rng.integers(2**32)),
        "loss": loss,
        "m": m,
        "m_y": int(rng.integers(2, 4)),
        "n": int(rng.integers(2, m)) if loss == "square" else int(rng.integers(m + 1, 3 * m)),
        "gamma": float(rng.uniform(0.1, 0.9)),
        "a_scale": float(rng.choice([0.1, 1.0])),
        "init_scale": float(rng.choice([0.01, 1.0])),
    }


SPECS = [
    ClaimSpec(
        id="IMPLICIT-BIAS",
        theorem="implicit bias",
        provenance=DERIVED,
        symbolic="not applicable",
        statement="the implicit-bias experiment's three training loops (DEQ-linear, linear, deep linear) start "
        "from the same W_0, take gradient-descent steps of their own per-sample-mean losses, and "
        "record the losses of their parameters (the loops behind the figure; the direction of "
        "the test-loss gap is measured, not judged)",
        default=Tier(sample=_sample, check=check_implicit_bias_loops, quick=6, thorough=60),
    )
]
