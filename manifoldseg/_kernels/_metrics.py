"""Expected mutual information under the hypergeometric model, grouped by cluster size.

Vinh, Epps & Bailey (2010), "Information theoretic measures for clusterings comparison", JMLR 11,
eq. 24a. The expectation depends on the two labelings only through their cluster sizes, so the
double sum over (row cluster, column cluster) is taken over *distinct* sizes, each term weighted by
how many clusters have that size. With 1e4 cells of a few hundred distinct sizes this is
~1e4 times fewer terms than the plain double loop (scikit-learn's), with the same result.
"""

from __future__ import annotations

from math import exp, lgamma, log

from numba import njit


@njit(cache=True)
def expected_mutual_information(a_sizes, a_mult, b_sizes, b_mult, n):
    """E[MI] (natural log) of two random labelings with the given cluster sizes.

    Parameters
    ----------
    a_sizes, a_mult
        Distinct row-cluster sizes (int64) and how many row clusters have each size.
    b_sizes, b_mult
        The same for the column clusters.
    n
        Number of items (the sum of all cluster sizes on either side).

    Returns
    -------
    float
        The expected mutual information.
    """
    N = float(n)
    lg_n = lgamma(N + 1.0)
    log_n = log(N)
    emi = 0.0
    for i in range(a_sizes.shape[0]):
        a = a_sizes[i]
        fa = float(a)
        lg_a = lgamma(fa + 1.0) + lgamma(N - fa + 1.0)
        for j in range(b_sizes.shape[0]):
            b = b_sizes[j]
            fb = float(b)
            lo = max(1, a + b - n)
            hi = min(a, b)
            if lo > hi:
                continue
            base = lg_a + lgamma(fb + 1.0) + lgamma(N - fb + 1.0) - lg_n
            log_ab = log(fa) + log(fb)
            s = 0.0
            for nij in range(lo, hi + 1):
                f = float(nij)
                logp = (
                    base
                    - lgamma(f + 1.0)
                    - lgamma(fa - f + 1.0)
                    - lgamma(fb - f + 1.0)
                    - lgamma(N - fa - fb + f + 1.0)
                )
                s += (f / N) * (log_n + log(f) - log_ab) * exp(logp)
            emi += float(a_mult[i]) * float(b_mult[j]) * s
    return emi
