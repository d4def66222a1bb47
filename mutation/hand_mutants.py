"""Apply hand-written one-line mutants to a copy of the project and run the quick campaign.

python mutation/hand_mutants.py [--acceptance] [NAME ...] [--CAMPAIGN-FLAG ...]
    default: every mutant of MUTANTS (the older set); --acceptance: every mutant of
    ACCEPTANCE_MUTANTS; NAMEs pick mutants of either set. Flags beginning with -- (other than
    --acceptance) are passed to `python -m verify`, e.g. --fail-fast; flags with a value are written
    with "=" (--tiers=certify), or the value is read as a mutant name. Prints which claims fail for
    each mutant.
"""

# ruff: noqa: E501  (each mutant is an exact anchor text and its replacement, kept on one line)
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
MUTANTS = {
    "hessian x0.5": (
        "verify/losses/square.py",
        "return np.kron(problem.state.gram, np.eye(problem.m_y))",
        "return 0.5 * np.kron(problem.state.gram, np.eye(problem.m_y))",
    ),
    "hessian = 0": (
        "verify/losses/square.py",
        "return np.kron(problem.state.gram, np.eye(problem.m_y))",
        "return 0.0 * np.kron(problem.state.gram, np.eye(problem.m_y))",
    ),
    "K gamma not gamma^2 (explicit)": (
        "verify/dynamics.py",
        "K4 = np.einsum(\"pj,qj,jab->paqb\", V, V, T) * layer.gamma**2",
        "K4 = np.einsum(\"pj,qj,jab->paqb\", V, V, T) * layer.gamma",
    ),
    "K gamma not gamma^2 (matvec)": (
        "verify/dynamics.py",
        "return layer.right_solve(X + layer.gamma**2 * second)",
        "return layer.right_solve(X + layer.gamma * second)",
    ),
    "kappa x0.5": (
        "verify/losses/square.py",
        "return float(np.min(s[s > tol]) ** 2)",
        "return 0.5 * float(np.min(s[s > tol]) ** 2)",
    ),
    "lambda x0.95": (
        "verify/convergence.py",
        "return 1.0 / float(np.linalg.norm(U, 2)) ** 2",
        "return 0.95 / float(np.linalg.norm(U, 2)) ** 2",
    ),
    "uniform bound 1/(1+gamma m)^2": (
        "verify/convergence.py",
        "return 1.0 / (1.0 + gamma * np.sqrt(float(m))) ** 2",
        "return 1.0 / (1.0 + gamma * float(m)) ** 2",
    ),
    "Gamma transposed": (
        "verify/gradients.py",
        "Gamma = layer.gamma * (W.T @ dB)",
        "Gamma = layer.gamma * (W.T @ dB).T",
    ),
    "softmax_vjp wrong axis": (
        "verify/gradients.py",
        "return SG - S * SG.sum(axis=-2, keepdims=True)",
        "return SG - S * SG.sum(axis=-1, keepdims=True)",
    ),
    "row softmax": (
        "verify/model.py",
        "return E / E.sum(axis=-2, keepdims=True)",
        "return E / E.sum(axis=-1, keepdims=True)",
    ),
    "softmax shift by row max": (
        "verify/model.py",
        "shifted = A - A.max(axis=-2, keepdims=True)",
        "shifted = A - A.max(axis=-1, keepdims=True)",
    ),
    "CE true-class G sign": (
        "verify/losses/cross_entropy.py",
        "G = np.where(onehot, -rest / sums, G)",
        "G = np.where(onehot, rest / sums, G)",
    ),
    "excess without 1/2": (
        "verify/losses/square.py",
        "problem.state.R.T\n        return 0.5 * float(np.sum(D * D))",
        "problem.state.R.T\n        return float(np.sum(D * D))",
    ),
    "dB with U^-1 not U^-T": (
        "verify/gradients.py",
        "dB = layer.right_solve_transposed(grad_L0)",
        "dB = layer.right_solve(grad_L0)",
    ),
    "unrolled uses z^(l)": (
        "verify/gradients.py",
        "dS += gamma * adjoint @ zs[layer - 1].T",
        "dS += gamma * adjoint @ zs[layer].T",
    ),
    "step bound x2": (
        "verify/trust_region.py",
        "return float(\"inf\") if top <= 0 else 1.0 / top",
        "return float(\"inf\") if top <= 0 else 2.0 / top",
    ),
    "local PL = largest eigenvalue": (
        "verify/convergence.py",
        "return float(ev[ev > tol].min())",
        "return float(ev[ev > tol].max())",
    ),
    "naive bound 1/(1+gamma)": (
        "verify/convergence.py",
        "return 1.0 / (1.0 + check_gamma(gamma)) ** 2",
        "return 1.0 / (1.0 + check_gamma(gamma))",
    ),
    "GD half step on B": (
        "verify/dynamics.py",
        "            B_new = B - lr * st.dB",
        "            B_new = B - 0.5 * lr * st.dB",
    ),
    "flow rate integral x0.95": (
        "verify/dynamics.py",
        "values = [self.tracker(_implicit_matrix(",
        "values = [0.95 * self.tracker(_implicit_matrix(",
    ),
    "fixed point without gamma": (
        "verify/model.py",
        "    gS = gamma * column_softmax(A)\n    out",
        "    gS = column_softmax(A) * 0.999\n    out",
    ),
    "equilibrium transposed solve": (
        "verify/model.py",
        "        return self.solve(Phi)",
        "        return self.solve_transposed(Phi)",
    ),
    "weight_for U^T": (
        "verify/model.py",
        "return W @ ImplicitLayer.from_weights(A, gamma=gamma).U",
        "return W @ ImplicitLayer.from_weights(A, gamma=gamma).U.T",
    ),
    "TR metric +H": (
        "verify/trust_region.py",
        "G = sla.cho_solve(c, np.eye(K.shape[0])) / dt - H",
        "G = sla.cho_solve(c, np.eye(K.shape[0])) / dt + H",
    ),
    "CE Newton 3 iterations": (
        "verify/losses/cross_entropy.py",
        "NEWTON_MAX_ITERATIONS = 200",
        "NEWTON_MAX_ITERATIONS = 3",
    ),
    "CE hessian half pp^T": (
        "verify/losses/cross_entropy.py",
        "        H = -(X @ X.T)",
        "        H = -0.5 * (X @ X.T)",
    ),
    "square loss value x(1+1e-9)": (
        "verify/losses/square.py",
        "        return 0.5 * np.einsum(\"...ij,...ij->...\", G, G), G",
        "        return 0.5 * (1 + 1e-9) * np.einsum(\"...ij,...ij->...\", G, G), G",
    ),
    "dA scaled 1+1e-6": (
        "verify/gradients.py",
        "    return softmax_vjp(layer.S, Gamma), dB",
        "    return (1 + 1e-6) * softmax_vjp(layer.S, Gamma), dB",
    ),
    "solver tol 1e-6": (
        "verify/trust_region.py",
        "tol: float = 1e-12, max_iter: int = 200",
        "tol: float = 1e-6, max_iter: int = 200",
    ),
    "GD first rate_integral 1.0": (
        "verify/dynamics.py",
        "    st = recorder.record(0.0, A, B, 0.0)\n",
        "    st = recorder.record(0.0, A, B, 1.0)\n",
    ),
    "GD trapezoid x1.5": (
        "verify/dynamics.py",
        "integral += 0.5 * lr * (prev_rate + rate)",
        "integral += 0.75 * lr * (prev_rate + rate)",
    ),
    "tracker residual norms wrong axis": (
        "verify/convergence.py",
        "rho = np.sqrt((R * R).sum(axis=0))",
        "rho = np.sqrt((R * R).sum(axis=1))",
    ),
    "tracker residual norms R / R": (
        "verify/convergence.py",
        "rho = np.sqrt((R * R).sum(axis=0))",
        "rho = np.sqrt((R / R).sum(axis=0))",
    ),
    "tracker keeps noise directions": (
        "verify/convergence.py",
        "keep = d > ORTHONORMAL_KEEP * np.maximum(before[: len(d)], np.finfo(float).tiny)",
        "keep = d > 1e-10 * max(float(d.max()), np.finfo(float).tiny)",
    ),
    "z0 misnamed": (
        "verify/model.py",
        'as_matrix("z0", z0, shape=Phi.shape)',
        'as_matrix("XXz0XX", z0, shape=Phi.shape)',
    ),
    "B0 misnamed": ("verify/dynamics.py", 'names=("A0", "B0")', 'names=("A0", "XXB0XX")'),
    "layers misnamed": (
        "verify/model.py",
        'layers = check_positive("layers", layers, integer=True)',
        'layers = check_positive("XXlayersXX", layers, integer=True)',
    ),
    "gamma = 0 accepted": ("verify/_validation.py", "not (0.0 < g < 1.0)", "not (0.0 <= g < 1.0)"),
    "gamma near 1 refused": ("verify/_validation.py", "not (0.0 < g < 1.0)", "not (0.0 < g < 1.0 - 1e-4)"),
    "lr = 0 accepted": (
        "verify/_validation.py",
        "not np.isfinite(value) or value <= 0:",
        "not np.isfinite(value) or value < 0:",
    ),
    "unrolled without B/Y rows check": (
        "verify/gradients.py",
        "    check_output_rows(B, Y)  # (without",
        "    pass  # (without",
    ),
    "TR interior solution flagged boundary": (
        "verify/trust_region.py",
        "return TrustRegionSolution(back(w), 0.0, 0, False)",
        "return TrustRegionSolution(back(w), 0.0, 0, True)",
    ),
    "TR interior accepted up to 1.5 delta": (
        "verify/trust_region.py",
        "if np.linalg.norm(w) <= delta * (1 + tol):",
        "if np.linalg.norm(w) <= delta * 1.5:",
    ),
    "GD previous lambda not advanced": (
        "verify/dynamics.py",
        "A, B, st, prev_rate = A_new, B_new, st_new, rate",
        "A, B, st, prev_rate = A_new, B_new, st_new, prev_rate",
    ),
    "state_wise W* stale (gradient uses W*)": (
        "verify/losses/square.py",
        "        return W @ problem.state.gram - problem.state.YPhiT",
        "        return (W - problem.state.W_star) @ problem.state.gram * (1 + 1e-7)",
    ),
    "recursive solve update sign": (
        "verify/losses/square.py",
        "out = _GEMM(-1.0, X[:, :h], R[:h, h:], beta=1.0, c=X[:, h:], overwrite_c=1)",
        "out = _GEMM(1.0, X[:, :h], R[:h, h:], beta=1.0, c=X[:, h:], overwrite_c=1)",
    ),
    "recursive solve R12 transposed": (
        "verify/losses/square.py",
        "out = _GEMM(-1.0, X[:, :h], R[:h, h:], beta=1.0, c=X[:, h:], overwrite_c=1)",
        "out = _GEMM(-1.0, X[:, :h], R[h:, :h].T, beta=1.0, c=X[:, h:], overwrite_c=1)",
    ),
    "tracker eigenvalues ascending taken as top": (
        "verify/convergence.py",
        "theta, C = w[: -k - 1 : -1], C[:, : -k - 1 : -1]",
        "theta, C = w[:k], C[:, :k]",
    ),
    "tracker Kato-Temple gap theta + a": (
        "verify/convergence.py",
        "+ self._residual_floor, (theta - a) / theta)",
        "+ self._residual_floor, (theta + a) / theta)",
    ),
    "tracker Weyl step on sigma_2 halved": (
        "verify/convergence.py",
        "root = math.sqrt(self._mu2_up) + e\n",
        "root = math.sqrt(self._mu2_up) + 0.5 * e\n",
    ),
    "tracker cold-start a from mu_1": (
        "verify/convergence.py",
        "self._mu2_up = float(w[-2]) + margin",
        "self._mu2_up = float(w[-1]) + margin",
    ),
    "tracker conditional value kept after a failed refresh": (
        "verify/convergence.py",
        "                self.stats[\"dense_rechecks\"] += 1\n                return self._cold_start(U)\n",
        "                self.stats[\"dense_rechecks\"] += 1\n",
    ),
}

#: A second, newer acceptance set: one-line wrong formulas in the modules the set above never
#: touches (certificates, scale tier, judging, rounding models, reference, batched path,
#: separability, claims' measurements, theory derivations, implicit-bias experiment).
ACCEPTANCE_MUTANTS = {
    # verify/certify/proof.py
    'cert: straddling inequality counted as proved': (
        'verify/certify/proof.py',
        'status = PROVED if diff > 0 else FAILED if diff < 0 else UNDECIDED',
        'status = FAILED if diff < 0 else PROVED',
    ),
    'cert: equations consistent to 2^-32 suffice': (
        'verify/certify/proof.py',
        'EQUATION_BITS = 64',
        'EQUATION_BITS = 32',
    ),
    'cert: precision loop stops at 106 bits': (
        'verify/certify/proof.py',
        '        if cert.status != NOT_CERTIFIED:\n            break',
        '        if cert.status != NOT_CERTIFIED or bits >= 106:\n            break',
    ),
    # verify/certify/balls.py
    'balls: congruence shift above the Rayleigh quotient': (
        'verify/certify/balls.py',
        'lo = (q_mid - arb(delta)).mid()',
        'lo = (q_mid + arb(delta)).mid()',
    ),
    'balls: congruence test ||N - I||_F < 2': (
        'verify/certify/balls.py',
        'if _congruence_off_identity(BMB_e, BB_e, lo, c) < 1:',
        'if _congruence_off_identity(BMB_e, BB_e, lo, c) < 4:',
    ),
    # verify/certify/ball_model.py
    'ball model: K second term gamma not gamma^2': (
        'verify/certify/ball_model.py',
        '(self.gamma * self.gamma * arb(second_term_scale))',
        '(self.gamma * arb(second_term_scale))',
    ),
    'ball model: softmax Jacobian s_i x_i - s^T x': (
        'verify/certify/ball_model.py',
        'out[i, j] = s[i] * (x[i] - dot)',
        'out[i, j] = s[i] * x[i] - dot',
    ),
    # verify/certify/statements.py
    'cert NAIVE: uniform item 1/(1+gamma m)^2': (
        'verify/certify/statements.py',
        'uniform = arb(1) / ((1 + g * arb(m).sqrt()) ** 2)',
        'uniform = arb(1) / ((1 + g * arb(m)) ** 2)',
    ),
    'cert STATE-WISE: kappa lambda (L - L*) without 2': (
        'verify/certify/statements.py',
        'rhs = 2 * kappa * lam * excess',
        'rhs = kappa * lam * excess',
    ),
    'cert TRUST-REGION: dt_max estimate x 2': (
        'verify/certify/statements.py',
        'estimate = arb(1.0 / estimate_f)',
        'estimate = arb(2.0 / estimate_f)',
    ),
    # verify/scale.py
    'scale: state-wise ratio without 2': (
        'verify/scale.py',
        'return grad_norm_sq / (2 * kappa * lam * excess)',
        'return grad_norm_sq / (kappa * lam * excess)',
    ),
    'scale: tight gradient tolerance ||g||^2 for ||g||': (
        'verify/scale.py',
        'tol_grad = 2 * 2 * np.sqrt(grad_sq_ref) * e["dB"]',
        'tol_grad = 2 * 2 * grad_sq_ref * e["dB"]',
    ),
    'scale: g^T K g >= lambda ||g||^2 / 2': (
        'verify/scale.py',
        '    return lam * float(np.sum(g * g))',
        '    return 0.5 * lam * float(np.sum(g * g))',
    ),
    # verify/scale_data.py
    'scale data: m>n regime draws n up to 2m': (
        'verify/scale_data.py',
        'return m, m_y, _log_int(rng, 10, m // 2)',
        'return m, m_y, _log_int(rng, 10, 2 * m)',
    ),
    # verify/judging.py
    'judging: lambda_T from the running max': (
        'verify/judging.py',
        'np.minimum.accumulate(lam)',
        'np.maximum.accumulate(lam)',
    ),
    'judging: order accepted within 2.5 |p_k+1 - p_k|': (
        'verify/judging.py',
        'abs(extrapolated - 1) <= 0.25 * abs(p_last - p_prev) + 0.02 and',
        'abs(extrapolated - 1) <= 2.5 * abs(p_last - p_prev) + 0.02 and',
    ),
    # verify/rounding.py
    'rounding: cond_1(U) bound 1/(1-gamma)': (
        'verify/rounding.py',
        'return (1.0 + gamma) / (1.0 - gamma)',
        'return 1.0 / (1.0 - gamma)',
    ),
    'rounding: rate tolerance cond_2 not cond_2^2': (
        'verify/rounding.py',
        '(2 * rho + (m + 2) * EPS) * cond2**2)',
        '(2 * rho + (m + 2) * EPS) * cond2)',
    ),
    'rounding: ODE global error factor 1e6': (
        'verify/rounding.py',
        'ODE_GLOBAL_ERROR_FACTOR = 1e3',
        'ODE_GLOBAL_ERROR_FACTOR = 1e6',
    ),
    # verify/reference.py
    'reference: unrolled adjoint without gamma': (
        'verify/reference.py',
        'adjoint = gamma * S.T @ adjoint',
        'adjoint = S.T @ adjoint',
    ),
    'reference: concentrated 2x2 reduction sign': (
        'verify/reference.py',
        '[-gamma * m, 1 - gamma]',
        '[gamma * m, 1 - gamma]',
    ),
    # verify/batched.py
    'batched: stacked tolerance rtol, not rtol/sqrt(k)': ('verify/batched.py', 'tol = rtol / np.sqrt(k)', 'tol = rtol'),
    # verify/separability.py
    'separability: strict pair only at t = 1 exactly': (
        'verify/separability.py',
        'strict[pair_k, pair_i] = res.x[nd:] > 0.5',
        'strict[pair_k, pair_i] = res.x[nd:] >= 1.0',
    ),
    # verify/claims/well_posed.py
    'WELL-POSED: contraction gamma^(l-1)': (
        'verify/claims/well_posed.py',
        'powers = gamma ** np.arange(layers + 1)[:, None]',
        'powers = gamma ** (np.arange(layers + 1)[:, None] - 1)',
    ),
    # verify/claims/rates.py
    'UNIFORM-RATE: ||sigma(A)|| Frobenius': (
        'verify/claims/rates.py',
        'S_norm = float(np.linalg.norm(ref.softmax_columns(A), 2))',
        'S_norm = float(np.linalg.norm(ref.softmax_columns(A)))',
    ),
    # verify/claims/cross_entropy.py
    'CE-LOCAL: H^1/2 replaced by H': (
        'verify/claims/cross_entropy.py',
        'root = (V * np.sqrt(np.clip(w, 0, None))) @ V.T',
        'root = (V * np.clip(w, 0, None)) @ V.T',
    ),
    # theory/dynamics.py
    'theory: J_A J_A^T with gamma not gamma^2': (
        'theory/dynamics.py',
        'return first, gamma**2 * second',
        'return first, gamma * second',
    ),
    'theory: comparison ODE dE/dt = -kappa lambda E': (
        'theory/dynamics.py',
        'sp.Eq(E(t).diff(t), -2 * kappa * lam(t) * E(t))',
        'sp.Eq(E(t).diff(t), -kappa * lam(t) * E(t))',
    ),
    # theory/uniform_bound.py
    'theory: concentrated mu_max the smaller root': (
        'theory/uniform_bound.py',
        'mu_max = (tr + sp.sqrt(tr**2 - 4 * det)) / 2',
        'mu_max = (tr - sp.sqrt(tr**2 - 4 * det)) / 2',
    ),
    # verify/implicit_bias.py
    'implicit bias: deep linear W_1 step uses the new W_2': (
        'verify/implicit_bias.py',
        '            W1, W2 = W1 - lr * (W2.T @ G), W2 - lr * (G @ W1.T)',
        '            W2 = W2 - lr * (G @ W1.T)\n            W1 = W1 - lr * (W2.T @ G)',
    ),
    # added after the first pass, with the pseudo-Huber certificate (docs/sensitivity.md counts them apart)
    'cert STATE-WISE pseudo-Huber: kappa with (1 + L)^-2': (
        'verify/certify/statements.py',
        'kappa = kappa / (1 + st.value) ** 3',
        'kappa = kappa / (1 + st.value) ** 2',
    ),
    'ball model: pseudo-Huber G = r': ('verify/certify/ball_model.py', 'G[k, i] = r / h', 'G[k, i] = r'),
    'ball model: pseudo-Huber value r^2 / 2': (
        'verify/certify/ball_model.py',
        'values.append(r * r / (1 + h))',
        'values.append(r * r / 2)',
    ),
    'plan reference: pseudo-Huber kappa with (1 + L)^-2': (
        'verify/certify/instances.py',
        '/ (1 + value) ** 3 * R.rate_constant(A, gamma)',
        '/ (1 + value) ** 2 * R.rate_constant(A, gamma)',
    ),
}

ALL_MUTANTS = {**MUTANTS, **ACCEPTANCE_MUTANTS}


def run(name, extra):
    path, old, new = ALL_MUTANTS[name]
    d = tempfile.mkdtemp(prefix="mut-")
    for sub in ("verify", "theory"):
        shutil.copytree(os.path.join(ROOT, sub), os.path.join(d, sub))
    f = os.path.join(d, path)
    text = open(f).read()
    assert text.count(old) == 1, (name, text.count(old))
    open(f, "w").write(text.replace(old, new))
    t = time.time()
    out = subprocess.run(
        [PY, "-m", "verify", "--json", os.path.join(d, "r.json")] + extra,
        cwd=d,
        env=dict(os.environ, PYTHONPATH=d, OPENBLAS_NUM_THREADS="1"),
        capture_output=True,
        text=True,
    )
    try:
        rep = json.load(open(os.path.join(d, "r.json")))
        failing = [c["id"] for c in rep["claims"] if not c["holds"]]
    except Exception:
        failing = [f"NO REPORT rc={out.returncode} {out.stderr[-300:]}"]
    shutil.rmtree(d)
    return failing, time.time() - t


if __name__ == "__main__":
    # --acceptance selects the acceptance set (consumed here); other --flags go to the campaign
    acceptance = "--acceptance" in sys.argv[1:]
    names = [a for a in sys.argv[1:] if not a.startswith("--")] or list(ACCEPTANCE_MUTANTS if acceptance else MUTANTS)
    extra = [a for a in sys.argv[1:] if a.startswith("--") and a != "--acceptance"]
    for n in names:
        failing, dt = run(n, extra)
        print(f"{'KILLED ' if failing else 'SURVIVED'} {n:45s} {dt:5.1f}s  {failing}", flush=True)
