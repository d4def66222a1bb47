"""The schema of campaign configurations, for configurations typed by hand (``--replay 'JSON'``).

A configuration is a flat JSON object of scalars (see :mod:`verify.claims`). ``--replay`` checks
it against this table before any claim code runs: JSON syntax (no NaN or Infinity, no duplicate
keys), every key known, every value of the right type and within its range, and the size of
the problem within a memory budget. Which keys a claim *requires* is not repeated here: they
are the keys its sampler produces (a printed failure always carries them all). A key outside
them is refused too (it would be silently ignored), unless the table marks it optional: read
with a default by some claim (``config.get(key, default)``) without its sampler producing it.

To add a configuration key, add one line to ``SCHEMA`` (name: type, interval or choices, what
it is). ``property_tests/hostile/test_hostile_cli.py`` samples every claim and fails, naming the key, if
a sampler emits a key that is not here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ._validation import loss_names
from .sampling import REGIMES


@dataclass(frozen=True)
class Key:
    """One configuration key: its type (int, float, bool or str), and for numbers an interval
    written as in mathematics ("[1, 100000]", "(0, 1)"; either end may be "inf"), or for strings
    the allowed values (a tuple, or a zero-argument callable returning one)."""

    kind: type
    rule: str | tuple | object = None
    what: str = ""
    optional: bool = False  # a claim reads it with a default although its sampler does not emit it

    def check(self, name: str, value) -> None:
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"key '{name}' must be true or false; got {value!r}")
            return
        if self.kind is str:
            if not isinstance(value, str):
                raise ValueError(f"key '{name}' must be a string; got {value!r}")
            choices = self.rule() if callable(self.rule) else self.rule
            if choices is not None and value not in choices:
                raise ValueError(f"key '{name}' must be one of {list(choices)}; got {value!r}")
            return
        if self.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"key '{name}' must be an integer; got {value!r}")
        if self.kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"key '{name}' must be a number; got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):  # (JSON 1e999 parses as inf)
            raise ValueError(f"key '{name}' must be finite; got {value!r}")
        low_open, low, high, high_open = _interval(self.rule)
        if (value < low or (low_open and value == low)) or (value > high or (high_open and value == high)):
            raise ValueError(f"key '{name}' must lie in {self.rule}; got {value!r}")


def _interval(text: str) -> tuple[bool, float, float, bool]:
    low, high = (float(x) for x in text[1:-1].split(","))
    return text[0] == "(", low, high, text[-1] == ")"


def _derivations():
    from theory.catalogue import DERIVATIONS  # the claim's own list: no second copy to drift

    return DERIVATIONS


def _tight_names():
    from .sharpness import DATA

    return tuple(json.loads(DATA.read_text())["instances"]) if DATA.exists() else ()


def _entry_points():
    from .hypotheses import ENTRIES

    return tuple(e[0] for e in ENTRIES)


#: largest m, m_y or n a replayed configuration may ask for (the campaign samples up to 60)
MAX_DIM = 1_000_000

#: Every configuration key the claims use. One line per key; see the module docstring.
SCHEMA: dict[str, Key] = {
    "seed": Key(int, f"[0, {2**64 - 1}]", "numpy Generator seed of the arrays"),
    "regime": Key(str, REGIMES, "width regime the shape was drawn from"),
    "m": Key(int, f"[1, {MAX_DIM}]", "width (A is m x m)"),
    "m_y": Key(int, f"[1, {MAX_DIM}]", "output dimension"),
    "n": Key(int, f"[1, {MAX_DIM}]", "number of samples"),
    "gamma": Key(float, "(0, 1)", "contraction factor"),
    "loss": Key(str, loss_names, "loss function (a registered name: verify.losses)"),
    # the samplers' ranges (a_scale <= 1000, spread <= 4): at spread = 12, inside the old [0, 12],
    # STATE-WISE "failed" (its tight state is not resolvable at a condition number of 1e12)
    "a_scale": Key(float, "[0, 1000]", "standard deviation of the entries of A"),
    "non_separable": Key(bool, None, "cross-entropy data with every feature under every label"),
    "well_conditioned": Key(bool, None, "Phi with singular values in [0.6, 1.2]"),
    # the samplers draw phi_scale and y_scale log-uniformly in [1e-2, 1e2]: the checks' tolerances
    # are derived for that range (at phi_scale = 1e100 STATE-WISE "failed")
    "phi_scale": Key(float, "[1e-2, 1e2]", "factor on Phi (data scales vary over decades)"),
    "y_scale": Key(float, "[1e-2, 1e2]", "factor on Y (square loss)"),
    "spread": Key(float, "[0, 4]", "decades spanned by the singular values of Phi"),
    "concentrated": Key(bool, None, "UNIFORM-RATE at the concentrated softmax (columns near e_1)"),
    "structured": Key(bool, None, "UNIFORM-RATE at the concentrated softmax by its 2 x 2 reduction (any width m)"),
    "tight": Key(str, _tight_names, "a stored tight instance of verify.sharpness (the claim/regime name)"),
    "method": Key(str, ("DOP853", "RK45", "Radau", "BDF", "LSODA"), "ODE method of the flow (INTEGRATED)"),
    "derivation": Key(str, _derivations, "name of a SymPy derivation (SYMBOLIC)"),
    "init_scale": Key(float, "(0, 100]", "scale of the common start W_0 (IMPLICIT-BIAS)"),
    "entry": Key(str, _entry_points, "public entry point given an input outside the hypotheses (HYPOTHESES)"),
    "violation": Key(int, "[0, 1000]", "which violation of that entry point (HYPOTHESES)"),
    "dataset": Key(str, ("synthetic", "digits", "idx"), "scale tier: Gaussian features, the 8x8 digits, or IDX files"),
    "idx_images": Key(str, None, "scale tier: the IDX images file (path as given to --idx)", optional=True),
    "idx_labels": Key(str, None, "scale tier: the IDX labels file (path as given to --idx)", optional=True),
    "pca": Key(int, "[1, 1024]", "scale tier: real features on their top pca principal components (INTEGRATED)"),
}

#: Memory budget of one replayed configuration (see :func:`estimated_bytes`).
REPLAY_MEMORY_LIMIT = 2**30

#: Per-claim caps where memory is not what limits: the SymPy derivation's cost grows like the
#: adjugate of a symbolic m x m matrix (factorially); the campaign samples m, m_y, n <= 3 there.
CLAIM_SIZE_LIMITS: dict[str, dict[str, int]] = {"GRAD-SYMBOLIC": {"m": 3, "m_y": 3, "n": 3}}


#: the ODE methods that build a dense Jacobian of the m^2 + m_y m states by finite differences
#: (one gradient evaluation per state, each time the Jacobian is refreshed)
IMPLICIT_METHODS = ("Radau", "BDF", "LSODA")
#: most states a replayed flow may integrate with an implicit method. Measured (INTEGRATED, square
#: loss, 2 loaded cores): Radau at 48 states 99 s, at 120 states 184 s, at 288 states over 300 s,
#: at m = 60 (3720 states) nothing for 10 minutes; the campaign samples LSODA at <= 50 states
IMPLICIT_REPLAY_STATES = 60


def estimated_bytes(config: dict, tier: str = "default") -> int:
    """A lower estimate of the memory a claim's check needs for this configuration (bytes).

    The dense float64 arrays of one evaluation -- A, S, U, LU(U) (4 m^2), B, W, dL/dB (3 m_y m),
    Phi (m n'), Y, outputs, G (3 m_y n') with n' = n (m_y + 1) for non-separable cross-entropy
    data (every column repeated under every label) -- plus the explicit metric K and, for
    cross-entropy, the Hessian and its least-squares copy ((m m_y)^2 each), the sparse
    separability LP (2 m + 1 nonzeros, 16 bytes each, per pair, n' (m_y - 1) pairs) and 100
    recorded states (m^2 + m_y m each). Python integers: no overflow.
    """
    if config.get("structured"):  # UNIFORM-RATE's concentrated softmax by a 2 x 2 reduction: O(1) memory
        return 8 * 30 * 30 * 10
    m, m_y, n = (int(config.get(k, 1)) for k in ("m", "m_y", "n"))
    if tier == "scale":
        # matrix-free (verify.scale): A, S, U, LU(U), Phi and the SVD's copies, Y, outputs, G, and
        # the records of INTEGRATED's flows (capped at 2^29 bytes there)
        return 8 * (4 * m * m + 3 * m_y * m + 3 * m * n + 3 * m_y * n) + 2**29
    cross_entropy = config.get("loss") == "cross_entropy"
    n_eff = n * (m_y + 1) if cross_entropy and config.get("non_separable") else n
    floats = 4 * m * m + 3 * m_y * m + m * n_eff + 3 * m_y * n_eff + (m * m_y) ** 2 + 100 * (m * m + m_y * m)
    if cross_entropy:
        floats += 2 * (m * m_y) ** 2 + 2 * (2 * m + 1) * n_eff * (m_y - 1)
    return 8 * floats


def _no_constants(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key '{key}'")
        out[key] = value
    return out


def parse_config(text: str) -> dict:
    """The JSON object in ``text`` (strict: no NaN/Infinity, no duplicate keys), or ValueError."""
    try:
        config = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err})") from None
    except RecursionError:
        raise ValueError("not valid JSON (nested too deeply)") from None
    except ValueError as err:  # from the hooks above, or an integer literal too long to convert
        raise ValueError(f"not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise ValueError(
            f"the configuration must be a JSON object {{\"key\": value, ...}}; got {type(config).__name__}"
        )
    return config


def claim_keys(claim, draws: int = 20) -> tuple[list[str], list[str]]:
    """(required, allowed): the keys every one of ``draws`` sampled configurations carries, and
    those any of them carries (samplers emit some keys only for some indices or options; the
    samplers are deterministic functions of the Generator and the index)."""
    samples = [claim.sample(np.random.default_rng(k), k) for k in range(draws)]
    required = [k for k in samples[0] if all(k in s for s in samples)]
    allowed = sorted({k for s in samples for k in s})
    return required, allowed


def validate_config(
    config: dict, claim_id: str, required: list[str] = (), allowed: list[str] = (), tier: str = "default"
) -> dict:
    """Check ``config``: the ``required`` keys present, every key in SCHEMA and (when ``allowed``
    is given) among the claim's keys, every value of the right type and range, the per-claim caps
    and the memory budget. Raises ValueError."""
    missing = [k for k in required if k not in config]
    if missing:
        raise ValueError(
            f"the configuration is missing the key '{missing[0]}' that {claim_id} needs "
            f"(its keys: {', '.join(required)})"
        )
    unknown = sorted(k for k in config if k not in SCHEMA)
    if unknown:
        raise ValueError(f"unknown configuration key '{unknown[0]}' (known keys: {', '.join(SCHEMA)})")
    if allowed:
        foreign = [k for k in config if k not in allowed and not SCHEMA[k].optional]
        if foreign:
            raise ValueError(
                f"key '{foreign[0]}' is not a configuration key of {claim_id}, which would ignore it "
                f"(its keys: {', '.join(allowed)})"
            )
    for name, value in config.items():
        SCHEMA[name].check(name, value)
    for name, cap in CLAIM_SIZE_LIMITS.get(claim_id, {}).items():
        if config.get(name, 0) > cap:
            raise ValueError(
                f"key '{name}' = {config[name]} exceeds {cap}, the largest {claim_id} can check in reasonable time"
            )
    if config.get("method") in IMPLICIT_METHODS:
        states = config.get("m", 1) ** 2 + config.get("m_y", 1) * config.get("m", 1)
        if states > IMPLICIT_REPLAY_STATES:
            raise ValueError(
                f"method '{config['method']}' integrates the flow with a dense finite-difference Jacobian "
                f"of the m^2 + m_y m = {states} states; a replay allows the implicit methods "
                f"{list(IMPLICIT_METHODS)} up to {IMPLICIT_REPLAY_STATES} states (Radau took 184 s at 120; "
                "the campaign samples at most 50): use 'DOP853' or a smaller m"
            )
    need = estimated_bytes(config, tier)
    if need > REPLAY_MEMORY_LIMIT:
        raise ValueError(
            f"m = {config.get('m', 1)}, m_y = {config.get('m_y', 1)}, n = {config.get('n', 1)} "
            f"would need about {need / 2**30:.3g} GiB (limit {REPLAY_MEMORY_LIMIT / 2**30:.3g} GiB)"
        )
    return config


def check_scale_sizes(config: dict) -> None:
    """The scale tier's ranges (verify.scale): m <= MAX_WIDTH, m_y <= MAX_OUTPUTS, n <= MAX_SAMPLES
    and, for synthetic data, m^2 n <= SCALE_WORK (the reference SVD's cost); then its real data."""
    from . import scale

    for key, cap in (("m", scale.MAX_WIDTH), ("m_y", scale.MAX_OUTPUTS), ("n", scale.MAX_SAMPLES)):
        if config.get(key, 0) > cap:
            raise ValueError(f"key '{key}' = {config[key]} exceeds {cap}, the scale tier's largest")
    if config.get("dataset", "synthetic") == "synthetic" and "n" in config:
        work = config.get("m", 1) ** 2 * config["n"]
        if work > scale.SCALE_WORK:
            raise ValueError(
                f"m^2 n = {work:.3g} exceeds {scale.SCALE_WORK:.3g}, the scale tier's largest (the "
                "reference SVD of Phi costs a few times that)"
            )
    scale.check_scale_replay(config)


def replay_config(text: str, claim) -> dict:
    """Parse and validate a ``--replay`` argument for ``claim``; raises ValueError saying what is wrong."""
    parsed = parse_config(text)
    fixed = [dict(f) for f in getattr(claim, "fixed", ())]
    if parsed in fixed:  # one of the claim's fixed configurations (a tight instance), as printed
        return validate_config(parsed, claim.id, (), list(parsed))
    required, allowed = claim_keys(claim)
    config = validate_config(parsed, claim.id, required, allowed, tier=claim.tier)
    if claim.tier in ("scale", "slice"):
        check_scale_sizes(config)
    if claim.check_replay is not None:
        claim.check_replay(config)
    return config
