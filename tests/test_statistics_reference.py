"""The judging engine's statistics against scipy's, computed by a route of its own: Student's
t at the fractional degrees of freedom the drift test uses, Welch's and the paired t-test,
Benjamini-Hochberg, the order-statistic interval of a median, the MAD; and the verdicts at
and around their thresholds. Inputs are skewed (a few slow runs, as timings are), where a
mean and a median, or a standard deviation and a MAD, part ways."""

import numpy as np
import pytest
from scipy import stats

from bench.analyze.judge import (FASTER, IMPROVEMENT, MAD_SCALE, NO_CHANGE, REGRESSION, SAME,
                                 SLOWER, adjust, drift, interval_verdict, paired, t_interval,
                                 trimmed_means, verdict, welch)
from bench.analyze.judge import UNDECIDED as INCONCLUSIVE
from bench.analyze.t_distribution import student_t_cdf, student_t_quantile
from bench.measure.stats import median_ci_ranks

# log unit medians: mostly near a level, now and then a run 30% slow
SKEWED_BASE = np.log([10.0, 10.2, 9.9, 13.1, 10.1])
SKEWED_CAND = np.log([10.9, 11.0, 14.6, 10.8])


@pytest.mark.parametrize("df", [1.0, 1.11, 1.48, 3.33, 7.4, 29.6, 250.0])
def test_student_t_matches_scipy_at_fractional_degrees_of_freedom(df):
    for p in (0.6, 0.9, 0.975, 0.995):
        assert student_t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-7)
    for t in (-4.0, -0.3, 0.0, 1.7, 12.0):
        assert student_t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), rel=1e-9, abs=1e-12)


def test_welch_matches_scipy_on_skewed_units():
    reference = stats.ttest_ind(SKEWED_CAND, SKEWED_BASE, equal_var=False)
    ci = reference.confidence_interval(0.95)
    diff, low, high, p = welch(SKEWED_BASE.mean(), SKEWED_BASE.var(ddof=1), len(SKEWED_BASE),
                               SKEWED_CAND.mean(), SKEWED_CAND.var(ddof=1), len(SKEWED_CAND))
    assert diff == pytest.approx(SKEWED_CAND.mean() - SKEWED_BASE.mean())
    assert (low, high) == pytest.approx((ci.low, ci.high), rel=1e-7)
    assert p == pytest.approx(reference.pvalue, rel=1e-7)
    # those hold the Welch-Satterthwaite degrees of freedom, 5.8, not n - 2 = 7: at 7 the
    # interval would be 4% narrower
    assert reference.df == pytest.approx(5.80, abs=0.01)


def test_paired_matches_scipy_s_one_sample_t_on_round_log_ratios():
    rounds = np.log([1.08, 1.02, 1.11, 1.05, 0.97, 1.31, 1.04])  # one wild round
    reference = stats.ttest_1samp(rounds, 0.0)
    ci = reference.confidence_interval(0.95)
    low, high, p = paired(rounds.mean(), rounds.std(ddof=1), len(rounds))
    assert (low, high) == pytest.approx((ci.low, ci.high), rel=1e-7)
    assert p == pytest.approx(reference.pvalue, rel=1e-7)
    assert reference.df == len(rounds) - 1


def test_yuen_s_trimmed_mean_and_its_error_match_scipy_s_trimmed_t():
    """scipy has Yuen's t for two samples only (``ttest_ind(trim=...)``): it combines each
    sample's trimmed mean and squared standard error, which ``trimmed_means`` gives."""
    rng = np.random.default_rng(5)
    a = np.log(rng.lognormal(0.0, 0.03, 10) * np.r_[1.0, 1.0, 1.5, [1.0] * 7])  # one wild
    b = np.log(rng.lognormal(0.06, 0.03, 12) * np.r_[[1.0] * 11, 0.6])
    (ea, eb), (sa, sb), (dfa, dfb), (na, nb) = trimmed_means(np.vstack(
        [np.r_[a, np.nan, np.nan], b]))
    assert (na, nb) == (10, 12) and (dfa, dfb) == (10 - 2 * 2 - 1, 12 - 2 * 2 - 1)
    assert (ea, eb) == pytest.approx((stats.trim_mean(a, 0.2), stats.trim_mean(b, 0.2)))
    da, db = sa ** 2, sb ** 2
    df = (da + db) ** 2 / (da ** 2 / dfa + db ** 2 / dfb)
    reference = stats.ttest_ind(b, a, equal_var=False, trim=0.2)
    _, _, p = t_interval(eb - ea, np.sqrt(da + db), df)
    assert df == pytest.approx(reference.df, rel=1e-12)
    assert p == pytest.approx(reference.pvalue, rel=1e-7)
    assert (eb - ea) / np.sqrt(da + db) == pytest.approx(reference.statistic, rel=1e-9)


def test_benjamini_hochberg_matches_scipy_with_ties_and_nothing_tested():
    rng = np.random.default_rng(11)
    p = np.concatenate([rng.uniform(0, 1, 40), rng.uniform(0, 0.002, 8), [0.03, 0.03, 0.03]])
    rng.shuffle(p)
    assert adjust(p) == pytest.approx(stats.false_discovery_control(p, method="bh"), rel=1e-12)
    # the NaNs (nothing tested) count for nothing: the others' q-values are theirs alone
    with_nan = np.insert(p, [3, 17], np.nan)
    q = adjust(with_nan)
    assert np.isnan(q[[3, 18]]).all()
    assert np.delete(q, [3, 18]) == pytest.approx(stats.false_discovery_control(p), rel=1e-12)


@pytest.mark.parametrize("n", [*range(6, 40), 57, 100, 299, 300])
def test_the_median_s_interval_ranks_are_the_binomial_s(n):
    """The widest symmetric pair of ranks that still covers the median with 95%: rank j
    covers with 1 - 2 P(B <= j - 1), B ~ Binomial(n, 1/2); j + 1 would not."""
    j, k = median_ci_ranks(n)
    assert k == n + 1 - j

    def coverage(rank):
        return 1 - 2 * stats.binom.cdf(rank - 1, n, 0.5)

    assert coverage(j) >= 0.95 and coverage(j + 1) < 0.95


def test_beyond_300_samples_the_ranks_follow_the_normal_approximation():
    for n in (301, 1000, 5000):
        j, k = median_ci_ranks(n)
        half = stats.norm.ppf(0.975) * np.sqrt(n) / 2
        assert (j, k) == (int(np.floor(n / 2 - half)), int(np.ceil(1 + n / 2 + half)))
        # the coverage the binomial gives those ranks: 95% or a little more, never less
        assert 0.95 <= 1 - 2 * stats.binom.cdf(j - 1, n, 0.5) < 0.97


def test_drift_centres_on_the_median_and_spreads_by_the_mad_on_skewed_ratios():
    """Eight measurements, two of them really changed (+40%, +55%): the mean and the
    standard deviation follow those two, the median and the MAD do not."""
    d = np.log([1.01, 0.99, 1.02, 1.00, 0.98, 1.03, 1.40, 1.55])
    got = drift(d, ["step"] * 8, np.zeros(8))
    assert got["shift"] == pytest.approx(np.full(8, np.median(d)))
    assert np.median(d) < np.mean(d) - 0.07  # apart enough to tell which was taken
    mad = stats.median_abs_deviation(d, scale="normal")
    assert got["spread"] == pytest.approx(np.full(8, mad), rel=1e-4)  # 1.4826 vs 1/0.6745
    assert MAD_SCALE == pytest.approx(1 / stats.norm.ppf(0.75), rel=1e-4)
    df = max(1.0, 0.37 * 7)
    p_last = 2 * stats.t.sf(abs(d[7] - np.median(d)) / got["se"][7], df)
    assert got["p"][7] == pytest.approx(p_last, rel=1e-6)
    assert got["p"][7] < 0.01 and got["p"][0] > 0.5


@pytest.mark.parametrize("low, high, expected", [
    (0.952, 0.977, SAME),   # within 5% of 1, though it excludes 1: no change worth a name
    (1.02, 1.048, SAME),
    (0.95, 1.05, SAME),     # the bounds themselves are within
    (0.9499, 0.977, FASTER),
    (1.02, 1.0501, SLOWER),
    (0.9499, 1.0, INCONCLUSIVE),  # holds 1 and leaves the band
    (1.0, 1.0501, INCONCLUSIVE),
    (0.94, 1.06, INCONCLUSIVE)])
def test_interval_verdicts_at_and_around_the_threshold(low, high, expected):
    assert interval_verdict(low, high, 0.05) == expected


@pytest.mark.parametrize("ratio, low, high, q, expected", [
    (1.06, 1.001, 1.12, 0.01, REGRESSION),
    (1.06, 1.0, 1.12, 0.01, NO_CHANGE),      # the interval reaches no change
    (1.06, 1.001, 1.12, 0.051, NO_CHANGE),   # not significant among many
    (1.049, 1.001, 1.1, 0.01, NO_CHANGE),    # under the threshold
    (1.051, 1.001, 1.1, 0.01, REGRESSION),
    (0.951, 0.9, 0.999, 0.01, NO_CHANGE),
    (0.949, 0.9, 0.999, 0.01, IMPROVEMENT),
    (0.949, 0.9, 1.0, 0.01, NO_CHANGE)])
def test_significance_verdicts_at_and_around_the_threshold(ratio, low, high, q, expected):
    assert verdict(ratio, low, high, q) == expected
