"""gradient_flow stops at convergence (found by outside testers: gradient_flow(T=1e12) ran about
80 s to its evaluation budget although the state had converged long before).

The stop is judged by structure, not by time: the number of right-hand-side evaluations, the
status and message, and the final state against the minimiser computed independently.
"""

import numpy as np
import pytest

import verify
from verify import reference as ref
from verify.dynamics import excess_rounding_floor
from verify.sampling import make_case


@pytest.mark.parametrize("loss", ["square", "cross_entropy"])
def test_a_long_flow_stops_at_convergence(loss):
    c = make_case(0, 3, 2, 6, 0.5, loss, non_separable=(loss == "cross_entropy"))
    traj = verify.gradient_flow(c.A, c.B, c.Phi, c.Y, gamma=0.5, T=1e12, loss=loss)
    assert traj.info["status"] == "converged", traj.message
    assert traj.message.startswith("converged at t = ") and "200 requested records" in traj.message
    assert traj.info["nfev"] < 20_000  # it spent 10^6 (the budget) before
    assert traj.t[-1] < 1e4 and traj.event_time is None
    W = ref.end_to_end_weight(traj.A, traj.B, 0.5)
    if loss == "square":
        # the independent minimiser (lstsq): the final excess is tiny against the start's
        W_star = ref.least_squares(c.Phi, c.Y)[1]
        E = 0.5 * float(np.sum(((W - W_star) @ c.Phi) ** 2))
        W0 = ref.end_to_end_weight(c.A, c.B, 0.5)
        assert E <= 1e-12 * 0.5 * float(np.sum(((W0 - W_star) @ c.Phi) ** 2))
    else:
        # stationary to the ODE tolerance: the gradient of L0 at W nearly vanishes
        G = ref.output_gradient(W @ c.Phi, c.Y, loss)
        assert np.linalg.norm(G @ c.Phi.T) <= 1e-6 * np.linalg.norm(c.Phi) ** 2


def test_the_stop_can_be_declined_and_the_budget_still_rules():
    c = make_case(0, 3, 2, 6, 0.5, "square")
    traj = verify.gradient_flow(c.A, c.B, c.Phi, c.Y, gamma=0.5, T=1e12, max_nfev=5_000, stop_when_converged=False)
    assert traj.info["status"] == "budget"
    with pytest.raises(ValueError, match="stop_when_converged must be True or False"):
        verify.gradient_flow(c.A, c.B, c.Phi, c.Y, gamma=0.5, T=1.0, stop_when_converged=1)


def test_no_stop_before_the_floor():
    """A flow whose horizon ends long before convergence runs to T, records and all, and a target
    event above the floor still fires first."""
    c = make_case(1, 3, 2, 8, 0.5, "square")
    traj = verify.gradient_flow(c.A, c.B, c.Phi, c.Y, gamma=0.5, T=2.0, num_points=11)
    assert traj.info["status"] == "finished" and len(traj) == 11
    E0 = traj.excess_loss[0]
    event = verify.gradient_flow(c.A, c.B, c.Phi, c.Y, gamma=0.5, T=1e12, target_excess=1e-8 * E0)
    assert event.info["status"] == "event" and event.excess_loss[-1] == pytest.approx(1e-8 * E0, rel=1e-6)


def test_the_rounding_floor_is_the_excess_rounding_model():
    """The square-loss floor is (3 + 2 sqrt 2) / 2 delta^2 with delta the excess's rounding
    (verify.rounding): recomputed here from its parts, and 0 < floor << the excess at the start."""
    from verify import rounding

    c = make_case(2, 4, 2, 9, 0.6, "square")
    problem = verify.ShallowProblem(c.Phi, c.Y)
    W = ref.end_to_end_weight(c.A, c.B, 0.6)
    s = np.linalg.svd(c.Phi, compute_uv=False)
    delta = (rounding.solve_rounding(4, 0.6) + 4 * rounding.EPS) * np.linalg.norm(W) * s[
        0
    ] + rounding.projection_rounding(s, 4, 9) * np.linalg.norm(c.Y)
    floor = excess_rounding_floor(problem, W, 0.6)
    assert floor == pytest.approx((3 + 2 * np.sqrt(2)) / 2 * delta**2, rel=1e-6)
    assert 0 < floor < 1e-20 * problem.excess(W)
