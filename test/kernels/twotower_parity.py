#!/usr/bin/env python3
"""PyTorch float64 reference of the two-tower kernel (src/kernel/twotower.c).

Usage: twotower_parity.py KERNEL_JSON  (the output of test/kernels/twotower_parity.c)

For every case: rebuild both towers from the kernel's initial parameters,
redo each step of its method from doc/two-tower.md (the same batches; the
negatives the kernel drew), and compare the reported losses, every gradient
and the parameters after torch.optim.Adam with the kernel's, to 1e-6.  For
the exact method over every pair, also check loss and gradient against the
objective written by brute force over all user-item pairs (no Gramian).
Exits 1 on any mismatch.
"""
import json
import sys

import torch

torch.set_default_dtype(torch.float64)
TOL = 1e-6
failures = 0
checks = 0


def check(name, got, want):
    global failures, checks
    checks += 1
    got = torch.as_tensor(got, dtype=torch.float64).flatten()
    want = torch.as_tensor(want, dtype=torch.float64).flatten()
    if got.shape != want.shape:
        print(f"FAIL {name}: shape {tuple(got.shape)} != {tuple(want.shape)}")
        failures += 1
        return
    err = ((got - want).abs() / want.abs().clamp(min=1.0)).max().item() if got.numel() else 0.0
    if not err <= TOL:
        print(f"FAIL {name}: max error {err:.3g}")
        failures += 1


class Tower:
    """The tower of doc/two-tower.md, parameters in the kernel's flat order."""

    def __init__(self, spec, flat):
        self.spec = spec
        self.params = []
        off = 0
        self.emb = []
        for v, e in zip(spec["vocab"], spec["emb_dim"]):
            self.emb.append(flat[off:off + v * e].view(v, e))
            off += v * e
        widths = [spec["dense_dim"] + sum(spec["emb_dim"])] + spec["hidden"] + [spec["out_dim"]]
        self.layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            w = flat[off:off + a * b].view(b, a)
            off += a * b
            bias = flat[off:off + b]
            off += b
            self.layers.append((w, bias))
        self.n = off
        n = spec["n"]
        self.dense = torch.tensor(spec["dense"]).view(n, spec["dense_dim"])
        # pooling matrices: row r of bag f averages its ids (zeros when empty)
        self.pool = []
        for f, v in enumerate(spec["vocab"]):
            m = torch.zeros(n, v)
            for r in range(n):
                ids = spec["bags"][r][f]
                for i in ids:
                    m[r, i] += 1.0 / len(ids)
            self.pool.append(m)

    def forward(self, rows):
        rows = torch.as_tensor(rows, dtype=torch.long)
        parts = [self.dense[rows]] + [p[rows] @ e for p, e in zip(self.pool, self.emb)]
        h = torch.cat(parts, dim=1)
        for j, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if j < len(self.layers) - 1:
                act = self.spec["activation"]
                h = torch.relu(h) if act == "relu" else torch.tanh(h) if act == "tanh" else h
        if self.spec["normalize"]:
            h = torch.nn.functional.normalize(h, dim=1, eps=1e-12)
        return h

    def l2(self):
        return sum((e * e).sum() for e in self.emb) + sum((w * w).sum() for w, _ in self.layers)


def psd(g):
    w, v = torch.linalg.eigh(g)
    return (v * w.clamp(min=0.0)) @ v.T


def run(case, r):
    pu = torch.tensor(case["pairs"]["pu"])
    pi = torch.tensor(case["pairs"]["pi"])
    conf = torch.tensor(case["pairs"]["conf"])
    nu, ni, npairs = case["user"]["n"], case["item"]["n"], len(pu)
    ucount = torch.bincount(pu, minlength=nu).double()
    icount = torch.bincount(pi, minlength=ni).double()
    flat = torch.tensor(r["params0"]).clone().requires_grad_(True)
    nup = r["user_nparams"]
    opt = torch.optim.Adam([flat], lr=r["lr"], betas=(r["beta1"], r["beta2"]), eps=r["eps"])
    w, lam, alpha = r["gramian_weight"], r["l2"], r["alpha"]
    method = r["method"]
    tag = f"shape {r['shape']} {method}{' full' if r['full'] else ''}"
    allu, alli = list(range(nu)), list(range(ni))

    def towers():
        return Tower(case["user"], flat[:nup]), Tower(case["item"], flat[nup:])

    def gram(x):
        return x.T @ x / x.shape[0]

    with torch.no_grad():
        ut, it = towers()
        gu, gv = gram(ut.forward(allu)), gram(it.forward(alli))
        cache_u, cache_v = ut.forward(allu).clone(), it.forward(alli).clone()
        su, sv = gu.clone(), gv.clone()

    for s, st in enumerate(r["steps"]):
        opt.zero_grad()
        ut, it = towers()
        batch = torch.tensor(st["batch"])
        B = len(batch)
        bu, bi, c = pu[batch], pi[batch], conf[batch]
        u, v = ut.forward(bu), it.forward(bi)
        sc = (u * v).sum(1)
        if r["loss"] == "squared":
            obs = (c * (sc - 1.0) ** 2).mean()
        else:
            obs = (c * torch.nn.functional.softplus(-sc)).mean()
        rho_u = npairs / (nu * ucount[bu])
        rho_v = npairs / (ni * icount[bi])
        if method == "sampled":
            neg = torch.tensor(st["negatives"])
            q = icount / icount.sum() if r["popularity"] else torch.full((ni,), 1.0 / ni)
            n = it.forward(neg)
            s2 = (u @ n.T) ** 2
            iw = rho_u[:, None] / (ni * q[neg][None, :])
            pen = w * (iw * s2).sum() / (B * len(neg))
            surrogate = pen
        else:
            with torch.no_grad():
                if method == "exact":
                    gu = gram(ut.forward(allu))
                    gv = gram(it.forward(alli))
                elif method == "sogram":
                    ud, vd = u.detach(), v.detach()
                    gu = (1 - alpha) * gu + alpha * (ud.T * rho_u) @ ud / B
                    gv = (1 - alpha) * gv + alpha * (vd.T * rho_v) @ vd / B
                elif method == "sagram":
                    ud, vd = u.detach(), v.detach()
                    cu, cv = cache_u[bu], cache_v[bi]
                    gu = psd(su + ((ud.T * rho_u) @ ud - (cu.T * rho_u) @ cu) / B)
                    gv = psd(sv + ((vd.T * rho_v) @ vd - (cv.T * rho_v) @ cv) / B)
                    for b in range(B):
                        e = bu[b].item()
                        su += (torch.outer(ud[b], ud[b]) - torch.outer(cache_u[e], cache_u[e])) / nu
                        cache_u[e] = ud[b]
                        e = bi[b].item()
                        sv += (torch.outer(vd[b], vd[b]) - torch.outer(cache_v[e], cache_v[e])) / ni
                        cache_v[e] = vd[b]
            pen = w * (gu * gv).sum()
            surrogate = w * ((rho_u * ((u @ gv) * u).sum(1)).mean()
                             + (rho_v * ((v @ gu) * v).sum(1)).mean())
        l2 = lam * (ut.l2() + it.l2())
        loss = obs + pen + l2
        (obs + surrogate + l2).backward()
        check(f"{tag} step {s} loss", st["stats"], [loss.item(), obs.item(), pen.item(), l2.item()])
        check(f"{tag} step {s} grad", st["grad"], flat.grad)
        if r["full"]:
            # exact over every pair == the objective by brute force over all pairs
            f2 = torch.tensor(r["params0"]).requires_grad_(True)
            ub = Tower(case["user"], f2[:nup]).forward(allu)
            ib = Tower(case["item"], f2[nup:]).forward(alli)
            allsc = ub @ ib.T
            ps = allsc[pu, pi]
            o = (conf * ((ps - 1) ** 2 if r["loss"] == "squared"
                         else torch.nn.functional.softplus(-ps))).mean()
            brute = o + w * (allsc ** 2).mean() + lam * (Tower(case["user"], f2[:nup]).l2()
                                                          + Tower(case["item"], f2[nup:]).l2())
            brute.backward()
            check(f"{tag} brute-force loss", st["stats"][0], brute.item())
            check(f"{tag} brute-force gradient", st["grad"], f2.grad)
        opt.step()
        check(f"{tag} step {s} adam", st["params"], flat.detach())


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    for case in data["cases"]:
        for r in case["runs"]:
            run(case, r)
    print(f"twotower parity: {checks - failures} passed, {failures} failed (tolerance {TOL})")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
