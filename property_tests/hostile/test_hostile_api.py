"""Hostile and careless input to the Python API: refused with a ValueError that names
the argument and the rule, budgeted instead of hanging or exhausting memory, never silently
coerced into a wrong number."""

import numpy as np
import pytest
import scipy.sparse

import verify
from verify import batched
from verify.sampling import make_case

rng = np.random.default_rng(0)
A = rng.standard_normal((3, 3))
B = rng.standard_normal((2, 3))
Phi = rng.standard_normal((3, 4))
Y = rng.standard_normal((2, 4))


# ---- coercions the contract rules out ----------------------------------------------------------
def test_longdouble_is_refused_not_narrowed():
    big = np.full((3, 3), np.longdouble(1), dtype=np.longdouble)
    if np.finfo(np.longdouble).max > np.finfo(np.float64).max:
        big[0, 0] = np.longdouble("1e400")  # finite in longdouble, inf in float64
    with pytest.raises(ValueError, match="A has dtype .*float64 without loss"):
        verify.loss_and_grad(big, B, Phi, Y, gamma=0.5)


def test_masked_array_is_refused_not_unmasked():
    masked = np.ma.masked_array(A, mask=np.eye(3, dtype=bool))
    with pytest.raises(ValueError, match="A is a masked array"):
        verify.loss_and_grad(masked, B, Phi, Y, gamma=0.5)
    # a masked array with nothing masked carries no hidden values: accepted
    verify.loss_and_grad(np.ma.masked_array(A), B, Phi, Y, gamma=0.5)


def test_ragged_list_names_the_argument():
    with pytest.raises(ValueError, match="^A must be a rectangular"):
        verify.loss_and_grad([[1.0, 2.0, 3.0], [1.0, 2.0], [1.0, 2.0, 3.0]], B, Phi, Y, gamma=0.5)


def test_num_points_one_is_refused():
    with pytest.raises(ValueError, match="num_points must be an integer >= 2"):
        verify.gradient_flow(A, B, Phi, Y, gamma=0.5, T=1.0, num_points=1)


@pytest.mark.parametrize(
    "t_eval, rule",
    [
        ([0.0, np.nan, 1.0], "finite"),
        ([np.nan], "finite"),
        ([], "at least one"),
        ([[0.0, 1.0]], "1-D"),
        ([0.5, 0.2], "strictly increasing"),
        ([0.0, 2.0], r"within \[0, T\]"),
        (["a"], "real numbers"),
    ],
)
def test_bad_t_eval_is_refused_by_name(t_eval, rule):
    with pytest.raises(ValueError, match=f"t_eval.*{rule}"):
        verify.gradient_flow(A, B, Phi, Y, gamma=0.5, T=1.0, t_eval=t_eval)


# ---- budgets instead of hangs and memory blow-ups ----------------------------------------------
def test_gradient_flow_stops_at_its_evaluation_budget():
    case = make_case(3, 2, 2, 4, 0.5, well_conditioned=True)
    # (a converged state would stop the flow first: the budget alone is tested here)
    traj = verify.gradient_flow(
        case.A, case.B, case.Phi, case.Y, gamma=0.5, T=1e12, max_nfev=3000, stop_when_converged=False
    )
    assert traj.info["status"] == "budget"
    assert traj.info["nfev"] <= 3000 + 20  # at most one DOP853 step past the budget
    assert traj.t[-1] < 1e12 and "max_nfev = 3000" in traj.message
    assert np.all(np.isfinite(traj.loss)) and len(traj) >= 2
    # records stop where the integration stopped; the last is the final state
    np.testing.assert_array_equal(traj.W[-1], verify.end_to_end_weight(traj.A, traj.B, gamma=0.5))


def test_gradient_flow_budget_has_a_finite_default():
    import inspect

    default = inspect.signature(verify.gradient_flow).parameters["max_nfev"].default
    assert isinstance(default, int) and 0 < default < 10**8


def test_gradient_flow_refuses_records_that_do_not_fit_in_memory():
    with pytest.raises(ValueError, match="num_points = 1000000000 gives 1000000000 records, about .* GiB"):
        verify.gradient_flow(A, B, Phi, Y, gamma=0.5, T=1.0, num_points=10**9)


def test_gradient_descent_refuses_records_that_do_not_fit_in_memory():
    with pytest.raises(ValueError, match="record_every >= "):
        verify.gradient_descent(A, B, Phi, Y, gamma=0.5, lr=1e-3, steps=10**9)


def test_separability_lp_is_built_sparse(monkeypatch):
    from verify import separability

    seen = {}
    original = separability.linprog

    def spy(c, A_ub=None, **kw):
        seen["A_ub"] = A_ub
        return original(c, A_ub=A_ub, **kw)

    monkeypatch.setattr(separability, "linprog", spy)
    case = make_case(0, 3, 3, 10, 0.5, "cross_entropy")
    separability.separability_lp(case.Phi, case.Y)
    assert scipy.sparse.issparse(seen["A_ub"])


# ---- silent wrong results ----------------------------------------------------------------------
SCALES = [1e-300, 1e-6, 1.0, 1e20]


def _separable_data():
    """Class = index of the largest feature: separated by D = I. Features of size 1/sqrt(n), as
    the campaign draws them (at scale 1e-6 the old fixed LP box then missed some pairs)."""
    r = np.random.default_rng(1)
    Phi = r.standard_normal((3, 12)) / np.sqrt(12)
    return Phi, np.eye(3)[:, np.argmax(Phi, axis=0)]


def _non_separable_data():
    case = make_case(2, 3, 3, 5, 0.5, "cross_entropy", non_separable=True)
    return case.Phi, case.Y


@pytest.mark.parametrize("scale", SCALES)
def test_separable_cross_entropy_optimum_is_scale_invariant(scale):
    Phi, Y = _separable_data()
    problem = verify.ShallowProblem(Phi * scale, Y, "cross_entropy")
    assert problem.separability.status == "separable"
    assert problem.optimal_loss == 0.0


@pytest.mark.parametrize("scale", SCALES)
def test_non_separable_cross_entropy_optimum_is_scale_invariant(scale):
    Phi, Y = _non_separable_data()
    reference = verify.optimal_loss(Phi, Y, loss="cross_entropy")
    problem = verify.ShallowProblem(Phi * scale, Y, "cross_entropy")
    assert problem.separability.status == "non-separable"
    # Newton stops at the rounding floor of L0 (about 64 eps L0); scaling Phi by a non-power of
    # two perturbs the data by one rounding, so L* agrees to a few hundred eps
    assert problem.optimal_loss == pytest.approx(reference, rel=1e-13, abs=0)
    assert reference < 0.99 * Phi.shape[1] * np.log(3)  # below L0(0) = n log m_y: a real minimisation happened


def test_loss_and_grad_names_the_overflow():
    with pytest.raises(ValueError, match="overflows float64"):
        verify.loss_and_grad(A, B, Phi * 1e200, Y, gamma=0.5)


def test_shallow_problem_names_the_overflow_of_its_statistics():
    with pytest.raises(ValueError, match="Phi Phi\\^T overflows float64"):
        verify.ShallowProblem(Phi * 1e200, Y)


def test_shallow_problem_is_not_changed_by_the_callers_later_edits():
    P = Phi.copy()
    problem = verify.ShallowProblem(P, Y)
    W = rng.standard_normal((2, 3))
    before = problem.value(W)
    P *= 2.0
    assert problem.value(W) == before
    assert problem.value(W) == pytest.approx(0.5 * np.sum((W @ Phi - Y) ** 2), rel=1e-12)
    with pytest.raises(ValueError):
        problem.Phi[0, 0] = 1.0  # the problem's own copy is read-only


# ---- batched entry points validate like the single ones ----------------------------------------
Ak = rng.standard_normal((2, 3, 3))
Bk = rng.standard_normal((2, 2, 3))
Phik = rng.standard_normal((2, 3, 4))
Yk = rng.standard_normal((2, 2, 4))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: batched.batched_rate_constant(Ak, 2.0), "gamma must lie in the open interval"),
        (lambda: batched.batched_loss_and_grad(Ak, Bk, Phik, Yk, "0.5"), "gamma must be a real"),
        (lambda: batched.batched_loss_and_grad(Ak, Bk, Phik, Yk, np.array([0.5 + 1j, 0.5])), "gamma must be a real"),
        (
            lambda: batched.batched_loss_and_grad(Ak, Bk, Phik, Yk, np.array([0.5, 0.5, 0.5])),
            "gamma must be a scalar or",
        ),
        (
            lambda: batched.batched_gradient_descent(Ak, Bk, Phik, Yk, 0.5, lr=0.1, steps=-5),
            "steps must be an integer >= 1",
        ),
        (
            lambda: batched.batched_gradient_descent(Ak, Bk, Phik, Yk, 0.5, lr=-1.0, steps=2),
            "lr must be a finite number > 0",
        ),
        (
            lambda: batched.batched_gradient_descent(Ak, Bk, Phik, Yk, 0.5, lr=np.nan, steps=2),
            "lr must be a finite number > 0",
        ),
        (lambda: batched.batched_gradient_flow(Ak, Bk, Phik, Yk, 0.5, T=1.0, t_eval=[np.nan]), "t_eval"),
        (
            lambda: batched.batched_loss_and_grad(
                np.zeros((2, 0, 0)), np.zeros((2, 2, 0)), np.zeros((2, 0, 4)), Yk, 0.5
            ),
            "A must be non-empty",
        ),
        (lambda: batched.batched_loss_and_grad(Ak.astype(np.longdouble), Bk, Phik, Yk, 0.5), "A has dtype"),
    ],
)
def test_batched_entry_points_validate(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- unclear errors ----------------------------------------------------------------------------
def test_pl_constant_of_zero_features_names_phi():
    with pytest.raises(ValueError, match="pl_constant: Phi has rank 0"):
        verify.ShallowProblem(np.zeros((3, 4)), Y).pl_constant


# (seed, m, m_y, n, gamma, a_scale): configurations where lr = 1e150 makes A non-finite before the
# loss is checked (found by 200 random campaign-style configurations)
DIVERGING = [
    (1845865537, 1, 3, 4, 0.9669330754973237, 0.1),
    (2518140844, 3, 5, 3, 0.9250935317577058, 3.0),
    (3980083683, 2, 3, 4, 0.8897444664151973, 3.0),
    (4201543657, 5, 1, 3, 0.9779174522668713, 1.0),
    (0, 3, 2, 4, 0.5, 3.0),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("seed, m, m_y, n, gamma, a_scale", DIVERGING)
def test_descent_divergence_is_reported_not_a_scipy_error(seed, m, m_y, n, gamma, a_scale):
    """The documented FloatingPointError must appear (not SciPy's finiteness check), and
    on_divergence="stop" must end the run with the last finite state."""
    case = make_case(seed, m, m_y, n, gamma, a_scale=a_scale)
    kwargs = dict(gamma=gamma, lr=1e150, steps=200)
    with pytest.raises(FloatingPointError, match="diverged"):
        verify.gradient_descent(case.A, case.B, case.Phi, case.Y, **kwargs)
    traj = verify.gradient_descent(case.A, case.B, case.Phi, case.Y, on_divergence="stop", **kwargs)
    assert "diverged" in traj.message
    assert np.all(np.isfinite(traj.A)) and np.all(np.isfinite(traj.B)) and np.all(np.isfinite(traj.loss))


@pytest.mark.filterwarnings(
    "ignore:overflow encountered:RuntimeWarning", "ignore:invalid value encountered:RuntimeWarning"
)
def test_descent_finiteness_test_is_exact():
    """Descent tests finiteness by one sum first: a NaN or inf entry must still be caught, and
    finite entries whose sum overflows must not count as divergence."""
    from verify._validation import all_finite

    # (the descent loop calls it under np.errstate(over="ignore", invalid="ignore"))
    X = np.full((4, 4), 1e308)  # finite; the sum overflows to inf
    assert all_finite(X)
    for bad in (np.nan, np.inf, -np.inf):
        Y = np.zeros((4, 4))
        Y[2, 1] = bad
        assert not all_finite(Y)
    Z = np.zeros((3, 3))
    Z[0, 0], Z[1, 1] = np.inf, -np.inf  # the sum is NaN, not inf
    assert not all_finite(Z)


# ---- further hostile inputs ---------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda: verify.fixed_point_iterates(A, Phi, gamma=0.5, layers=10**9),
        lambda: verify.unrolled_loss_and_grad(A, B, Phi, Y, gamma=0.5, layers=10**9),
    ],
)
def test_layer_count_is_budgeted(call):
    with pytest.raises(ValueError, match="layers = 1000000000 .* needs about .* GiB"):
        call()


def test_explicit_cross_entropy_hessian_size_is_refused():
    problem = verify.ShallowProblem(np.ones((600, 2)), np.eye(10)[:, [0, 1]], "cross_entropy")
    with pytest.raises(ValueError, match="m\\*m_y = 6000 > 4096"):
        problem.hessian(np.zeros((10, 600)))


def test_batched_gradient_flow_stops_at_its_evaluation_budget():
    Y1 = np.stack([np.eye(2)[:, [0, 1, 1, 0]]] * 2)
    with pytest.raises(RuntimeError, match="max_nfev = 500"):
        batched.batched_gradient_flow(Ak, Bk, Phik, Y1, 0.5, T=1e9, t_eval=[0.0, 1e9], max_nfev=500)


def test_integers_beyond_float64_precision_are_refused():
    with pytest.raises(ValueError, match="Phi holds integers beyond 2\\^53"):
        verify.loss_and_grad(A, B, np.full((3, 4), 2**53 + 1, dtype=np.int64), Y, gamma=0.5)
    verify.loss_and_grad(A, B, np.full((3, 4), 2**53, dtype=np.int64), Y, gamma=0.5)  # exact: accepted


@pytest.mark.filterwarnings("error")
def test_huge_targets_are_named_without_warnings():
    with pytest.raises(ValueError, match="Y is too large for the square loss"):
        verify.ShallowProblem(Phi, Y * 1e200)
