"""Apply hand-written one-line mutants to a copy of the project and run the quick campaign.

python mutants.py [NAME ...]   (default: all)   -- prints which claims fail for each mutant.
"""
import os, shutil, subprocess, sys, json, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
MUTANTS = {
    "hessian x0.5": ("verify/losses/square.py", "return np.kron(problem.state.gram, np.eye(problem.m_y))", "return 0.5 * np.kron(problem.state.gram, np.eye(problem.m_y))"),
    "hessian = 0": ("verify/losses/square.py", "return np.kron(problem.state.gram, np.eye(problem.m_y))", "return 0.0 * np.kron(problem.state.gram, np.eye(problem.m_y))"),
    "K gamma not gamma^2 (explicit)": ("verify/dynamics.py", "K4 = np.einsum(\"pj,qj,jab->paqb\", V, V, T) * layer.gamma ** 2", "K4 = np.einsum(\"pj,qj,jab->paqb\", V, V, T) * layer.gamma"),
    "K gamma not gamma^2 (matvec)": ("verify/dynamics.py", "return layer.right_solve(X + layer.gamma ** 2 * second)", "return layer.right_solve(X + layer.gamma * second)"),
    "kappa x0.5": ("verify/losses/square.py", "return float(np.min(s[s > tol]) ** 2)", "return 0.5 * float(np.min(s[s > tol]) ** 2)"),
    "lambda x0.95": ("verify/convergence.py", "return 1.0 / float(np.linalg.norm(U, 2)) ** 2", "return 0.95 / float(np.linalg.norm(U, 2)) ** 2"),
    "uniform bound 1/(1+gamma m)^2": ("verify/convergence.py", "return 1.0 / (1.0 + gamma * np.sqrt(float(m))) ** 2", "return 1.0 / (1.0 + gamma * float(m)) ** 2"),
    "Gamma transposed": ("verify/gradients.py", "Gamma = layer.gamma * (W.T @ dB)", "Gamma = layer.gamma * (W.T @ dB).T"),
    "softmax_vjp wrong axis": ("verify/gradients.py", "return SG - S * SG.sum(axis=-2, keepdims=True)", "return SG - S * SG.sum(axis=-1, keepdims=True)"),
    "row softmax": ("verify/model.py", "return E / E.sum(axis=-2, keepdims=True)", "return E / E.sum(axis=-1, keepdims=True)"),
    "softmax shift by row max": ("verify/model.py", "shifted = A - A.max(axis=-2, keepdims=True)", "shifted = A - A.max(axis=-1, keepdims=True)"),
    "CE true-class G sign": ("verify/losses/cross_entropy.py", "G = np.where(onehot, -rest / sums, G)", "G = np.where(onehot, rest / sums, G)"),
    "excess without 1/2": ("verify/losses/square.py", "problem.state.R.T\n        return 0.5 * float(np.sum(D * D))", "problem.state.R.T\n        return float(np.sum(D * D))"),
    "dB with U^-1 not U^-T": ("verify/gradients.py", "dB = layer.right_solve_transposed(grad_L0)", "dB = layer.right_solve(grad_L0)"),
    "unrolled uses z^(l)": ("verify/gradients.py", "dS += gamma * adjoint @ zs[layer - 1].T", "dS += gamma * adjoint @ zs[layer].T"),
    "step bound x2": ("verify/trust_region.py", "return float(\"inf\") if top <= 0 else 1.0 / top", "return float(\"inf\") if top <= 0 else 2.0 / top"),
    "local PL = largest eigenvalue": ("verify/convergence.py", "return float(ev[ev > tol].min())", "return float(ev[ev > tol].max())"),
    "naive bound 1/(1+gamma)": ("verify/convergence.py", "return 1.0 / (1.0 + check_gamma(gamma)) ** 2", "return 1.0 / (1.0 + check_gamma(gamma))"),
    "GD half step on B": ("verify/dynamics.py", "            B_new = B - lr * st.dB", "            B_new = B - 0.5 * lr * st.dB"),
    "flow rate integral x0.95": ("verify/dynamics.py", "values = [self.tracker(_implicit_matrix(", "values = [0.95 * self.tracker(_implicit_matrix("),
    "fixed point without gamma": ("verify/model.py", "    gS = gamma * column_softmax(A)\n    out", "    gS = column_softmax(A) * 0.999\n    out"),
    "equilibrium transposed solve": ("verify/model.py", "        return self.solve(Phi)", "        return self.solve_transposed(Phi)"),
    "weight_for U^T": ("verify/model.py", "return W @ ImplicitLayer.from_weights(A, gamma=gamma).U", "return W @ ImplicitLayer.from_weights(A, gamma=gamma).U.T"),
    "TR metric +H": ("verify/trust_region.py", "G = sla.cho_solve(c, np.eye(K.shape[0])) / dt - H", "G = sla.cho_solve(c, np.eye(K.shape[0])) / dt + H"),
    "CE Newton 3 iterations": ("verify/losses/cross_entropy.py", "NEWTON_MAX_ITERATIONS = 200", "NEWTON_MAX_ITERATIONS = 3"),
    "CE hessian half pp^T": ("verify/losses/cross_entropy.py", "        H = -(X @ X.T)", "        H = -0.5 * (X @ X.T)"),
    "square loss value x(1+1e-9)": ("verify/losses/square.py", "        return 0.5 * np.einsum(\"...ij,...ij->...\", G, G), G", "        return 0.5 * (1 + 1e-9) * np.einsum(\"...ij,...ij->...\", G, G), G"),
    "dA scaled 1+1e-6": ("verify/gradients.py", "    return softmax_vjp(layer.S, Gamma), dB", "    return (1 + 1e-6) * softmax_vjp(layer.S, Gamma), dB"),
    "solver tol 1e-6": ("verify/trust_region.py", "tol: float = 1e-12, max_iter: int = 200) -> TrustRegionSolution:", "tol: float = 1e-6, max_iter: int = 200) -> TrustRegionSolution:"),
    "GD first rate_integral 1.0": ("verify/dynamics.py", "    st = recorder.record(0.0, A, B, 0.0)\n", "    st = recorder.record(0.0, A, B, 1.0)\n"),
    "GD trapezoid x1.5": ("verify/dynamics.py", "integral += 0.5 * lr * (prev_rate + rate)", "integral += 0.75 * lr * (prev_rate + rate)"),
    "tracker residual norms wrong axis": ("verify/convergence.py", "rho = np.sqrt((R * R).sum(axis=0))", "rho = np.sqrt((R * R).sum(axis=1))"),
    "tracker residual norms R / R": ("verify/convergence.py", "rho = np.sqrt((R * R).sum(axis=0))", "rho = np.sqrt((R / R).sum(axis=0))"),
    "tracker keeps noise directions": ("verify/convergence.py", "keep = d > ORTHONORMAL_KEEP * np.maximum(before[: len(d)], np.finfo(float).tiny)", "keep = d > 1e-10 * max(float(d.max()), np.finfo(float).tiny)"),
    "z0 misnamed": ("verify/model.py", 'as_matrix("z0", z0, shape=Phi.shape)', 'as_matrix("XXz0XX", z0, shape=Phi.shape)'),
    "B0 misnamed": ("verify/dynamics.py", 'names=("A0", "B0")', 'names=("A0", "XXB0XX")'),
    "layers misnamed": ("verify/model.py", 'layers = check_positive("layers", layers, integer=True)', 'layers = check_positive("XXlayersXX", layers, integer=True)'),
    "gamma = 0 accepted": ("verify/_validation.py", "not (0.0 < g < 1.0)", "not (0.0 <= g < 1.0)"),
    "gamma near 1 refused": ("verify/_validation.py", "not (0.0 < g < 1.0)", "not (0.0 < g < 1.0 - 1e-4)"),
    "lr = 0 accepted": ("verify/_validation.py", "not np.isfinite(value) or value <= 0:", "not np.isfinite(value) or value < 0:"),
    "unrolled without B/Y rows check": ("verify/gradients.py", "    check_output_rows(B, Y)  # (without", "    pass  # (without"),
    "TR interior solution flagged boundary": ("verify/trust_region.py", "return TrustRegionSolution(back(w), 0.0, 0, False)", "return TrustRegionSolution(back(w), 0.0, 0, True)"),
    "TR interior accepted up to 1.5 delta": ("verify/trust_region.py", "if np.linalg.norm(w) <= delta * (1 + tol):", "if np.linalg.norm(w) <= delta * 1.5:"),
    "GD previous lambda not advanced": ("verify/dynamics.py", "A, B, st, prev_rate = A_new, B_new, st_new, rate", "A, B, st, prev_rate = A_new, B_new, st_new, prev_rate"),
    "state_wise W* stale (gradient uses W*)": ("verify/losses/square.py", "        return W @ problem.state.gram - problem.state.YPhiT", "        return (W - problem.state.W_star) @ problem.state.gram * (1 + 1e-7)"),
    "recursive solve update sign": ("verify/losses/square.py", "out = _GEMM(-1.0, X[:, :h], R[:h, h:], beta=1.0, c=X[:, h:], overwrite_c=1)", "out = _GEMM(1.0, X[:, :h], R[:h, h:], beta=1.0, c=X[:, h:], overwrite_c=1)"),
    "recursive solve R12 transposed": ("verify/losses/square.py", "out = _GEMM(-1.0, X[:, :h], R[:h, h:], beta=1.0, c=X[:, h:], overwrite_c=1)", "out = _GEMM(-1.0, X[:, :h], R[h:, :h].T, beta=1.0, c=X[:, h:], overwrite_c=1)"),
    "tracker eigenvalues ascending taken as top": ("verify/convergence.py", "theta, C = w[: -k - 1: -1], C[:, : -k - 1: -1]", "theta, C = w[:k], C[:, :k]"),
    "tracker Kato-Temple gap theta + a": ("verify/convergence.py", "+ self._residual_floor, (theta - a) / theta)", "+ self._residual_floor, (theta + a) / theta)"),
    "tracker Weyl step on sigma_2 halved": ("verify/convergence.py", "root = math.sqrt(self._mu2_up) + e\n", "root = math.sqrt(self._mu2_up) + 0.5 * e\n"),
    "tracker cold-start a from mu_1": ("verify/convergence.py", "self._mu2_up = float(w[-2]) + margin", "self._mu2_up = float(w[-1]) + margin"),
    "tracker conditional value kept after a failed refresh": ("verify/convergence.py", "                self.stats[\"dense_rechecks\"] += 1\n                return self._cold_start(U)\n", "                self.stats[\"dense_rechecks\"] += 1\n"),
}

def run(name, extra):
    path, old, new = MUTANTS[name]
    d = tempfile.mkdtemp(prefix="mut-")
    for sub in ("verify", "theory"):
        shutil.copytree(os.path.join(ROOT, sub), os.path.join(d, sub))
    f = os.path.join(d, path)
    text = open(f).read()
    assert text.count(old) == 1, (name, text.count(old))
    open(f, "w").write(text.replace(old, new))
    t = time.time()
    out = subprocess.run([PY, "-m", "verify", "--json", os.path.join(d, "r.json")] + extra, cwd=d,
                         env=dict(os.environ, PYTHONPATH=d, OPENBLAS_NUM_THREADS="1"), capture_output=True, text=True)
    try:
        rep = json.load(open(os.path.join(d, "r.json")))
        failing = [c["id"] for c in rep["claims"] if not c["holds"]]
    except Exception as e:
        failing = [f"NO REPORT rc={out.returncode} {out.stderr[-300:]}"]
    shutil.rmtree(d)
    return failing, time.time() - t

if __name__ == "__main__":
    names = [a for a in sys.argv[1:] if not a.startswith("--")] or list(MUTANTS)
    extra = [a for a in sys.argv[1:] if a.startswith("--")]
    for n in names:
        failing, dt = run(n, extra)
        print(f"{'KILLED ' if failing else 'SURVIVED'} {n:45s} {dt:5.1f}s  {failing}", flush=True)
