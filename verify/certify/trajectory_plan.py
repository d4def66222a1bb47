"""Plan entries of the trajectory and remaining finite certificates (GD-RATE, INTEGRATED, NONCONVEX,
CONSERVATION, STATIONARY): configurations, their instances, and the certificate of each, rebuilt
from the configuration alone (:mod:`verify.certify.plan` dispatches here).

Instances (``config["instance"]``):

    random        verify.sampling.make_case(seed, m, m_y, n, gamma) (well-conditioned features for
                  the flows)
    width-one     m = 1: A = 0, B ~ N(0, 1), Phi (1 x n) ~ N(0, 1/n), Y ~ N(0, 1). sigma(A) = 1, so
                  dL/dA = 0 and L is a quadratic in B whose Hessian is kappa lambda I with
                  kappa = ||Phi||^2, lambda = 1/(1 - gamma)^2: descent gives E_{k+1} = (1 - lr kappa
                  lambda)^2 E_k and the flow E_t = E_0 exp(-2 kappa lambda t), exactly. The refined
                  descent bound and the integrated bound are equalities there (tight at every step)
    exact-tight   verify.certify.instances.exact_tight_case: at its first step the curvature along
                  the step is kappa (lambda = 1), so a step above 1/kappa loses the contraction
    minimisers    two global minimisers (A_k, W* U_k), A_k = 3 N(0, 1) (NONCONVEX)

Step sizes are placed with the float64 reference (verify.reference), never with a certificate:
lr = lr_factor / M, M the largest curvature along the run's steps, phi_k''(s) / ||g_k||^2 at
s in {0, lr/2, lr} by central differences of the reference's complex-step directional derivative,
iterated until lr M = lr_factor (the run depends on lr). At width one M = kappa lambda in closed form.
"""

from __future__ import annotations

import numpy as np

from .. import reference as R
from .descent import certify_descent, descent_run
from .finite import certify_conservation, certify_nonconvex, certify_stationary
from .flow import certify_integrated
from .instances import reference_floor
from .proof import CERTIFIED, CONSISTENT, NOT_CERTIFIED, VIOLATED, Certificate
from .trajectory_instances import build, place_horizon, place_step

CLAIMS = ("GD-RATE", "INTEGRATED", "NONCONVEX", "CONSERVATION", "STATIONARY")
HEADLINE = {
    "GD-RATE": "worst ratio / bound",
    "INTEGRATED": "worst E(t) / bound(t)",
    "NONCONVEX": "gap",
    "CONSERVATION": "max |1^T dL/dA|",
    "STATIONARY": "||gamma S||_1",
}
FALSE = [NOT_CERTIFIED, VIOLATED]
INSTANCES = {
    "GD-RATE": ("random", "width-one", "exact-tight"),
    "INTEGRATED": ("random", "width-one"),
    "NONCONVEX": ("minimisers",),
    "CONSERVATION": ("random",),
    "STATIONARY": ("random",),
}
#: keys a configuration may carry, per claim (besides claim, kind, expect, instance and the descriptive ones)
KEYS = {
    "GD-RATE": ("seed", "m", "m_y", "n", "gamma", "steps", "lr", "lr_factor", "rate_factor"),
    "INTEGRATED": (
        "seed",
        "m",
        "m_y",
        "n",
        "gamma",
        "T",
        "rate_factor",
        "gamma_in_gradient",
        "bits",
        "order",
        "tolerance_bits",
    ),
    "NONCONVEX": ("seed", "m", "m_y", "n", "gamma", "gap_bound"),
    "CONSERVATION": ("seed", "m", "m_y", "n", "gamma", "jacobian_scale"),
    "STATIONARY": ("seed", "m", "m_y", "n", "gamma", "multiplier", "transpose"),
}
DESCRIPTIVE = ("label", "false_by", "nominal", "ratio_ref")


# ---- configurations ------------------------------------------------------------------------------------
def _entry(claim, kind, instance, expect, **params) -> dict:
    return {"claim": claim, "kind": kind, "instance": instance, "expect": sorted(expect), **params}


def _descent(kind, instance, expect, seed, m, m_y, n, gamma, steps, lr_factor, **params) -> dict:
    config = _entry(
        "GD-RATE",
        kind,
        instance,
        expect,
        seed=seed,
        m=m,
        m_y=m_y,
        n=n,
        gamma=gamma,
        steps=steps,
        lr_factor=lr_factor,
        **params,
    )
    if instance == "width-one":
        _, _, Phi, _ = build(config)
        config["lr"] = float(lr_factor * (1 - gamma) ** 2 / float(np.sum(Phi * Phi)))  # 1/M = 1/(kappa lambda)
    elif instance == "exact-tight":
        A, B, Phi, _ = build(config)
        config["lr"] = float(lr_factor / R.pl_constant(Phi))  # first step: M = kappa, lambda = 1
    else:
        A, B, Phi, Y = build(config)
        config["lr"], config["ratio_ref"] = place_step(A, B, Phi, Y, gamma, steps, lr_factor)
        config["label"] = config.get("label", "") + f" (lr M = {config['ratio_ref']:.3g})"
    return config


def _flow(kind, instance, expect, seed, m, m_y, n, gamma, decades=3.2, **params) -> dict:
    """An INTEGRATED entry whose horizon T is placed by :func:`place_horizon` for ``decades`` of decay
    (at width one in closed form: E_t = E_0 exp(-2 kappa lambda t))."""
    config = _entry("INTEGRATED", kind, instance, expect, seed=seed, m=m, m_y=m_y, n=n, gamma=gamma, T=1.0, **params)
    A, B, Phi, Y = build(config)
    if instance == "width-one":
        rate = float(np.sum(Phi * Phi)) / (1 - gamma) ** 2
        config["T"] = float(decades * np.log(10) / (2 * rate))
    else:
        config["T"] = place_horizon(A, B, Phi, Y, gamma, decades)
    return config


def _finite(claim, kind, expect, seed, m, m_y, n, gamma, **params) -> dict:
    instance = "minimisers" if claim == "NONCONVEX" else "random"
    return _entry(claim, kind, instance, expect, seed=seed, m=m, m_y=m_y, n=n, gamma=gamma, **params)


def _nonconvex_pair(seed, m, m_y, n, gamma, margins) -> list[dict]:
    """NONCONVEX with the gap bound (1 - 1e-3) x the reference gap (true) and (1 + eps) x it (false)."""
    base = _finite("NONCONVEX", "instance", [CERTIFIED], seed, m, m_y, n, gamma, label="two minimisers, gap > 0")
    A1, B1, A2, B2, Phi, Y = build(base)

    def excess(A, B):
        return R.square_excess(R.end_to_end_weight(A, B, gamma), Phi, Y)

    gap = excess((A1 + A2) / 2, (B1 + B2) / 2) - (excess(A1, B1) + excess(A2, B2)) / 2
    floor = reference_floor("STATE-WISE", {"A": A1, "B": B1, "Phi": Phi, "gamma": gamma})
    out = [
        base,
        base
        | {
            "kind": "tight",
            "gap_bound": float(gap * (1 - 1e-3)),
            "ratio_ref": float(gap),
            "label": "gap > (1 - 1e-3) x reference gap",
        },
    ]
    for nominal in margins:
        eps = max(nominal, floor)
        out.append(
            base
            | {
                "kind": "canary",
                "expect": FALSE,
                "gap_bound": float(gap * (1 + eps)),
                "false_by": eps,
                "nominal": nominal,
                "ratio_ref": float(gap),
                "label": f"false by {eps:.1e}: gap bound",
            }
        )
    return out


def entries(seed: int, *, quick: bool) -> list[dict]:
    """The trajectory and finite entries of the plan (quick: the default campaign's subset)."""
    plan: list[dict] = []
    # GD-RATE: the discrete Theorem 1 along descent runs
    plan.append(
        _descent("instance", "random", [CERTIFIED], seed, 4, 2, 8, 0.9, 30, 0.5, label="random state, 30 steps")
    )
    one = dict(seed=seed, m=1, m_y=2, n=5, gamma=0.5)
    plan.append(
        _descent(
            "tight",
            "width-one",
            [CERTIFIED],
            steps=10,
            lr_factor=0.5,
            rate_factor=1 - 1e-3,
            label="m = 1 (refined bound an equality), rate 1 - 1e-3",
            **one,
        )
    )
    plan.append(
        _descent(
            "tight",
            "width-one",
            [CERTIFIED],
            steps=3,
            lr_factor=0.97,
            rate_factor=1 - 1e-3,
            label="m = 1, lr = 0.97/M: the simple bound's rate constant is tight to 2 - x = 1.03",
            **one,
        )
    )
    plan.append(
        _descent(
            "equality",
            "width-one",
            [NOT_CERTIFIED],
            steps=6,
            lr_factor=0.5,
            label="m = 1: the refined bound is an equality",
            **one,
        )
    )
    for nominal in (1e-3, 1e-12, 0.05):
        plan.append(
            _descent(
                "canary",
                "width-one",
                FALSE,
                steps=6,
                lr_factor=0.5,
                rate_factor=1 + nominal,
                false_by=nominal,
                nominal=nominal,
                label=f"rate constant x (1 + {nominal:g}) (m = 1)",
                **one,
            )
        )
    plan.append(
        _descent(
            "canary",
            "width-one",
            FALSE,
            steps=6,
            lr_factor=1.05,
            false_by=0.05,
            nominal=0.05,
            label="step 5% above 1/M (m = 1): contraction lost",
            **one,
        )
    )
    plan.append(
        _descent(
            "canary",
            "random",
            FALSE,
            seed,
            4,
            2,
            8,
            0.9,
            30,
            1.05,
            false_by=0.05,
            nominal=0.05,
            label="step 5% above 1/max curvature",
        )
    )
    # a step-size condition loosened by a few percent still refutes the 5% canary's condition (its
    # margin straddles 0); this one is certified by any loosening above 1%
    plan.append(
        _descent(
            "canary",
            "random",
            FALSE,
            seed,
            4,
            2,
            8,
            0.9,
            30,
            1.01,
            false_by=0.01,
            nominal=0.01,
            label="step 1% above 1/max curvature",
        )
    )
    if not quick:
        plan.append(
            _descent("instance", "random", [CERTIFIED], seed, 16, 4, 32, 0.9, 200, 0.5, label="m = 16, 200 steps")
        )
        plan.append(
            _descent("instance", "random", [CERTIFIED], seed, 8, 3, 12, 0.5, 100, 0.8, label="m = 8, 100 steps")
        )
        tight = dict(seed=seed, m=4, m_y=2, n=8, gamma=0.9, steps=1)
        plan.append(
            _descent(
                "tight", "exact-tight", [CERTIFIED], lr_factor=0.95, label="exact tight state, 0.95/kappa", **tight
            )
        )
        plan.append(
            _descent(
                "canary",
                "exact-tight",
                FALSE,
                lr_factor=1.05,
                false_by=0.05,
                nominal=0.05,
                label="exact tight state, step 5% above 1/kappa",
                **tight,
            )
        )
    # INTEGRATED: the validated flow
    plan.append(
        _flow(
            "instance",
            "random",
            [CERTIFIED],
            seed,
            2,
            1,
            4,
            0.5,
            bits=64,
            order=10,
            tolerance_bits=50,
            label="m = 2, 3 decades",
        )
    )
    w1 = dict(seed=seed, m=1, m_y=2, n=5, gamma=0.5)
    plan.append(
        _flow(
            "tight",
            "width-one",
            [CERTIFIED],
            rate_factor=1 - 1e-3,
            bits=64,
            order=10,
            tolerance_bits=50,
            label="m = 1 (an equality), rate 1 - 1e-3",
            **w1,
        )
    )
    plan.append(
        _flow(
            "equality",
            "width-one",
            [NOT_CERTIFIED],
            bits=64,
            order=10,
            tolerance_bits=50,
            label="m = 1: E_t = E_0 exp(-2 kappa lambda t)",
            **w1,
        )
    )
    for nominal in (1e-3, 1e-12, 0.05):
        precise = (
            dict(bits=128, order=20, tolerance_bits=110)
            if nominal < 1e-6
            else dict(bits=64, order=10, tolerance_bits=50)
        )
        plan.append(
            _flow(
                "canary",
                "width-one",
                FALSE,
                rate_factor=1 + nominal,
                false_by=nominal,
                nominal=nominal,
                label=f"rate constant x (1 + {nominal:g}) (m = 1)",
                **precise,
                **w1,
            )
        )
    plan.append(
        _flow(
            "canary",
            "random",
            FALSE,
            seed,
            2,
            1,
            4,
            0.5,
            gamma_in_gradient=False,
            bits=64,
            order=10,
            tolerance_bits=50,
            false_by=1.0,
            nominal=1.0,
            label="perturbed field: gamma dropped in dL/dA",
        )
    )
    if not quick:
        plan.append(
            _flow(
                "instance",
                "random",
                [CERTIFIED],
                seed,
                4,
                2,
                8,
                0.5,
                bits=64,
                order=10,
                tolerance_bits=50,
                label="m = 4, m_y = 2, 3 decades",
            )
        )
        plan.append(
            _flow(
                "instance",
                "random",
                [CERTIFIED],
                seed,
                3,
                1,
                6,
                0.5,
                bits=64,
                order=10,
                tolerance_bits=50,
                label="m = 3, m_y = 1, 3 decades",
            )
        )
    # NONCONVEX, CONSERVATION, STATIONARY
    plan += _nonconvex_pair(seed, 4, 2, 8, 0.9, (1e-3, 1e-12))
    for claim, key in (("CONSERVATION", "jacobian_scale"), ("STATIONARY", "multiplier")):
        plan.append(
            _finite(
                claim, "instance", [CONSISTENT], seed, 4, 2, 8, 0.9, label="exact at rationals; consistent at sigma(A)"
            )
        )
        for nominal in (1e-3, 1e-12):
            plan.append(
                _finite(
                    claim,
                    "canary",
                    FALSE,
                    seed,
                    4,
                    2,
                    8,
                    0.9,
                    false_by=nominal,
                    nominal=nominal,
                    label=f"false by {nominal:g}: {key}",
                    **{key: 1 + nominal},
                )
            )
    plan.append(
        _finite(
            "STATIONARY",
            "canary",
            FALSE,
            seed,
            4,
            2,
            8,
            0.9,
            transpose=False,
            false_by=1.0,
            nominal=1.0,
            label="dL/dB U instead of U^T",
        )
    )
    if not quick:
        plan += _nonconvex_pair(seed, 8, 3, 12, 0.5, (1e-6,))[:1]
        plan.append(_finite("CONSERVATION", "instance", [CONSISTENT], seed, 16, 4, 32, 0.9, label="m = 16"))
        plan.append(_finite("STATIONARY", "instance", [CONSISTENT], seed, 16, 4, 32, 0.9, label="m = 16"))
    return plan


# ---- running ---------------------------------------------------------------------------------------------
def check_config(config: dict) -> dict:
    """A configuration of one of CLAIMS as :func:`entries` makes them, or ValueError naming the key."""
    claim = config["claim"]
    allowed = {"claim", "kind", "expect", "instance", *KEYS[claim], *DESCRIPTIVE}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ValueError(f"config has keys {unknown} that a {claim} entry does not take; allowed: {sorted(allowed)}")
    if config.get("instance") not in INSTANCES[claim]:
        raise ValueError(
            f"config['instance'] must be one of {list(INSTANCES[claim])} for {claim}; got {config.get('instance')!r}"
        )
    for key in (
        ("m", "m_y", "n", "gamma")
        + (("steps", "lr") if claim == "GD-RATE" else ())
        + (("T",) if claim == "INTEGRATED" else ())
    ):
        if key not in config:
            raise ValueError(f"config lacks {key!r} (a {claim} entry needs it)")
    for key in ("seed", "m", "m_y", "n", "steps", "bits", "order", "tolerance_bits"):
        value = config.get(key, 1)
        lowest = 0 if key == "seed" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            raise ValueError(f"config[{key!r}] must be an integer >= {lowest}; got {value!r}")
    for key in ("gamma", "lr", "lr_factor", "rate_factor", "T", "gap_bound", "jacobian_scale", "multiplier"):
        value = config.get(key, 0.5)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ValueError(f"config[{key!r}] must be a finite number; got {value!r}")
    for key in ("gamma_in_gradient", "transpose"):
        if not isinstance(config.get(key, True), bool):
            raise ValueError(f"config[{key!r}] must be true or false; got {config[key]!r}")
    return config


def run_entry(config: dict) -> Certificate:
    """The certificate of one entry, from the configuration alone."""
    claim = config["claim"]
    instance = {k: config[k] for k in ("instance", "seed", "m", "m_y", "n", "gamma") if k in config}
    if claim == "GD-RATE":
        A, B, Phi, Y = build(config)
        As, Bs = descent_run(A, B, Phi, Y, config["gamma"], config["lr"], config["steps"])
        return certify_descent(
            As, Bs, Phi, Y, config["gamma"], config["lr"], rate_factor=config.get("rate_factor", 1.0), instance=instance
        )
    if claim == "INTEGRATED":
        A, B, Phi, Y = build(config)
        return certify_integrated(
            A,
            B,
            Phi,
            Y,
            config["gamma"],
            config["T"],
            rate_factor=config.get("rate_factor", 1.0),
            gamma_in_gradient=config.get("gamma_in_gradient", True),
            bits=config.get("bits", 64),
            order=config.get("order", 10),
            tolerance=2.0 ** -config.get("tolerance_bits", 50),
            instance=instance,
        )
    if claim == "NONCONVEX":
        return certify_nonconvex(
            *build(config), config["gamma"], gap_bound=config.get("gap_bound", 0.0), instance=instance
        )
    A, B, Phi, Y = build(config)
    if claim == "CONSERVATION":
        return certify_conservation(
            A, B, Phi, Y, config["gamma"], jacobian_scale=config.get("jacobian_scale", 1.0), instance=instance
        )
    return certify_stationary(
        A,
        B,
        Phi,
        Y,
        config["gamma"],
        multiplier=config.get("multiplier", 1.0),
        transpose=config.get("transpose", True),
        instance=instance,
    )
