"""The HYPOTHESES claim: the public API refuses what lies outside the theorems' hypotheses.

Theorems 1 and 2 (docs/theory.md) hold for gamma in (0, 1), a square A, shapes that fit, finite data
and, for the cross-entropy, one-hot targets; the dynamics need lr > 0, steps >= 1, T > 0. A
verdict computed from an input outside them would be about nothing, so every public entry point
must refuse it with a ValueError whose message names the offending argument (as a whole word:
a mismatch of two arguments may name the other one first), and must accept the same call with
the argument restored. Both directions
are checked: a guard that refuses too much fails as surely as one that lets bad input through.

Each configuration draws a small valid problem, one entry point and one violation of one of its
arguments. Violations are built from the valid value (a column dropped, one entry set to NaN or
inf, a boundary value of a scalar), so the rest of the call stays valid. The dynamics run for a
time of 1e-9 (two steps of lr = 1e-9): what is judged is the door, not the trajectory.
"""

from __future__ import annotations

import re

import numpy as np

from .convergence import rate_constant, uniform_rate_bound
from .dynamics import gradient_descent, gradient_flow, preconditioner
from .gradients import loss_and_grad, unrolled_loss_and_grad
from .losses import ShallowProblem
from .model import end_to_end_weight, equilibrium, fixed_point_iterates, predict


def _problem(rng: np.random.Generator, loss: str) -> dict:
    m = int(rng.integers(2, 6))
    m_y = int(rng.integers(2, 4)) if loss == "cross_entropy" else int(rng.integers(1, 4))
    n = int(rng.integers(3, 9))
    Y = np.zeros((m_y, n))
    if loss == "cross_entropy":
        Y[rng.integers(0, m_y, n), np.arange(n)] = 1.0
    else:
        Y = rng.standard_normal((m_y, n))
    return {
        "A": rng.standard_normal((m, m)),
        "B": rng.standard_normal((m_y, m)),
        "Phi": rng.standard_normal((m, n)),
        "Y": Y,
    }


def _drop_column(X):
    return X[:, :-1]


def _drop_row(X):
    return X[:-1]


def _entry(X, value):
    X = np.array(X, dtype=float)
    X.flat[X.size // 2] = value
    return X


def _not_one_hot(Y):
    Y = Y.copy()
    Y[:, 0] = 0.5 if Y.shape[0] == 2 else 1.0 / Y.shape[0] + 0.25  # column 0 no longer one-hot
    return Y


#: violations of an array argument, each built from its valid value
ARRAY_VIOLATIONS = {
    "a column dropped": _drop_column,
    "a row dropped": _drop_row,
    "one NaN entry": lambda X: _entry(X, np.nan),
    "one inf entry": lambda X: _entry(X, np.inf),
    "one -inf entry": lambda X: _entry(X, -np.inf),
    "a 1-D array": lambda X: np.ravel(X),
}
GAMMA_VIOLATIONS = {"= 0": 0.0, "= 1": 1.0, "< 0": -0.25, "> 1": 1.5, "= NaN": float("nan"), "= inf": float("inf")}
POSITIVE_VIOLATIONS = {"= 0": 0.0, "< 0": -1.0, "= NaN": float("nan"), "= inf": float("inf")}
COUNT_VIOLATIONS = {"= 0": 0, "< 0": -2, "not an integer": 2.5}


def _entries():
    """(name, function of keyword arguments, valid keyword arguments from a problem, violations):
    a violation is (argument, label, function from the valid value to the invalid one)."""

    def arrays(*names, square=(), free_rows=(), free_columns=()):
        """Every array violation of each name, except a dropped row of a square matrix (a dropped
        column covers it) and a dropped row or column where that size is free (B's rows without
        targets: m_y is whatever B says) or is set by this array (Phi's columns fix n: a mismatch
        with Y is reported on Y, by Y's own violations; in the dynamics Phi's rows fix m, and a
        mismatch is reported on A0 and B0)."""
        out = []
        for a in names:
            for label, f in ARRAY_VIOLATIONS.items():
                if label == "a row dropped" and (a in square or a in free_rows):
                    continue
                if label == "a column dropped" and a in free_columns:
                    continue
                out.append((a, label, f))
        return out

    def scalars(name, table):
        return [(name, f"{name} {label}", (lambda v: lambda _: v)(v)) for label, v in table.items()]

    gamma = scalars("gamma", GAMMA_VIOLATIONS)
    loss_name = [("loss", "an unknown loss", lambda _: "squared")]
    return [
        (
            "rate_constant",
            lambda k: rate_constant(k["A"], gamma=k["gamma"]),
            lambda p, g: {"A": p["A"], "gamma": g},
            arrays("A", square="A") + gamma,
        ),
        (
            "uniform_rate_bound",
            lambda k: uniform_rate_bound(k["m"], gamma=k["gamma"]),
            lambda p, g: {"m": p["A"].shape[0], "gamma": g},
            scalars("m", COUNT_VIOLATIONS) + gamma,
        ),
        (
            "end_to_end_weight",
            lambda k: end_to_end_weight(k["A"], k["B"], gamma=k["gamma"]),
            lambda p, g: {"A": p["A"], "B": p["B"], "gamma": g},
            arrays("A", "B", square="A", free_rows="B") + gamma,
        ),
        (
            "equilibrium",
            lambda k: equilibrium(k["A"], k["Phi"], gamma=k["gamma"]),
            lambda p, g: {"A": p["A"], "Phi": p["Phi"], "gamma": g},
            arrays("A", "Phi", square="A", free_columns="Phi") + gamma,
        ),
        (
            "predict",
            lambda k: predict(k["A"], k["B"], k["Phi"], gamma=k["gamma"]),
            lambda p, g: {"A": p["A"], "B": p["B"], "Phi": p["Phi"], "gamma": g},
            arrays("B", "Phi", free_rows="B", free_columns="Phi") + gamma,
        ),
        (
            "fixed_point_iterates",
            lambda k: fixed_point_iterates(k["A"], k["Phi"], gamma=k["gamma"], layers=k["layers"], z0=k["z0"]),
            lambda p, g: {"A": p["A"], "Phi": p["Phi"], "gamma": g, "layers": 3, "z0": np.zeros_like(p["Phi"])},
            scalars("layers", COUNT_VIOLATIONS) + arrays("z0", "Phi", free_columns="Phi") + gamma,
        ),
        (
            "loss_and_grad",
            lambda k: loss_and_grad(k["A"], k["B"], k["Phi"], k["Y"], gamma=k["gamma"], loss=k["loss"]),
            lambda p, g: {"A": p["A"], "B": p["B"], "Phi": p["Phi"], "Y": p["Y"], "gamma": g, "loss": p["loss"]},
            arrays("A", "B", "Phi", "Y", square="A", free_columns="Phi") + gamma + loss_name,
        ),
        (
            "unrolled_loss_and_grad",
            lambda k: unrolled_loss_and_grad(
                k["A"], k["B"], k["Phi"], k["Y"], gamma=k["gamma"], layers=k["layers"], loss=k["loss"]
            ),
            lambda p, g: {
                "A": p["A"],
                "B": p["B"],
                "Phi": p["Phi"],
                "Y": p["Y"],
                "gamma": g,
                "layers": 3,
                "loss": p["loss"],
            },
            arrays("B", "Y") + scalars("layers", COUNT_VIOLATIONS) + gamma,
        ),
        (
            "preconditioner",
            lambda k: preconditioner(k["A"], k["B"], gamma=k["gamma"]),
            lambda p, g: {"A": p["A"], "B": p["B"], "gamma": g},
            arrays("A", "B", square="A", free_rows="B") + gamma,
        ),
        (
            "ShallowProblem",
            lambda k: ShallowProblem(k["Phi"], k["Y"], loss=k["loss"]),
            lambda p, g: {"Phi": p["Phi"], "Y": p["Y"], "loss": p["loss"]},
            arrays("Phi", "Y", free_rows=("Phi", "Y"), free_columns="Phi") + loss_name,
        ),
        (
            "gradient_descent",
            lambda k: gradient_descent(
                k["A0"], k["B0"], k["Phi"], k["Y"], gamma=k["gamma"], lr=k["lr"], steps=k["steps"], loss=k["loss"]
            ),
            lambda p, g: {
                "A0": p["A"],
                "B0": p["B"],
                "Phi": p["Phi"],
                "Y": p["Y"],
                "gamma": g,
                "lr": 1e-9,
                "steps": 2,
                "loss": p["loss"],
            },
            arrays("A0", "B0", square="A0")
            + scalars("lr", POSITIVE_VIOLATIONS)
            + scalars("steps", COUNT_VIOLATIONS)
            + gamma,
        ),
        (
            "gradient_flow",
            lambda k: gradient_flow(
                k["A0"], k["B0"], k["Phi"], k["Y"], gamma=k["gamma"], T=k["T"], t_eval=k["t_eval"], loss=k["loss"]
            ),
            lambda p, g: {
                "A0": p["A"],
                "B0": p["B"],
                "Phi": p["Phi"],
                "Y": p["Y"],
                "gamma": g,
                "T": 1e-9,
                "t_eval": np.array([0.0, 5e-10, 1e-9]),
                "loss": p["loss"],
            },
            arrays("A0", "B0", "Phi", square="A0", free_rows="Phi", free_columns="Phi")
            + scalars("T", POSITIVE_VIOLATIONS)
            + gamma
            + [
                ("t_eval", "t_eval beyond T", lambda t: t * 2.0),
                ("t_eval", "t_eval decreasing", lambda t: t[::-1]),
                ("t_eval", "t_eval with NaN", lambda t: _entry(t, np.nan)),
            ],
        ),
    ]


ENTRIES = _entries()
ENTRY_BY_NAME = {e[0]: e for e in ENTRIES}
#: the entry points that take targets Y (read from their valid arguments): with the
#: cross-entropy loss, Y not one-hot is a violation too
TAKES_TARGETS = tuple(
    name
    for name, _, valid, _ in ENTRIES
    if "Y" in valid({**_problem(np.random.default_rng(0), "square"), "loss": "square"}, 0.5)
)
DYNAMICS = ("gradient_descent", "gradient_flow")


def _cases() -> list[tuple[int, int, str | None]]:
    """Every (entry, violation, loss) to try: each violation with both losses where it applies,
    and Y not one-hot (violation index len(violations)) for the cross-entropy."""
    out = []
    for e, (name, _, _, violations) in enumerate(ENTRIES):
        out += [(e, v, None) for v in range(len(violations))]
        if name in TAKES_TARGETS:
            out.append((e, len(violations), "cross_entropy"))
    return out


#: the campaign cycles through all of them (the quick count is their number)
CASES = _cases()


def sample_hypotheses(rng: np.random.Generator, index: int) -> dict:
    """Configuration ``index`` tries case index mod len(CASES), with a random loss (where the
    case leaves it open), data seed and valid gamma (1e-9 or the upper edge one time in five:
    the guard must not refuse them)."""
    entry, violation, loss = CASES[index % len(CASES)]
    loss = loss or ("cross_entropy" if rng.random() < 0.4 else "square")
    edge = rng.random()
    # near gamma = 1 the flow's time scale is ~(1 - gamma)^2 and a descent step of any fixed lr
    # diverges: the dynamics get the upper edge 0.9
    upper = 0.9 if ENTRIES[entry][0] in DYNAMICS else 1 - 1e-6
    gamma = 1e-9 if edge < 0.1 else (upper if edge < 0.2 else float(rng.uniform(0.01, upper)))
    return {
        "entry": ENTRIES[entry][0],
        "violation": violation,
        "loss": loss,
        "gamma": gamma,
        "seed": int(rng.integers(2**32)),
    }


def check_case(config: dict) -> None:
    """A replayed configuration's violation index must exist for its entry point and loss."""
    violations = ENTRY_BY_NAME[config["entry"]][3]
    cases = len(violations) + (1 if config["entry"] in TAKES_TARGETS and config["loss"] == "cross_entropy" else 0)
    if not 0 <= config["violation"] < cases:
        raise ValueError(
            f"key 'violation' must be in [0, {cases}) for {config['entry']} with the {config['loss']} "
            f"loss; got {config['violation']}"
        )


def run_hypotheses(config: dict) -> tuple[str, str, str, str]:
    """("accepted" or the valid call's error, the argument violated, the violation, what the bad
    call did)."""
    check_case(config)
    name, call, valid, violations = ENTRY_BY_NAME[config["entry"]]
    problem = _problem(np.random.default_rng(config["seed"]), config["loss"])
    problem["loss"] = config["loss"]
    kwargs = valid(problem, config["gamma"])
    if config["violation"] == len(violations):
        argument, label, bad = "Y", "Y not one-hot", _not_one_hot(kwargs["Y"])
    else:
        argument, label, make_bad = violations[config["violation"]]
        bad = make_bad(kwargs[argument])
    try:
        with np.errstate(all="ignore"):
            call(kwargs)
        accepted = "accepted"
    except Exception as err:  # noqa: BLE001 - any refusal of a valid call is the failure reported
        accepted = f"{type(err).__name__}: {err}"
    try:
        with np.errstate(all="ignore"):
            call({**kwargs, argument: bad})
        refused = "no error"
    except ValueError as err:
        refused = f"ValueError: {err}"
    except Exception as err:  # noqa: BLE001
        refused = f"{type(err).__name__} (not ValueError): {err}"
    return accepted, argument, label, refused


def names_argument(message: str, argument: str) -> bool:
    """Whether ``message`` is a ValueError's that names ``argument`` as a whole word."""
    return (
        message.startswith("ValueError: ")
        and re.search(rf"(?<![\w]){re.escape(argument)}(?![\w])", message[len("ValueError: ") :]) is not None
    )
