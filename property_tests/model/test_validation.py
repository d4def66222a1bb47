"""Bad input: a ValueError that names the argument and the rule; nothing is coerced."""

import numpy as np
import pytest

import verify

rng = np.random.default_rng(0)
A = rng.standard_normal((3, 3))
B = rng.standard_normal((2, 3))
Phi = rng.standard_normal((3, 4))
Y = rng.standard_normal((2, 4))
Y_onehot = np.eye(2)[:, [0, 1, 1, 0]]


@pytest.mark.parametrize("gamma", [0.0, 1.0, -0.5, 1.5, np.nan, np.inf, True, "0.5", 1j])
def test_gamma_outside_open_unit_interval(gamma):
    with pytest.raises(ValueError, match="gamma"):
        verify.loss_and_grad(A, B, Phi, Y, gamma=gamma)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(A=rng.standard_normal((3, 2))), "A must be square"),
        (dict(B=rng.standard_normal((2, 4))), "B has shape"),
        (dict(Phi=rng.standard_normal((4, 4))), "Phi has shape"),
        (dict(Y=rng.standard_normal((2, 5))), "Y has shape"),
        (dict(Y=rng.standard_normal((3, 4))), "Y has 3 rows but B has 2"),
        (dict(A=np.ones(3)), "A must be a 2-D array"),
        (dict(Phi=np.ones((3, 4, 1))), "Phi must be a 2-D array"),
        (dict(B=np.array([[1.0, np.nan, 0.0], [0, 0, 0]])), "B must contain only finite"),
        (dict(Phi=np.full((3, 4), np.inf)), "Phi must contain only finite"),
        (dict(A=np.ones((3, 3), dtype=complex)), "A must be a real numeric array"),
        (dict(A=np.ones((3, 3), dtype=bool)), "A must be a real numeric array"),
        (dict(A=np.zeros((0, 0))), "A must be non-empty"),
    ],
)
def test_shapes_and_values(kwargs, name):
    args = dict(A=A, B=B, Phi=Phi, Y=Y)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        verify.loss_and_grad(args["A"], args["B"], args["Phi"], args["Y"], gamma=0.5)


@pytest.mark.parametrize(
    "Ybad",
    [
        np.full((2, 4), 0.5),
        np.array([[1.0, 1, 0, 0], [1, 0, 1, 1]]),
        np.array([[2.0, 0, 0, 0], [0, 1, 1, 1]]),
        np.array([[0.0, 0, 1, 0], [0, 1, 0, 0]]),
    ],
)
def test_cross_entropy_requires_one_hot(Ybad):
    with pytest.raises(ValueError, match="one-hot"):
        verify.loss_and_grad(A, B, Phi, Ybad, gamma=0.5, loss="cross_entropy")
    verify.loss_and_grad(A, B, Phi, Y_onehot, gamma=0.5, loss="cross_entropy")


def test_unknown_loss():
    with pytest.raises(ValueError, match="loss must be one of"):
        verify.loss_and_grad(A, B, Phi, Y, gamma=0.5, loss="hinge")


def test_other_entry_points_validate():
    with pytest.raises(ValueError, match="gamma"):
        verify.end_to_end_weight(A, B, gamma=1.0)
    with pytest.raises(ValueError, match="gamma"):
        verify.rate_constant(A, gamma=0)
    with pytest.raises(ValueError, match="A must be square"):
        verify.rate_constant(B, gamma=0.5)
    with pytest.raises(ValueError, match="Y has shape"):
        verify.optimal_loss(Phi, Y[:, :3])
    with pytest.raises(ValueError, match="layers"):
        verify.fixed_point_iterates(A, Phi, gamma=0.5, layers=0)


def test_integer_input_is_widened_not_rejected():
    L1 = verify.loss_and_grad(np.eye(3, dtype=int), B, Phi, Y, gamma=0.5)[0]
    L2 = verify.loss_and_grad(np.eye(3), B, Phi, Y, gamma=0.5)[0]
    assert L1 == L2
