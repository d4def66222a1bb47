"""How sharp is each inequality? An adversarial search for the admissible instances where a bound
has the least slack, and the fixed tight instances the campaign replays.

For every inequality claim X >= c Y the search minimises the ratio X / (c Y) (1 = attained) over
the claim's admissible instances of one width regime, by :func:`scipy.optimize.minimize`
(Nelder-Mead, adaptive) from several seeded starts. Every ratio is computed by the independent
reference (:mod:`verify.reference`), never by the numerical core, so the search measures the
theorem and not the code. The instances are parametrised by unconstrained vectors: A, B, Phi, Y
entry by entry and gamma through a logistic map into (0.02, 0.98).

The best instance of each (claim, regime) is stored in ``verify/data/sharpness.json``
(``python -m verify.sharpness --write``); the campaign replays those instances as fixed
configurations (``{"tight": "<claim>/<regime>"}``) and the report's sharpness section gives, per
claim and regime, the tightest ratio found, where, and whether the bound is attained (and, where
it provably is not, by how much it is loose). See docs/sensitivity.md.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from . import reference as ref

DATA = pathlib.Path(__file__).resolve().parent / "data" / "sharpness.json"


def _gamma(x: float) -> float:
    return 0.02 + 0.979 / (1.0 + np.exp(-x))


def _logit(gamma: float) -> float:
    u = (gamma - 0.02) / 0.979
    return float(np.log(u / (1 - u)))


@dataclass(frozen=True)
class Family:
    """The admissible instances of one claim in one regime, as a map from R^dim."""

    claim: str
    regime: str
    shapes: tuple  # (m, m_y, n)
    ratio: Callable[[dict], float]  # observed / bound by the reference (>= 1 where the claim holds)
    statement: str
    note: str  # attained or not, and why
    #: an informed start (an instance dict) besides the random ones, e.g. the constructed tight state
    informed: Callable[[np.random.Generator], dict] | None = None
    #: gamma held fixed (not searched): for the rate bounds, whose two sides both tend to 1 as
    #: gamma -> 0 (a trivial tightness), the search asks how tight they are at a given gamma
    gamma: float | None = None

    @property
    def dim(self) -> int:
        m, m_y, n = self.shapes
        return m * m + m_y * m + m * n + m_y * n + (self.gamma is None)

    def vector(self, inst: dict) -> np.ndarray:
        """The inverse of :meth:`instance`."""
        parts = [np.asarray(inst[k], dtype=float).ravel() for k in ("A", "B", "Phi", "Y")]
        return np.concatenate(parts + ([[_logit(inst["gamma"])]] if self.gamma is None else []))

    def instance(self, x: np.ndarray) -> dict:
        m, m_y, n = self.shapes
        sizes = np.cumsum([m * m, m_y * m, m * n, m_y * n])
        A, B, Phi, Y = (
            part.reshape(shape)
            for part, shape in zip(np.split(x[: sizes[-1]], sizes[:-1]), ((m, m), (m_y, m), (m, n), (m_y, n)))
        )
        gamma = float(_gamma(x[-1])) if self.gamma is None else self.gamma
        return {"A": A, "B": B, "Phi": Phi, "Y": Y, "gamma": gamma}


# ---- the ratios (reference quantities only) ------------------------------------------------------
def state_wise_ratio(inst: dict) -> float:
    """(||dL/dA||^2 + ||dL/dB||^2) / (2 kappa lambda(A) (L - L*)), square loss."""
    A, B, Phi, Y, gamma = inst["A"], inst["B"], inst["Phi"], inst["Y"], inst["gamma"]
    dA, dB = ref.gradients(A, B, Phi, Y, gamma, "square")
    E = ref.square_excess(ref.end_to_end_weight(A, B, gamma), Phi, Y)
    kappa = ref.pl_constant(Phi)
    denominator = 2 * kappa * ref.rate_constant(A, gamma) * E
    return float((np.sum(dA * dA) + np.sum(dB * dB)) / denominator) if denominator > 0 else np.inf


def metric_ratio(inst: dict) -> float:
    """lambda_min(K) / lambda(A) with K = J J^T (reference Jacobian of W)."""
    K = ref.metric(inst["A"], inst["B"], inst["gamma"])
    return float(np.linalg.eigvalsh(K)[0] / ref.rate_constant(inst["A"], inst["gamma"]))


def uniform_ratio(inst: dict) -> float:
    """lambda(A) (1 + gamma sqrt(m))^2."""
    m = inst["A"].shape[0]
    return float(ref.rate_constant(inst["A"], inst["gamma"]) * (1 + inst["gamma"] * np.sqrt(m)) ** 2)


def softmax_norm_ratio(inst: dict) -> float:
    """lambda(A) (1 + gamma ||sigma(A)||_2)^2."""
    S = ref.softmax_columns(inst["A"])
    return float(ref.rate_constant(inst["A"], inst["gamma"]) * (1 + inst["gamma"] * np.linalg.norm(S, 2)) ** 2)


def condition_ratio(inst: dict) -> float:
    """((1 + gamma) / (1 - gamma)) / cond_1(U)."""
    gamma = inst["gamma"]
    return float((1 + gamma) / (1 - gamma) / np.linalg.cond(ref.implicit_matrix(inst["A"], gamma), 1))


def naive_ratio(inst: dict) -> float:
    """lambda(A) (1 + gamma)^2: the naive bound is false wherever this is below 1."""
    return float(ref.rate_constant(inst["A"], inst["gamma"]) * (1 + inst["gamma"]) ** 2)


def _tight_state(shapes):
    def start(rng):
        from .sampling import tight_state_wise_case

        c = tight_state_wise_case(int(rng.integers(2**32)), *shapes, float(rng.uniform(0.2, 0.8)))
        return {"A": c.A, "B": c.B + 1e-3 * rng.standard_normal(c.B.shape), "Phi": c.Phi, "Y": c.Y, "gamma": c.gamma}

    return start


def _concentrated(shapes, gap: float = 6.0, gamma: float = 0.95):
    def start(rng):
        m, m_y, n = shapes
        A = rng.standard_normal((m, m))
        A[0, :] += gap
        return {
            "A": A,
            "B": rng.standard_normal((m_y, m)),
            "Phi": rng.standard_normal((m, n)),
            "Y": rng.standard_normal((m_y, n)),
            "gamma": gamma,
        }

    return start


FAMILIES = [
    Family(
        "STATE-WISE",
        "m<m_y",
        (2, 3, 4),
        state_wise_ratio,
        "||grad||^2 >= 2 kappa lambda (L - L*)",
        "attained (= 1) at the constructed state B = 0, u_kappa = u_lambda, L* = 0",
        _tight_state((2, 3, 4)),
    ),
    Family(
        "STATE-WISE",
        "m<n",
        (2, 1, 4),
        state_wise_ratio,
        "||grad||^2 >= 2 kappa lambda (L - L*)",
        "attained (= 1) at the constructed state B = 0, u_kappa = u_lambda, L* = 0",
        _tight_state((2, 1, 4)),
    ),
    Family(
        "STATE-WISE",
        "m>n",
        (3, 1, 2),
        state_wise_ratio,
        "||grad||^2 >= 2 kappa lambda (L - L*)",
        "attained (= 1) at the constructed state B = 0, u_kappa = u_lambda, L* = 0",
        _tight_state((3, 1, 2)),
    ),
    Family(
        "ENERGY",
        "m<m_y",
        (2, 3, 1),
        metric_ratio,
        "K >= lambda(A) I",
        "attained (= 1) at every state with m < m_y (the W J_j^2 W^T share a null space)",
    ),
    Family(
        "ENERGY",
        "m>=m_y",
        (3, 2, 1),
        metric_ratio,
        "K >= lambda(A) I",
        "attained in the limit B -> 0 (K -> (U^-T U^-1) (x) I)",
    ),
    *(
        Family(
            "UNIFORM-RATE",
            f"m={m}, gamma={g}",
            (m, 1, 1),
            uniform_ratio,
            "lambda(A) >= 1/(1 + gamma sqrt m)^2",
            "not attained at a finite m for a fixed gamma; -> 1 like 1 + O(1/sqrt m) at the concentrated softmax "
            "(and trivially as gamma -> 0, where both sides -> 1)",
            _concentrated((m, 1, 1), gap=30.0, gamma=g),
            gamma=g,
        )
        for m in (4, 16)
        for g in (0.5, 0.9)
    ),
    Family(
        "UNIFORM-RATE",
        "m=4, gamma=0.9, ||S||_2 form",
        (4, 1, 1),
        softmax_norm_ratio,
        "lambda(A) >= 1/(1 + gamma ||sigma(A)||_2)^2",
        "the triangle inequality ||I - gamma S|| <= 1 + gamma ||S||; attained when S's top singular pair is "
        "(-u, u)-aligned",
        _concentrated((4, 1, 1), gamma=0.9),
        gamma=0.9,
    ),
    Family(
        "WELL-POSED",
        "m=4",
        (4, 1, 1),
        condition_ratio,
        "cond_1(U) <= (1 + gamma)/(1 - gamma)",
        "attained in the limit of every column of sigma(A) at e_1 (U = I - gamma e_1 1^T)",
        _concentrated((4, 1, 1)),
    ),
    Family(
        "NAIVE-BOUND-FALSE",
        "m=8",
        (8, 1, 1),
        naive_ratio,
        "lambda(A) >= 1/(1 + gamma)^2 (false)",
        "false: the smallest ratio is how far below the naive bound lambda can go",
        _concentrated((8, 1, 1)),
    ),
]


def search(family: Family, *, starts: int = 4, seed: int = 0, max_evaluations: int = 3000) -> dict:
    """The smallest ratio of ``family`` found by Nelder-Mead from ``starts`` seeded random starts
    (N(0, 1) entries, logit(gamma) ~ N(0, 1)) and the family's informed start (the constructed
    tight state, or a concentrated softmax at gamma = 0.95); returns the ratio, the instance, the
    evaluations and the time."""
    rng = np.random.default_rng([seed, len(family.claim), family.dim])
    t0 = time.perf_counter()

    def objective(x):
        with np.errstate(all="ignore"):
            try:
                r = family.ratio(family.instance(x))
            except (np.linalg.LinAlgError, ValueError, ZeroDivisionError):
                return np.inf
        return float(np.log(r)) if np.isfinite(r) and r > 0 else np.inf

    best, evaluations = None, 0
    x0s = [rng.standard_normal(family.dim) for _ in range(starts)]
    if family.informed is not None:
        x0s.append(family.vector(family.informed(rng)))
    for x0 in x0s:
        res = minimize(
            objective,
            x0,
            method="Nelder-Mead",
            options={"maxfev": max_evaluations, "adaptive": True, "xatol": 1e-10, "fatol": 1e-14},
        )
        evaluations += res.nfev
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    inst = family.instance(best.x)
    return {
        "claim": family.claim,
        "regime": family.regime,
        "statement": family.statement,
        "note": family.note,
        "ratio": float(np.exp(best.fun)),
        "evaluations": int(evaluations),
        "seconds": time.perf_counter() - t0,
        "instance": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in inst.items()},
        "where": {"m": family.shapes[0], "m_y": family.shapes[1], "n": family.shapes[2], "gamma": inst["gamma"]},
    }


def load_tight(name: str) -> dict:
    """The stored tight instance ``name`` ("<claim>/<regime>") as float64 arrays."""
    table = json.loads(DATA.read_text())["instances"]
    if name not in table:
        raise ValueError(f"unknown tight instance {name!r}; known: {sorted(table)}")
    entry = table[name]
    return {k: (np.array(v, dtype=np.float64) if isinstance(v, list) else v) for k, v in entry["instance"].items()} | {
        "ratio": entry["ratio"]
    }


def tight_names(claim: str) -> list[str]:
    """The stored tight instances of a claim (empty if none were stored)."""
    if not DATA.exists():
        return []
    return sorted(k for k in json.loads(DATA.read_text())["instances"] if k.split("/")[0] == claim)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m verify.sharpness", description=__doc__.splitlines()[0])
    p.add_argument("--starts", type=int, default=4, help="seeded starts per family (default 4)")
    p.add_argument("--max-evaluations", type=int, default=3000, help="per start (default 3000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--write", action="store_true", help=f"store the tightest instances in {DATA}")
    p.add_argument("--only", metavar="CLAIM", help="search only this claim's families (others stay as stored)")
    args = p.parse_args(argv)
    if args.starts < 1 or args.max_evaluations < 1 or args.seed < 0:
        p.error("--starts and --max-evaluations must be >= 1 and --seed >= 0")
    families = [f for f in FAMILIES if args.only in (None, f.claim)]
    if not families:
        p.error(f"--only: no family of claim {args.only!r}; known: {sorted({f.claim for f in FAMILIES})}")
    results = []
    for family in families:
        r = search(family, starts=args.starts, seed=args.seed, max_evaluations=args.max_evaluations)
        results.append(r)
        print(
            f"{r['claim']:<28} {r['regime']:<7} tightest ratio {r['ratio']:.10f}  ({r['evaluations']} evaluations, "
            f"{r['seconds']:.1f} s; gamma {r['where']['gamma']:.3f})  {r['note']}",
            flush=True,
        )
    if args.write:
        DATA.parent.mkdir(exist_ok=True)
        command = (
            f"python -m verify.sharpness --starts {args.starts} --max-evaluations {args.max_evaluations} "
            f"--seed {args.seed} --write"
        )
        payload = json.loads(DATA.read_text()) if DATA.exists() and args.only else {"instances": {}}
        known = {f"{f.claim}/{f.regime}" for f in FAMILIES}
        payload["instances"] = {k: v for k, v in payload["instances"].items() if k in known}
        for r in results:
            payload["instances"][f"{r['claim']}/{r['regime']}"] = r | {"command": command}
        DATA.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
        print(f"wrote {DATA}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
