"""The verdict table at the top of EXPERIMENTS.md, written from the re-run experiments' summary.json files:
one line per claim, regime and tie convention, with the figure, its 95% interval over datasets and the label
of `gflow.stats.verdict_label` (computed by the experiment scripts; this script only lays them out).

    python experiments/verdicts.py [--runs runs] > table.md

Reads <runs>/regimes/summary.json (§7), <runs>/optimal_alpha/summary.json (§4),
<runs>/phase_diagram/summary.json (§6), <runs>/u_curve/summary.json (§1), <runs>/oa_of/summary.json (§2),
<runs>/phase1_alignment/summary.json (§3) and <runs>/stopping/summary.json (§5);
a missing summary is listed as not run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _ci(ci, digits=2):
    return "–" if ci is None or any(c is None for c in ci) else f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def _fit(f, digits=2):
    return (
        "no fit" if f is None or f.get("exponent") is None else f"{f['exponent']:+.{digits}f} {_ci(f['ci95'], digits)}"
    )


def _sci(x):
    return "–" if x is None else f"{x:.2g}"


def regime_rows(s) -> list[str]:
    rows = []
    for regime in ("separable", "high_dim"):
        if regime not in s:
            continue
        r = s[regime]
        in_regime = r["n_scan"]["in_regime"]
        where = f"{regime} ({'λ > 0: in regime' if in_regime else 'λ < 0: outside'})"
        ref = next(st for st in r["n_scan"]["settings"] if st["n"] == s["preset"]["ref_n"])
        for ties in ("error", "half"):
            e = ref[ties]
            rows.append(
                f"| 1. rich arm of the U, E(α = 10⁻⁴) − min (n = {ref['n']}, h = {ref['width']}) | {where} | ties = {ties} | "
                f"{_sci(e['rich_arm'])} [{_sci(e['rich_arm_ci95'][0])}, {_sci(e['rich_arm_ci95'][1])}] (tie mass at α = 10⁻⁴: "
                f"{_sci(e['tie_mass'][0])}) | {e['rich_arm_label']} |"
            )
            rows.append(
                f"| 1. lazy arm of the U, E(α = 10) − min (same) | {where} | ties = {ties} | "
                f"{_sci(e['lazy_arm'])} [{_sci(e['lazy_arm_ci95'][0])}, {_sci(e['lazy_arm_ci95'][1])}] | {e['lazy_arm_label']} |"
            )
        for key, claim, theory in (
            ("n_scan", "4b. α* ∝ n⁻¹ (exponent in n)", -1),
            ("h_scan", "4a. α* ∝ h^−1/2 (exponent in h)", -0.5),
        ):
            for ties in ("error", "half"):
                for rule in ("pooled", "median"):
                    f = r[key]["fits"][ties][rule]
                    rows.append(
                        f"| {claim}, {rule} rule | {where} | ties = {ties} | {_fit(f)} (theory {theory:g})".replace(
                            "(theory -", "(theory −"
                        )
                        + f" | {f['label']} |"
                    )
        for m in r["multiplier"]:
            rows.append(
                f"| 4c. c* = α*² (direct c sweep, n = {m['n']}) | {where} | ties = error | c* {m['c_star']:.3g} vs α*² "
                f"{m['alpha_star_sq']:.3g} "
                f"(relative difference {m['relative_difference']:.1g}) | {m['label']} |"
            )
        conv = r.get("conventions")
        if conv:
            f = conv["phase1_fits"]["q0.9"]
            rows.append(
                f"| 3a. t_α = Θ(log(1/α)/n): exponent of t_α's slope in n, summed-loss time | {where} | Phase 1 ends at L = 0.9 log 2 | "
                f"{f['exponent_sum_time']:+.2f} {_ci(f['ci95_sum_time'])} (theory −1) | {f['label_sum_time']} |"
            )
            for q in ("q0.9", "q0.99"):
                a = next(x for x in conv["phase1_fits"][q]["angle"] if x["n"] == s["preset"]["ref_n"])
                rows.append(
                    f"| 3b. final angle ∝ √α: local exponent on α = 10⁻⁴…10⁻² (n = {a['n']}) | {where} | Phase 1 ends at L = "
                    f"{q[1:]} log 2 | "
                    f"{a['local_exponent']:+.2f} {_ci(a['ci95'])} (theory 0.5) | {a['label']} |"
                )
    return rows


def optimal_alpha_rows(s) -> list[str]:
    rows = []
    where = (
        "default mixture d = 100, κ/σ = 2 ("
        + ("in regime" if s["fits"]["n"]["error"]["in_regime"] else "λ < 0: outside")
        + ")"
    )
    for key, claim, theory in (
        ("n", "4b. α* ∝ n⁻¹ (exponent in n)", -1),
        ("width", "4a. α* ∝ h^−1/2 (exponent in h)", -0.5),
    ):
        for ties in ("error", "half"):
            for rule in ("pooled", "median"):
                f = s["fits"][key][ties]["fits"][rule]
                rows.append(
                    f"| {claim}, {rule} rule (§4) | {where} | ties = {ties} | {_fit(f)} (theory {theory:g})".replace(
                        "(theory -", "(theory −"
                    )
                    + f" | {f['label']} |"
                )
    return rows


def phase_diagram_rows(s) -> list[str]:
    rows = []
    where = "default mixture d = 100, κ/σ = 2 (" + ("in regime" if s["in_regime"] else "λ < 0: outside") + ")"
    for ties in ("error", "half"):
        for rule in ("pooled", "median"):
            f = s[ties]["n_exponent"][rule]
            rows.append(
                f"| 4b. α* ∝ n⁻¹ (exponent in n), {rule} rule (§6) | {where} | ties = {ties} | {_fit(f)} (theory −1) | {f['label']} |"
            )
    return rows


def _arm(e, key):
    lo, hi = e[key + "_ci95"] or (None, None)
    return f"{_sci(e[key])} [{_sci(lo)}, {_sci(hi)}]"


def _setting(s, r):
    """The regime cell of one setting of a §1 / §2 summary, and its α grid's ends."""
    st = r["setting"]
    where = (
        f"n = {st['n']}, d = {st['d']}, κ/σ = {st['kappa'] / st['sigma']:.3g}, h = {s['preset']['width']} "
        f"({'λ > 0: in regime' if r['in_regime'] else 'λ < 0: outside'})"
    )
    return where, r["alpha"][0], r["alpha"][-1]


def u_curve_rows(s) -> list[str]:
    rows = []
    for r in s["results"]:
        where, a0, a1 = _setting(s, r)
        for ties in ("error", "half"):
            e = r[ties]
            rows.append(
                f"| 1. rich arm of the U, E(α = {a0:.0e}) − min (§1) | {where} | ties = {ties} | {_arm(e, 'rich_arm')} "
                f"(tie mass at α = {a0:.0e}: {_sci(r['tie_mass'][0])}) | {e['rich_arm_label']} |"
            )
            rows.append(
                f"| 1. lazy arm of the U, E(α = {a1:g}) − min (§1) | {where} | ties = {ties} | {_arm(e, 'lazy_arm')} | "
                f"{e['lazy_arm_label']} |"
            )
    return rows


def stopping_rows(s) -> list[str]:
    p = s["preset"]
    regime = "in regime" if s["in_regime"] else "λ < 0: outside"
    where = f"default mixture n = {p['n']}, d = {p['d']}, κ/σ = {p['kappa'] / p['sigma']:g} ({regime})"
    rows = []
    for rule, e in s["rules"]["net"].items():
        rows.append(
            f"| 5. rich arm of the U, E(α = {p['init_scales'][0]:.0e}) − min, stop at {rule} (§5) | {where} | ties = error | "
            f"{_arm(e, 'rich_arm')}; α* {e['alpha_star']:.3g} {_ci(e['ci95'], 3)} | {e['rich_arm_label']} |"
        )
    return rows


def oa_of_rows(s) -> list[str]:
    rows = []
    for r in s["results"]:
        where, a0, a1 = _setting(s, r)
        for tag, axis in (("xplus", "x₊"), ("mu", "μ₊")):
            for key, claim in (
                (f"OA_{tag}", f"OA falls: OA(α = {a0:.0e}) − OA(α = {a1:g})"),
                (f"OF_{tag}", f"OF rises: OF(α = {a1:g}) − OF(α = {a0:.0e})"),
            ):
                v = r["verdicts"][key]
                lo, hi = v["ci95"] or (None, None)
                rows.append(
                    f"| 2. {claim}, cone axis {axis} (§2) | {where} | analytic (no ties) | {_sci(v['gap'])} [{_sci(lo)}, "
                    f"{_sci(hi)}] | {v['label']} |"
                )
    return rows


def phase1_rows(s) -> list[str]:
    st, p = s["t_alpha_study"], s["preset"]
    src = p["settings"][1]
    where = (
        f"n = {min(p['n_values'])}–{max(p['n_values'])}, d = {src['d']}, κ/σ = {src['kappa'] / src['sigma']:.3g} "
        f"({'λ > 0: in regime' if st['in_regime'] else 'λ < 0: outside'})"
    )
    return [
        f"| 3a. t_α = Θ(log(1/α)/n): exponent of t_α's slope in n, summed-loss time (§3) | {where} | Phase 1 ends at L = 0.9 log 2 | "
        f"{st['sum_loss_slope_vs_n_exponent']:+.2f} {_ci(st['sum_loss_slope_vs_n_exponent_ci95'])} (theory −1) | {st['label']} |"
    ]


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs")
    args = ap.parse_args(argv)
    lines = ["| claim | regime | convention | figure [95% CI over datasets] | label |", "|---|---|---|---|---|"]
    for name, fn in (
        ("regimes", regime_rows),
        ("optimal_alpha", optimal_alpha_rows),
        ("phase_diagram", phase_diagram_rows),
        ("u_curve", u_curve_rows),
        ("oa_of", oa_of_rows),
        ("phase1_alignment", phase1_rows),
        ("stopping", stopping_rows),
    ):
        path = Path(args.runs) / name / "summary.json"
        if path.exists():
            lines += fn(json.loads(path.read_text()))
        else:
            lines.append(f"| ({name}: not run) | | | | |")
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
