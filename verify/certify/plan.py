"""The plan of `python -m verify --certify`, as data the campaign can run as a tier.

    entries(seed, quick=...)  JSON-serialisable configurations, one per certificate
    run_entry(config)         the certificate, rebuilt from the configuration alone (replayable)
    judge(config, cert)       whether the verdict is one of config["expect"]

Kinds of entry:

    instance  a true claim at a sampled or fixed instance: certified (consistent for ENERGY and
              TRUST-REGION, whose equations balls cannot prove);
    tight     a true claim whose bound is within a few percent of the observed value: a perturbed
              tight state (ratio ~1.02), the concentrated softmax, or the bound placed 1e-3 below
              the float64 reference value (bound_factor = (1 - 1e-3) ratio_ref and the like). A
              factor the certificate computes (gradient, lambda, kappa, L - L*, K, H) off by more
              than the margin makes it violated;
    canary    a FALSE statement, false by 1e-12 to 1e-3 relative: a bound placed above the float64
              reference value (verify.reference; never the certificate's own numbers), a wrong K
              (second_term_scale), a wrong multiplier, a step dt above the admissible bound.
              Expected: violated or not certified. A factor off by more than the canary's margin
              in the other direction makes it certified: the run fails;
    equality  an instance where the claim holds with equality in exact arithmetic (m = 1, m < m_y
              for K >= lambda(A) I, the exact tight state): no ball can decide it, expected "not
              certified". A straddling ball counted as a proof makes it certified: the run fails.

A canary's margin is max(nominal, the reference's error bound) (instances.reference_floor: 16x
the first-order rounding estimate), so that it is false whatever the rounding of the reference;
the 1e-12 canaries sit at small, well-conditioned instances (gamma = 0.5, orthonormal features)
where that bound is below 1e-12.
"""

from __future__ import annotations

import json

import numpy as np

from .instances import STATE_CLAIMS, build, reference_values
from .proof import CERTIFIED, CLAIMS, CONSISTENT, NOT_CERTIFIED, VERDICTS, VIOLATED, Certificate
from .statements import (
    certify_energy,
    certify_naive_bound_false,
    certify_state_wise,
    certify_trust_region,
    certify_uniform_rate,
)

KINDS = ("instance", "tight", "canary", "equality")
#: the verdict of a true claim's proof: equations make ENERGY and TRUST-REGION at best consistent
PROOF = {
    "NAIVE-BOUND-FALSE": CERTIFIED,
    "UNIFORM-RATE": CERTIFIED,
    "STATE-WISE": CERTIFIED,
    "ENERGY": CONSISTENT,
    "TRUST-REGION": CONSISTENT,
}
FALSE = [VIOLATED, NOT_CERTIFIED]
#: nominal relative margins of the canaries
CANARY_MARGINS = (1e-3, 1e-6, 1e-9, 1e-12)
#: the true bound sits this far (relative) below the reference value in the "tight" pairs
TIGHT_MARGIN = 1e-3
#: ratio observed/bound aimed at by the perturbed tight states and the NAIVE-BOUND-FALSE gap
NEAR_TIGHT = 1.02

#: the enclosure shown in the table for each claim
HEADLINE = {
    "NAIVE-BOUND-FALSE": "ratio",
    "UNIFORM-RATE": "ratio",
    "STATE-WISE": "ratio",
    "ENERGY": "lambda_min(K) / lambda(A)",
    "TRUST-REGION": "lambda_min(G)",
}


# ---- trajectory and finite certificates: GD-RATE, INTEGRATED, NONCONVEX, CONSERVATION, STATIONARY ----
# (their entries, instances and runs live in verify/certify/trajectory_plan.py; entries(), check_config()
# and run_entry() below hand them over there)
from . import trajectory_plan as _trajectory  # noqa: E402

HEADLINE.update(_trajectory.HEADLINE)
# ---- end of the trajectory block ----

#: configuration keys passed to the certificate as keyword arguments
FACTORS = {
    "NAIVE-BOUND-FALSE": ("bound_factor",),
    "UNIFORM-RATE": ("bound_factor",),
    "STATE-WISE": ("bound_factor",),
    "ENERGY": ("second_term_scale", "rate_factor", "energy_factor"),
    "TRUST-REGION": ("dt_factor", "dt_max", "step_gap", "multiplier"),
}
#: configuration keys naming a variant of the statement (strings, passed as keyword arguments)
OPTIONS = {"STATE-WISE": {"loss": ("square", "pseudo_huber")}}
#: configuration keys that only describe (they do not change the certificate)
DESCRIPTIVE = ("label", "false_by", "ratio_ref", "nominal")
INSTANCE_KEYS = ("instance", "seed", "m", "m_y", "n", "gamma", "a_scale", "logit_gap", "b_scale", "scale")
#: keys each kind of instance needs (states also m_y and n)
REQUIRED = {
    "random": ("seed", "m", "gamma"),
    "concentrated": ("m", "gamma"),
    "tight-state": ("seed", "m", "gamma", "b_scale"),
    "exact-tight": ("seed", "m", "gamma"),
}


# ---- configurations -----------------------------------------------------------------------------
def _entry(claim: str, kind: str, instance: str, expect, **params) -> dict:
    return {"claim": claim, "kind": kind, "instance": instance, "expect": sorted(expect), **params}


def _state(claim, kind, instance, seed, m, m_y, n, gamma=0.9, expect=None, **params) -> dict:
    return _entry(claim, kind, instance, expect or [PROOF[claim]], seed=seed, m=m, m_y=m_y, n=n, gamma=gamma, **params)


def _margin(nominal: float, floor: float) -> float:
    """A canary's relative margin: the nominal one, unless the reference's error could reach it."""
    return float(max(nominal, floor))


def _bisect(f, lo: float, hi: float, target: float, steps: int = 60) -> float:
    """x in [lo, hi] with f(x) ~ target, f(lo) < target < f(hi) (or reversed), by bisection."""
    increasing = f(hi) > f(lo)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if (f(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _ratio_key(claim: str) -> str:
    return "rate_ratio" if claim == "ENERGY" else "ratio"


def _tight_state(claim: str, seed: int, m: int, m_y: int, n: int, gamma: float, key: str | None = None) -> dict:
    """The tight state perturbed by B = b_scale N(0, 1), b_scale chosen (reference, bisection on a
    log scale) so that the reference ratio ``key`` (default: the claim's bound) is NEAR_TIGHT."""
    base = _state(claim, "tight", "tight-state", seed, m, m_y, n, gamma, b_scale=0.0)
    key = key or _ratio_key(claim)

    def ratio(log_b):
        return reference_values(base | {"b_scale": float(2.0**log_b)})[key]

    log_b = _bisect(ratio, -20.0, 4.0, NEAR_TIGHT, steps=30)
    config = base | {"b_scale": float(2.0**log_b)}
    config["ratio_ref"] = reference_values(config)[key]
    config["label"] = f"tight state + B, {key} ~{NEAR_TIGHT}"
    return config


def _naive_gap(m: int, gamma: float) -> dict:
    """The concentrated A whose logit gap puts lambda(A) at 0.98 / (1 + gamma)^2 (reference)."""
    base = _entry("NAIVE-BOUND-FALSE", "tight", "concentrated", [CERTIFIED], m=m, gamma=gamma, logit_gap=50.0)
    gap = _bisect(lambda x: reference_values(base | {"logit_gap": x})["ratio"], 0.0, 50.0, 2 - NEAR_TIGHT)
    config = base | {"logit_gap": float(gap)}
    config["ratio_ref"] = reference_values(config)["ratio"]
    config["label"] = f"concentrated A, ratio ~{2 - NEAR_TIGHT}"
    return config


def _pair(config: dict, factor: str, ratio_key: str, margins, *, upper_bound: bool = False) -> list[dict]:
    """A true entry with the bound TIGHT_MARGIN inside the reference value, and canaries with it
    outside by each margin. ``upper_bound``: the claim is value < factor x bound (NAIVE)."""
    ref = reference_values(config)
    ratio, floor = ref[ratio_key], ref["floor"]
    sign = 1 if upper_bound else -1
    true = config | {
        "kind": "tight",
        "expect": [PROOF[config["claim"]]],
        "ratio_ref": ratio,
        factor: float(ratio * (1 + sign * TIGHT_MARGIN)),
        "label": f"{factor} = {1 + sign * TIGHT_MARGIN:g} x ref",
    }
    out = [true]
    for nominal in margins:
        eps = _margin(nominal, floor)
        out.append(
            config
            | {
                "kind": "canary",
                "expect": FALSE,
                factor: float(ratio * (1 - sign * eps)),
                "false_by": eps,
                "nominal": nominal,
                "ratio_ref": ratio,
                "label": f"false by {eps:.1e}: {factor}",
            }
        )
    return out


def _equation_canaries(config: dict, margins) -> list[dict]:
    """Equations made false by a relative deviation of each margin (share from the reference)."""
    claim = config["claim"]
    share = reference_values(config)["second_term_share" if claim == "ENERGY" else "multiplier_share"]
    key = "second_term_scale" if claim == "ENERGY" else "multiplier"
    out = []
    for eps in margins:
        out.append(
            config
            | {
                "kind": "canary",
                "expect": FALSE,
                key: float(1 + eps / share),
                "false_by": eps,
                "nominal": eps,
                "label": f"false by {eps:.1e}: {key}",
            }
        )
    return out


def _step_entries(config: dict, margins) -> list[dict]:
    """TRUST-REGION with dt_max from the reference: G > 0 at (1 - 1e-3) dt_max with the step-bound
    items at 1 -+ 1e-3 (true), and G > 0 at (1 + eps) dt_max (false by eps)."""
    ref = reference_values(config)
    dt_max, floor = ref["dt_max"], ref["floor"]
    out = [
        config
        | {
            "kind": "tight",
            "dt_max": dt_max,
            "dt_factor": 1 - TIGHT_MARGIN,
            "step_gap": TIGHT_MARGIN,
            "label": "dt = (1 - 1e-3) dt_max(ref), gap 1e-3",
        }
    ]
    for nominal in margins:
        eps = _margin(nominal, floor)
        out.append(
            config
            | {
                "kind": "canary",
                "expect": FALSE,
                "dt_max": dt_max,
                "dt_factor": 1 + eps,
                "false_by": eps,
                "nominal": nominal,
                "label": f"false by {eps:.1e}: dt > dt_max(ref)",
            }
        )
    return out


def _pseudo_huber_state_wise(seed: int, full: bool, margins) -> list[dict]:
    """STATE-WISE for the pseudo-Huber loss, at n < m (where L* = 0 is proved). Random states sit at
    ratios ~1e7 (kappa_Phi / (1 + L)^3 is small at large L), so the evidence is the tight state of
    the square loss with (B, Phi, Y) scaled down: residuals r ~ scale^2, the loss near its quadratic
    limit, ratios 1.24 (scale 0.3), 1.026 (0.1), 1.0023 (0.03) by the reference, each pair placing
    the bound 1e-3 inside and the canaries outside the reference ratio (a wrong exponent of
    (1 + L) moves the ratio by ~L, which the scale 0.3 pair resolves)."""

    def ph(kind, instance, m, m_y, n, **params):
        return _state("STATE-WISE", kind, instance, seed, m, m_y, n, loss="pseudo_huber", **params)

    tight = ph("tight", "tight-state", 8, 3, 5, b_scale=0.0, scale=0.1, label="pseudo-Huber, scaled tight state")
    out = _pair(tight, "bound_factor", "ratio", margins)
    if full:
        shapes = ((8, 3, 5), (6, 2, 6))
        out += [ph("instance", "random", *shape, label="pseudo-Huber, random state") for shape in shapes]
        out.append(ph("tight", "tight-state", 8, 3, 5, b_scale=0.0, scale=0.03, label="pseudo-Huber, ratio ~1.002"))
        out += _pair(ph("tight", "tight-state", 8, 3, 5, b_scale=0.0, scale=0.3), "bound_factor", "ratio", (1e-6,))
        out += [
            ph(
                "instance",
                "random",
                8,
                3,
                5,
                expect=[CERTIFIED, NOT_CERTIFIED],
                scale=s,
                label=f"pseudo-Huber, (B, Phi, Y) x {s:g}",
            )
            for s in (1e300, 1e-300)
        ]
    return out


def entries(seed: int, *, quick: bool) -> list[dict]:
    """The plan for master seed ``seed``: quick=True the subset of the default campaign (<= 15 s
    on one core), quick=False the full plan of `python -m verify --certify`."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0; got {seed!r}")
    seed = int(seed)
    full = not quick
    plan: list[dict] = []
    few = (1e-3, 1e-12)
    margins = CANARY_MARGINS if full else few

    # NAIVE-BOUND-FALSE: lambda(A) < 1/(1+gamma)^2 at the concentrated A
    plan.append(_entry("NAIVE-BOUND-FALSE", "instance", "concentrated", [CERTIFIED], m=30, gamma=0.9, logit_gap=50.0))
    tight = _naive_gap(30, 0.9)
    plan.append(tight)
    plan += _pair(tight, "bound_factor", "ratio", margins[:-1], upper_bound=True)[1:]
    small = _entry("NAIVE-BOUND-FALSE", "instance", "concentrated", [CERTIFIED], m=4, gamma=0.5, logit_gap=50.0)
    plan += _pair(small, "bound_factor", "ratio", (1e-12,), upper_bound=True)[1:]

    # UNIFORM-RATE: lambda(A) >= 1/(1+gamma sqrt m)^2
    rand32 = _entry("UNIFORM-RATE", "instance", "random", [CERTIFIED], seed=seed, m=32, gamma=0.9, a_scale=1.0)
    plan.append(rand32)
    if full:
        plan.append(rand32 | {"gamma": 0.99, "a_scale": 3.0})
        plan.append(rand32 | {"m": 200, "gamma": 0.5})
        plan.append(_entry("UNIFORM-RATE", "instance", "concentrated", [CERTIFIED], m=32, gamma=0.9, logit_gap=50.0))
        plan.append(
            _entry(
                "UNIFORM-RATE",
                "tight",
                "concentrated",
                [CERTIFIED],
                m=256,
                gamma=0.99,
                logit_gap=50.0,
                label="concentrated A, m = 256 (ratio ~1.13)",
            )
        )
        plan += _pair(plan[-2], "bound_factor", "ratio", (1e-6,))
    plan += _pair(rand32, "bound_factor", "ratio", (1e-3, 1e-6, 1e-9) if full else (1e-3,))
    plan += _pair(rand32 | {"m": 4, "gamma": 0.5}, "bound_factor", "ratio", (1e-12,))[1:]

    # STATE-WISE
    shapes = [(32, 10, 200), (3, 6, 10), (40, 5, 20), (5, 3, 8)] if full else [(3, 6, 10), (5, 3, 8)]
    plan += [_state("STATE-WISE", "instance", "random", seed, *s) for s in shapes]
    plan.append(_tight_state("STATE-WISE", seed, 8, 3, 12, 0.9))
    small = _tight_state("STATE-WISE", seed, 4, 2, 6, 0.5)
    plan += _pair(small, "bound_factor", "ratio", margins)[1:]
    if full:
        plan.append(_tight_state("STATE-WISE", seed, 16, 4, 24, 0.9))
        big = _state("STATE-WISE", "instance", "random", seed, 32, 10, 200)
        plan += _pair(big, "bound_factor", "ratio", (1e-3, 1e-6))
        plan.append(
            _state(
                "STATE-WISE",
                "tight",
                "tight-state",
                seed,
                8,
                3,
                12,
                expect=[CERTIFIED, NOT_CERTIFIED],
                b_scale=0.0,
                label="float64 tight state, ratio 1+O(eps^2)",
            )
        )
        plan += [
            _state(
                "STATE-WISE",
                "instance",
                "random",
                seed,
                3,
                6,
                10,
                expect=[CERTIFIED, NOT_CERTIFIED],
                scale=s,
                label=f"(B, Phi, Y) x {s:g}",
            )
            for s in (1e300, 1e-300)
        ]
    else:
        plan += _pair(_state("STATE-WISE", "instance", "random", seed, 5, 3, 8), "bound_factor", "ratio", ())
    plan += _pseudo_huber_state_wise(seed, full, margins)
    eq = [NOT_CERTIFIED]
    plan.append(_state("STATE-WISE", "equality", "random", seed, 1, 3, 5, expect=eq, label="m = 1: an equality"))
    plan.append(_state("STATE-WISE", "equality", "exact-tight", seed, 4, 2, 8, expect=eq, label="exact tight state"))
    if full:
        plan.append(_state("STATE-WISE", "equality", "random", seed, 1, 1, 2, expect=eq, label="m = 1: an equality"))
        plan.append(
            _state("STATE-WISE", "equality", "exact-tight", seed, 8, 3, 16, expect=eq, label="exact tight state")
        )

    # ENERGY
    shapes = [(32, 10, 200), (40, 5, 20), (8, 2, 4)] if full else [(8, 2, 4)]
    plan += [_state("ENERGY", "instance", "random", seed, *s) for s in shapes]
    plan.append(_tight_state("ENERGY", seed, 8, 3, 12, 0.9))
    plan.append(_tight_state("ENERGY", seed, 8, 3, 12, 0.9, key="energy_ratio"))
    e824 = _state("ENERGY", "instance", "random", seed, 8, 2, 4)
    plan += _pair(e824, "rate_factor", "rate_ratio", (1e-3, 1e-9) if full else (1e-3,))
    plan += _pair(e824, "energy_factor", "energy_ratio", (1e-3, 1e-9) if full else (1e-3,))
    plan += _equation_canaries(e824, margins)
    # at m = 2, 3 the 53-bit residual balls are 2^-39 to 2^-35 wide: these canaries straddle 0 there with
    # k >= 34, so a loosened equation rule (2^-34) or a loop that stops at 53 bits passes them
    for shape in ((3, 2, 5), (2, 1, 3)):
        plan += _equation_canaries(_state("ENERGY", "instance", "random", seed, *shape), (1e-12,))
    if full:
        plan += _equation_canaries(_state("ENERGY", "instance", "random", seed, 32, 10, 200), (1e-12,))
        plan += [
            _state(
                "ENERGY",
                "instance",
                "random",
                seed,
                8,
                2,
                4,
                expect=[CONSISTENT, NOT_CERTIFIED],
                scale=s,
                label=f"(B, Phi, Y) x {s:g}",
            )
            for s in (1e300, 1e-300)
        ]
    plan.append(_state("ENERGY", "equality", "random", seed, 1, 3, 5, expect=eq, label="m = 1: K = lambda I"))
    plan.append(
        _state("ENERGY", "equality", "random", seed, 3, 6, 10, expect=eq, label="m < m_y: lambda_min(K) = lambda(A)")
    )
    plan.append(_state("ENERGY", "equality", "exact-tight", seed, 4, 2, 8, expect=eq, label="exact tight state"))

    # TRUST-REGION
    shapes = [(32, 10, 200), (3, 6, 10), (40, 5, 20)] if full else [(3, 6, 10)]
    plan += [_state("TRUST-REGION", "instance", "random", seed, *s) for s in shapes]
    t3 = _state("TRUST-REGION", "instance", "random", seed, 3, 6, 10)
    plan += _step_entries(t3, margins[:-1])
    plan += _equation_canaries(t3, margins)
    well = _state(
        "TRUST-REGION",
        "instance",
        "tight-state",
        seed,
        3,
        2,
        6,
        0.5,
        b_scale=1.0,
        label="orthonormal features, B ~ N(0, 1)",
    )
    plan += _step_entries(well, (1e-12,))[1:]
    if full:
        plan += _step_entries(_state("TRUST-REGION", "instance", "random", seed, 8, 2, 4), (1e-3,))
        plan += [
            _state(
                "TRUST-REGION",
                "instance",
                "random",
                seed,
                3,
                6,
                10,
                expect=[CONSISTENT, NOT_CERTIFIED],
                scale=s,
                label=f"(B, Phi, Y) x {s:g}",
            )
            for s in (1e300, 1e-300)
        ]
    plan += _trajectory.entries(seed, quick=quick)
    for config in plan:
        config.setdefault("label", config["kind"])
    json.dumps(plan, allow_nan=False)  # the plan is strict JSON
    return plan


# ---- running and judging --------------------------------------------------------------------------
_FUNCTIONS = {"STATE-WISE": certify_state_wise, "ENERGY": certify_energy, "TRUST-REGION": certify_trust_region}


def check_config(config) -> dict:
    """A configuration as entries() makes them, or ValueError naming the key and the rule."""
    if not isinstance(config, dict):
        raise ValueError(f"a plan entry must be a JSON object; got {type(config).__name__}")
    claim = config.get("claim")
    if claim not in CLAIMS:
        raise ValueError(f"config['claim'] must be one of {list(CLAIMS)}; got {claim!r}")
    if config.get("kind") not in KINDS:
        raise ValueError(f"config['kind'] must be one of {list(KINDS)}; got {config.get('kind')!r}")
    expect = config.get("expect")
    if not isinstance(expect, list) or not expect or any(v not in VERDICTS for v in expect):
        raise ValueError(f"config['expect'] must be a non-empty list of verdicts from {list(VERDICTS)}; got {expect!r}")
    if claim in _trajectory.CLAIMS:
        return _trajectory.check_config(config)
    options = OPTIONS.get(claim, {})
    allowed = {"claim", "kind", "expect", *INSTANCE_KEYS, *FACTORS[claim], *options, *DESCRIPTIVE}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ValueError(f"config has keys {unknown} that a {claim} entry does not take; allowed: {sorted(allowed)}")
    for key, values in options.items():
        if key in config and config[key] not in values:
            raise ValueError(f"config[{key!r}] must be one of {list(values)}; got {config[key]!r}")
    instance = config.get("instance")
    if instance not in REQUIRED:
        raise ValueError(f"config['instance'] must be one of {sorted(REQUIRED)}; got {instance!r}")
    required = REQUIRED[instance] + (("m_y", "n") if claim in STATE_CLAIMS and instance != "concentrated" else ())
    if claim in STATE_CLAIMS and instance == "concentrated":
        raise ValueError(f"a {claim} entry needs a state (random, tight-state or exact-tight), not a concentrated A")
    for key in required:
        if key not in config:
            raise ValueError(f"config lacks {key!r} (a {instance} {claim} entry needs {list(required)})")
    for key in ("seed", "m", "m_y", "n"):
        value = config.get(key, 1)
        lowest = 0 if key == "seed" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            raise ValueError(f"config[{key!r}] must be an integer >= {lowest}; got {value!r}")
    for key in ("gamma", "a_scale", "logit_gap", "b_scale", "scale", *FACTORS[claim]):
        value = config.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ValueError(f"config[{key!r}] must be a finite number; got {value!r}")
    return config


def run_entry(config: dict) -> Certificate:
    """The certificate of one plan entry, from the configuration alone."""
    config = check_config(config)
    claim = config["claim"]
    if claim in _trajectory.CLAIMS:
        return _trajectory.run_entry(config)
    arrays = build(config)
    kwargs = {k: config[k] for k in (*FACTORS[claim], *OPTIONS.get(claim, {})) if k in config}
    instance = {k: config[k] for k in INSTANCE_KEYS if k in config}
    if claim == "NAIVE-BOUND-FALSE":
        gap = config.get("logit_gap", 50.0) * config.get("scale", 1.0)
        return certify_naive_bound_false(config["m"], config["gamma"], logit_gap=gap, instance=instance, **kwargs)
    if claim == "UNIFORM-RATE":
        return certify_uniform_rate(arrays["A"], arrays["gamma"], instance=instance, **kwargs)
    return _FUNCTIONS[claim](
        arrays["A"], arrays["B"], arrays["Phi"], arrays["Y"], arrays["gamma"], instance=instance, **kwargs
    )


def judge(config: dict, certificate: Certificate) -> bool:
    """Whether the certificate's verdict is one the entry expects."""
    return certificate.status in config["expect"]
