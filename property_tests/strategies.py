"""Reusable Hypothesis strategies for shapes, gamma, data and parameters.

Arrays are drawn from a numpy Generator seeded by Hypothesis (one integer), which keeps every
example reproducible from its printed seed and shrinks sizes and scales, not individual floats.

Width regimes (docs/theory.md, section 5): "m<m_y" (width below the output dimension), "m<n" (below the
number of samples), "m>n" (more width than samples: minimisers not unique), "m=1".
"""

from __future__ import annotations

from hypothesis import strategies as st

from verify.sampling import REGIMES, Case, conditioned_features, make_case, overlapping_labels  # noqa: F401

MAX_DIM = 6


@st.composite
def shapes(draw, regime: str | None = None, max_dim: int = MAX_DIM):
    """(m, m_y, n) in the given width regime (any regime when None)."""
    regime = draw(st.sampled_from(REGIMES)) if regime is None else regime
    if regime == "m<m_y":
        m = draw(st.integers(1, max_dim - 1))
        return m, draw(st.integers(m + 1, max_dim)), draw(st.integers(1, max_dim))
    if regime == "m<n":
        m = draw(st.integers(1, max_dim - 1))
        return m, draw(st.integers(1, max_dim)), draw(st.integers(m + 1, max_dim + 2))
    if regime == "m>n":
        m = draw(st.integers(2, max_dim))
        return m, draw(st.integers(1, max_dim)), draw(st.integers(1, m - 1))
    if regime == "m=1":
        return 1, draw(st.integers(1, max_dim)), draw(st.integers(1, max_dim))
    raise ValueError(f"unknown regime {regime!r}")


def gammas(low: float = 0.01, high: float = 0.99):
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


seeds = st.integers(min_value=0, max_value=2**32 - 1)


@st.composite
def cases(
    draw,
    regime: str | None = None,
    loss: str | None = None,
    gamma_range=(0.01, 0.99),
    a_scales=(0.1, 1.0, 3.0),
    non_separable: bool = False,
    max_dim: int = MAX_DIM,
    well_conditioned: bool = False,
):
    m, m_y, n = draw(shapes(regime, max_dim=max_dim))
    loss = draw(st.sampled_from(("square", "cross_entropy"))) if loss is None else loss
    if loss == "cross_entropy" and m_y == 1:
        m_y = 2  # one class makes cross-entropy identically zero
    return make_case(
        draw(seeds),
        m,
        m_y,
        n,
        draw(gammas(*gamma_range)),
        loss,
        a_scale=draw(st.sampled_from(a_scales)),
        non_separable=non_separable,
        well_conditioned=well_conditioned,
    )


def budget(ci: int, thorough: int = 500):
    """Hypothesis settings with ``ci`` examples under the default profile and ``thorough``
    under HYPOTHESIS_PROFILE=thorough (expensive properties use fewer examples by default)."""
    import os

    from hypothesis import settings

    profile = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    return settings(max_examples=thorough if profile == "thorough" else ci)
