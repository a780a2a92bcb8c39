#!/usr/bin/env python3
"""Writes the reference values the statistics tests compare with (Fixtures/statistics/*.json).

Run once with SciPy and NumPy installed (made with SciPy 1.17.1):

    python3 Fixtures/statistics/make_fixtures.py

The tests read the JSON files; they never run Python. Every value is computed by SciPy (or, for
variances, exactly with rational arithmetic), independently of XeroML's code.
"""
import json
import os
import random
from fractions import Fraction

import numpy as np
import scipy
from scipy import stats

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, payload):
    payload = {"generator": "Fixtures/statistics/make_fixtures.py", "scipy": scipy.__version__, **payload}
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(payload, f, indent=1)
        f.write("\n")


def w_plus(x, axis=-1):
    """W+ of one-sample data: sum of the average ranks of |x| over the positive values."""
    x = np.asarray(x)
    ranks = stats.rankdata(np.abs(x), axis=axis)
    return np.sum(np.where(x > 0, ranks, 0), axis=axis)


def exact_conditional(d):
    """Exact two-sided p of the signed-rank test: zeros dropped, every sign flip of the rest."""
    nonzero = [v for v in d if v != 0]
    if not nonzero:
        return 1.0
    res = stats.permutation_test((np.asarray(nonzero, dtype=float),), w_plus, vectorized=True,
                                 permutation_type="samples", n_resamples=np.inf, alternative="two-sided")
    return float(min(1.0, res.pvalue))


def wilcoxon_cases():
    rng = random.Random(20261201)
    cases = []
    # Ties and zeros at n = 4 … 12: small integers (and halves) make many ties.
    for n in range(4, 13):
        for k in range(4):
            d = [rng.choice([-3, -2, -1, -0.5, 0, 0.5, 1, 1, 2, 2, 3]) for _ in range(n)]
            cases.append({"differences": d, "method": "exact", "p": exact_conditional(d),
                          "n": sum(1 for v in d if v != 0)})
    # n = 4 with ties: the smallest p-value any outcome can have is 2 / 2^4 = 0.125.
    for d in ([1, 2, 2, 3], [1, 1, 1, 1], [-1, -2, -2, -3], [0.5, 1.5, 1.5, 2, 2, 2, 0, 0]):
        cases.append({"differences": d, "method": "exact", "p": exact_conditional(d),
                      "n": sum(1 for v in d if v != 0)})
    # Exact, no ties, up to n = 25 (SciPy's own exact distribution).
    for n in (5, 9, 16, 25):
        d = [round(rng.gauss(0.3, 1), 6) for _ in range(n)]
        r = stats.wilcoxon(d, method="exact")
        cases.append({"differences": d, "method": "exact", "p": float(r.pvalue), "statistic": float(r.statistic),
                      "n": n})
    # Exact with ties at n = 25, 40 and 50 non-zero differences: 2^n sign flips are too many for
    # SciPy's enumeration, so these count them with Python integers (exact_by_counting, checked
    # against SciPy's permutation test in main()).
    for n, values in ((25, [-2, -1, 1, 1, 2, 3]), (40, [-2, -1, 1, 1, 2, 3, 0]), (50, [-1.5, -1, 1, 1.5, 2])):
        d = [rng.choice(values) for _ in range(n)]
        cases.append({"differences": d, "method": "exact", "p": exact_by_counting(d),
                      "n": sum(1 for v in d if v != 0)})
    # Normal approximation above 50 non-zero differences, with ties, zeros and the continuity correction.
    for n in (60, 120, 400):
        d = [rng.choice([-3, -2, -1, 0, 1, 2, 3, 4]) * 0.25 for _ in range(n)]
        r = stats.wilcoxon(d, zero_method="wilcox", correction=True, method="asymptotic")
        cases.append({"differences": d, "method": "normal", "p": float(r.pvalue), "statistic": float(r.statistic),
                      "n": sum(1 for v in d if v != 0)})
    return cases


def exact_by_counting(d):
    """The exact conditional p-value with Python integers: the count of sign assignments whose
    doubled W+ is at most the observed smaller one, doubled, over 2^n. Cross-checked below against
    SciPy's permutation test where enumeration is feasible."""
    nonzero = [v for v in d if v != 0]
    n = len(nonzero)
    ranks = stats.rankdata(np.abs(nonzero))
    doubled = [int(round(2 * r)) for r in ranks]
    plus = sum(r for r, v in zip(doubled, nonzero) if v > 0)
    minus = sum(doubled) - plus
    counts = {0: 1}
    for r in doubled:
        new = dict(counts)
        for s, c in counts.items():
            new[s + r] = new.get(s + r, 0) + c
        counts = new
    t = min(plus, minus)
    tail = sum(c for s, c in counts.items() if s <= t)
    return float(min(Fraction(1), Fraction(2 * tail, 2 ** n)))


def mcnemar_cases():
    cases = []
    for b, c in [(0, 0), (0, 1), (1, 0), (0, 5), (1, 4), (2, 9), (3, 12), (5, 5), (11, 1), (0, 10), (7, 20),
                 (40, 60), (300, 360)]:
        p = 1.0 if b + c == 0 else float(stats.binomtest(min(b, c), b + c, 0.5).pvalue)
        cases.append({"b": b, "c": c, "p": p})
    return cases


def interval_cases():
    rng = random.Random(7)
    t_cases = []
    for n in (2, 3, 5, 10, 30, 31, 45, 100, 1000):
        values = [round(rng.gauss(0.6, 0.2), 6) for _ in range(n)]
        mean = float(np.mean(values))
        se = float(stats.sem(values))
        low, high = stats.t.interval(0.95, n - 1, loc=mean, scale=se)
        t_cases.append({"values": values, "lower": float(low), "upper": float(high), "standard_error": se})
    wilson = []
    for k, n in [(0, 1), (1, 1), (0, 5), (3, 5), (5, 5), (1, 10), (9, 10), (50, 100), (1, 100), (999, 1000)]:
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        wilson.append({"successes": k, "count": n, "lower": float(ci.low), "upper": float(ci.high)})
    return t_cases, wilson


def variance_cases():
    """Values near 1e8 and 1e-8 (and a mix), with their exact sample variance from rational arithmetic."""
    rng = random.Random(11)
    cases = []
    def add(label, values):
        exact = [Fraction(v) for v in values]
        n = len(exact)
        mean = sum(exact) / n
        variance = sum((x - mean) ** 2 for x in exact) / (n - 1)
        cases.append({"label": label, "values": values, "mean": float(mean), "variance": float(variance)})
    add("1e8 + small integers", [1e8 + k for k in (1, 2, 3, 4)])
    add("1e8 + tenths", [1e8 + rng.randint(0, 9) / 10 for _ in range(50)])
    add("latency in ns near 1.5e9", [1.5e9 + rng.randint(-500, 500) for _ in range(200)])
    add("1e-8 scale", [1e-8 * (1 + rng.random() * 1e-3) for _ in range(100)])
    add("powers of two near 1e-8", [k * 2.0 ** -27 for k in (1, 2, 3, 4)])
    add("micro-units near 1e12", [1e12 + rng.randint(0, 1000) * 0.5 for _ in range(64)])
    return cases


def main():
    # Cross-check the integer counting against SciPy's permutation test where both are feasible.
    rng = random.Random(3)
    for _ in range(30):
        d = [rng.choice([-2, -1, 0, 1, 1, 2, 3]) for _ in range(rng.randint(4, 14))]
        assert abs(exact_by_counting(d) - exact_conditional(d)) < 1e-12, d
    write("wilcoxon.json", {"note": "Exact rows: the conditional (permutation) distribution of W+ over the sign "
                                    "flips of the non-zero differences, zeros dropped, average ranks for ties "
                                    "(scipy.stats.permutation_test, or scipy.stats.wilcoxon method='exact' without "
                                    "ties). Normal rows: scipy.stats.wilcoxon(zero_method='wilcox', correction=True, "
                                    "method='asymptotic').",
                            "cases": wilcoxon_cases()})
    write("mcnemar.json", {"note": "scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue", "cases": mcnemar_cases()})
    t_cases, wilson = interval_cases()
    write("intervals.json", {"note": "scipy.stats.t.interval(0.95, n - 1, mean, sem) and "
                                     "binomtest(k, n).proportion_ci(method='wilson')",
                             "student_t": t_cases, "wilson": wilson})
    write("variance.json", {"note": "exact sample variance (n - 1) of the doubles, by fractions.Fraction, rounded once",
                            "cases": variance_cases()})


if __name__ == "__main__":
    main()
