"""Metric maths on feature arrays, each checked against a direct reference written from its definition."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.linalg

from ganforge.errors import UserError
from ganforge.metrics.fid import fid_from_features, frechet_distance, gaussian_stats
from ganforge.metrics.inception_score import inception_score
from ganforge.metrics.kid import kernel_inception_distance, mmd2_unbiased
from ganforge.metrics.memorisation import memorisation_check, nearest_neighbour_distances
from ganforge.metrics.prdc import density_coverage, precision_recall


def close(value: float, expected: float, tolerance: float = 1e-6) -> bool:
    """Return whether value matches expected within tolerance, absolute below 1 and relative above."""
    return abs(value - expected) <= tolerance * max(1.0, abs(expected))


# --------------------------------------------------------------------------------------------------- FID


def reference_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Return FID the textbook way: scipy's sqrtm of S1 S2, keeping the real part.

    As pytorch-fid does, eps * I is added to both covariances only if sqrtm returns non-finite values, which
    singular products can cause; the test then allows for the O(eps) change this makes.
    """
    mu1, sigma1 = real.mean(axis=0), np.cov(real, rowvar=False)
    mu2, sigma2 = fake.mean(axis=0), np.cov(fake, rowvar=False)
    with warnings.catch_warnings():  # sqrtm warns that a singular product "might not have a square root"
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = 1e-6 * np.eye(len(mu1))
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean.real))


def correlated_gaussian(rng: np.random.Generator, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    """Return n samples of a d-dimensional Gaussian with a random (non-diagonal) covariance."""
    mixing = rng.normal(size=(d, d)) / math.sqrt(d)
    return rng.normal(size=(n, d)) @ mixing + shift


def test_gaussian_stats_are_mean_and_unbiased_covariance() -> None:
    features = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]])
    mean, covariance = gaussian_stats(features)
    np.testing.assert_allclose(mean, [2.0, 2.0])
    # deviations (-2, -1), (0, -1), (2, 2); divided by N - 1 = 2
    np.testing.assert_allclose(covariance, [[4.0, 3.0], [3.0, 3.0]])


def test_fid_matches_sqrtm_reference_on_random_gaussians() -> None:
    rng = np.random.default_rng(0)
    real = correlated_gaussian(rng, 200, 16)
    fake = correlated_gaussian(rng, 200, 16, shift=0.3)
    assert close(fid_from_features(real, fake), reference_fid(real, fake))


def test_fid_matches_sqrtm_reference_with_fewer_samples_than_dims() -> None:
    # d = 64, N = 40: both covariances have rank 39, so S1 S2 is singular.
    rng = np.random.default_rng(1)
    real = correlated_gaussian(rng, 40, 64)
    fake = correlated_gaussian(rng, 40, 64, shift=0.2)
    fid = fid_from_features(real, fake)
    assert close(fid, reference_fid(real, fake))
    # The same FID computed in 40-digit arithmetic with mpmath (eigsy for both square roots): sqrtm is off by
    # about 1e-6 here, the eigenvalue route by about 1e-13.
    assert fid == pytest.approx(66.186261742423985, abs=1e-10)


def test_fid_matches_sqrtm_reference_with_rank_deficient_block() -> None:
    # Columns 16-23 repeat columns 0-7 (scaled) and column 24 is constant: an 8-d null space plus a zero
    # variance, as dead or duplicated feature channels give.
    rng = np.random.default_rng(2)

    def with_degenerate_block(base: np.ndarray) -> np.ndarray:
        return np.hstack([base, 2.0 * base[:, :8], np.full((len(base), 1), 3.0)])

    real = with_degenerate_block(correlated_gaussian(rng, 300, 16))
    fake = with_degenerate_block(correlated_gaussian(rng, 300, 16, shift=0.5))
    assert close(fid_from_features(real, fake), reference_fid(real, fake))


def test_fid_of_a_set_with_itself_is_zero_and_never_negative() -> None:
    rng = np.random.default_rng(3)
    for n, d in [(200, 16), (40, 64)]:
        features = correlated_gaussian(rng, n, d)
        fid = fid_from_features(features, features)
        assert 0.0 <= fid < 1e-6


def test_fid_between_unit_gaussians_is_squared_mean_shift() -> None:
    # Same covariance I: the trace term vanishes in the limit, FID -> ||m||² = 0.25 * 8 = 2.
    rng = np.random.default_rng(4)
    shift = np.full(8, 0.5)
    real = rng.normal(size=(20000, 8))
    fake = rng.normal(size=(20000, 8)) + shift
    assert fid_from_features(real, fake) == pytest.approx(shift @ shift, abs=0.05)


def test_fid_is_symmetric() -> None:
    rng = np.random.default_rng(5)
    real = correlated_gaussian(rng, 50, 32)
    fake = correlated_gaussian(rng, 60, 32, shift=0.1)
    assert close(fid_from_features(real, fake), fid_from_features(fake, real), 1e-9)
    stats_real, stats_fake = gaussian_stats(real), gaussian_stats(fake)
    assert close(frechet_distance(*stats_real, *stats_fake), frechet_distance(*stats_fake, *stats_real), 1e-9)


def test_fid_rejects_too_few_samples_and_mismatched_dims() -> None:
    with pytest.raises(UserError, match="at least 2 samples"):
        fid_from_features(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(UserError, match="dimensions differ"):
        fid_from_features(np.zeros((5, 3)), np.zeros((5, 4)))


# --------------------------------------------------------------------------------------------------- KID


def reference_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Return the unbiased MMD² by looping over pairs with k(a, b) = (a·b / d + 1)^3 written out."""
    d = x.shape[1]

    def kernel(a: np.ndarray, b: np.ndarray) -> float:
        return (sum(float(a[i]) * float(b[i]) for i in range(d)) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(kernel(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(kernel(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2.0 * xy


def test_mmd2_unbiased_matches_pairwise_loop_with_unequal_sizes() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(12, 5))
    y = rng.normal(0.4, 1.3, size=(15, 5))
    assert mmd2_unbiased(x, y) == pytest.approx(reference_mmd2(x, y), abs=1e-9)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift() -> None:
    rng = np.random.default_rng(7)
    real = rng.normal(size=(500, 8))
    same = rng.normal(size=(500, 8))
    shifted = rng.normal(size=(500, 8)) + 1.0
    mean, std = kernel_inception_distance(real, same, subsets=20)
    assert abs(mean) < 3 * std or abs(mean) < 0.01
    shifted_mean, shifted_std = kernel_inception_distance(real, shifted, subsets=20)
    assert shifted_mean > 0.1 and shifted_mean > 10 * shifted_std


def test_kid_is_deterministic_for_a_seed_and_caps_the_subset_size() -> None:
    rng = np.random.default_rng(8)
    real = rng.normal(size=(60, 4))
    fake = rng.normal(size=(40, 4)) + 0.5
    first = kernel_inception_distance(real, fake, subsets=5, subset_size=30, seed=3)
    assert kernel_inception_distance(real, fake, subsets=5, subset_size=30, seed=3) == first
    assert kernel_inception_distance(real, fake, subsets=5, subset_size=30, seed=4) != first
    # subset_size above both set sizes is capped at 40; with one subset holding all of fake it is valid
    mean, std = kernel_inception_distance(real, fake, subsets=1, subset_size=10_000)
    assert std == 0.0 and mean > 0


def test_kid_rejects_sets_of_one_sample() -> None:
    with pytest.raises(UserError, match="at least 2 samples"):
        kernel_inception_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(UserError, match="at least 2 samples"):
        mmd2_unbiased(np.zeros((5, 3)), np.zeros((1, 3)))


# --------------------------------------------------------------------------------------- Inception Score


def test_inception_score_of_uniform_predictions_is_one() -> None:
    mean, std = inception_score(np.zeros((20, 7)), splits=4)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_confident_even_predictions_is_number_of_classes() -> None:
    # Each split of 5 rows holds every class once, predicted with certainty: KL = log K per sample.
    classes = 5
    labels = np.tile(np.arange(classes), 3)
    logits = 1000.0 * np.eye(classes)[labels]  # softmax is one-hot to double precision
    mean, std = inception_score(logits, splits=3)
    assert abs(mean - classes) < 1e-6 and std < 1e-9


def test_inception_score_matches_hand_computation() -> None:
    # Two samples, two classes, one split: p(y|x1) = (1/4, 3/4), p(y|x2) = (1/2, 1/2), p(y) = (3/8, 5/8).
    logits = np.array([[0.0, math.log(3.0)], [5.0, 5.0]])
    kl_1 = 0.25 * math.log((1 / 4) / (3 / 8)) + 0.75 * math.log((3 / 4) / (5 / 8))
    kl_2 = 0.5 * math.log((1 / 2) / (3 / 8)) + 0.5 * math.log((1 / 2) / (5 / 8))
    mean, std = inception_score(logits, splits=1)
    assert mean == pytest.approx(math.exp((kl_1 + kl_2) / 2), abs=1e-12)
    assert mean == pytest.approx(1.0344005, abs=1e-7)  # written out: exp((0.035375 + 0.032269) / 2)
    assert std == 0.0


def test_inception_score_rejects_fewer_samples_than_splits() -> None:
    with pytest.raises(UserError, match="as many samples as splits"):
        inception_score(np.zeros((5, 3)), splits=10)


# ------------------------------------------------------------------ precision, recall, density, coverage


def brute_force_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float, float, float]:
    """Return precision, recall, density and coverage from full difference-based distance matrices."""
    real_real = np.linalg.norm(real[:, None] - real[None], axis=-1)
    fake_fake = np.linalg.norm(fake[:, None] - fake[None], axis=-1)
    fake_real = np.linalg.norm(fake[:, None] - real[None], axis=-1)  # (M, N)
    real_radii = np.sort(real_real, axis=1)[:, k]  # column 0 is the point itself
    fake_radii = np.sort(fake_fake, axis=1)[:, k]
    precision = (fake_real <= real_radii[None, :]).any(axis=1).mean()
    recall = (fake_real <= fake_radii[:, None]).any(axis=0).mean()
    density = (fake_real < real_radii[None, :]).sum() / (k * len(fake))
    coverage = (fake_real < real_radii[None, :]).any(axis=0).mean()
    return float(precision), float(recall), float(density), float(coverage)


def test_prdc_on_hand_made_line() -> None:
    # real = 0, 1, 2, 3 and fake = 0.5, 10 in 1-D, k = 1.
    # Real radii (nearest other real point): 1, 1, 1, 1. Fake radii: both 9.5 (each other).
    # Precision: 0.5 lies within 1 of reals 0 and 1; 10 is 7 from the nearest real -> 1/2.
    # Recall: every real is within 9.5 of fake 0.5 (distances 0.5, 0.5, 1.5, 2.5) -> 1.
    # Density: 0.5 is inside the balls of reals 0 and 1 (0.5 < 1), not 2 (1.5); 10 in none -> 2 / (1 * 2) = 1.
    # Coverage: the balls of reals 0 and 1 hold a fake, those of 2 and 3 do not -> 1/2.
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [10.0]])
    assert precision_recall(real, fake, k=1) == (0.5, 1.0)
    assert density_coverage(real, fake, k=1) == (1.0, 0.5)


def test_prdc_ball_edges_are_closed_for_precision_and_open_for_density() -> None:
    # Fake 4 lies exactly on the rim of real 3's ball (radius 1): inside for precision (Kynkäänniemi et al.,
    # <=), outside for density and coverage (Naeem et al., <). Fake radii are 6, so all reals are recalled.
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[4.0], [10.0]])
    assert precision_recall(real, fake, k=1) == (0.5, 1.0)
    assert density_coverage(real, fake, k=1) == (0.0, 0.0)


def test_prdc_of_a_set_with_itself() -> None:
    # Integer coordinates below 1e5 keep every squared distance an exact integer in float64, so each point's
    # k-th neighbour sits exactly on its ball's open rim. Each real ball then holds its own centre and its
    # k - 1 nearer neighbours: k fakes per ball, density = k N / (k N) = 1 exactly. Coverage and, with
    # closed balls, precision and recall are 1 since every point lies in its own ball.
    rng = np.random.default_rng(9)
    features = rng.integers(0, 100_000, size=(60, 3)).astype(np.float64)
    k = 5
    sorted_rows = np.sort(np.linalg.norm(features[:, None] - features[None], axis=-1), axis=1)
    assert (
        sorted_rows[:, k - 1] < sorted_rows[:, k]
    ).all()  # no tie at the rim, which would change the count
    assert precision_recall(features, features.copy(), k=3, chunk_rows=16) == (1.0, 1.0)
    assert density_coverage(features, features.copy(), k=k, chunk_rows=16) == (1.0, 1.0)


def test_prdc_matches_brute_force_across_chunks() -> None:
    rng = np.random.default_rng(10)
    real = rng.normal(size=(50, 4))
    fake = rng.normal(0.3, 1.2, size=(45, 4))
    precision, recall, density, coverage = brute_force_prdc(real, fake, k=3)
    for chunk_rows in (7, 2048):
        assert precision_recall(real, fake, k=3, chunk_rows=chunk_rows) == (precision, recall)
        got_density, got_coverage = density_coverage(real, fake, k=3, chunk_rows=chunk_rows)
        assert got_density == pytest.approx(density, abs=1e-12) and got_coverage == coverage


def test_prdc_of_far_away_fakes_is_zero() -> None:
    rng = np.random.default_rng(11)
    real = rng.normal(size=(40, 4))
    fake = rng.normal(size=(40, 4)) + 100.0
    assert precision_recall(real, fake) == (0.0, 0.0)
    assert density_coverage(real, fake) == (0.0, 0.0)


def test_prdc_rejects_sets_no_larger_than_k() -> None:
    with pytest.raises(UserError, match="at least 4 samples"):
        precision_recall(np.zeros((3, 2)), np.ones((10, 2)), k=3)
    with pytest.raises(UserError, match="at least 6 samples"):
        density_coverage(np.ones((10, 2)), np.zeros((5, 2)), k=5)


# ------------------------------------------------------------------------------------------ memorisation


def test_nearest_neighbour_distances_match_brute_force_across_chunks() -> None:
    rng = np.random.default_rng(12)
    queries = rng.normal(size=(33, 5))
    reference = rng.normal(size=(20, 5))
    expected = np.linalg.norm(queries[:, None] - reference[None], axis=-1).min(axis=1)
    np.testing.assert_allclose(nearest_neighbour_distances(queries, reference, chunk_rows=8), expected)


@pytest.mark.parametrize("dims", [2, 8])
def test_memorisation_flags_copies(dims: int) -> None:
    rng = np.random.default_rng(13)
    train = rng.normal(size=(300, dims))
    heldout = rng.normal(size=(300, dims))
    copies = train[rng.choice(len(train), size=200)]
    result = memorisation_check(train, copies, heldout)
    assert result["copied_fraction"] == 1.0
    assert result["ratio"] == 0.0 and result["fake_to_train_median"] == 0.0
    assert result["heldout_to_train_median"] > 0


@pytest.mark.parametrize("dims", [2, 8])
def test_memorisation_passes_independent_samples(dims: int) -> None:
    rng = np.random.default_rng(14)
    train = rng.normal(size=(400, dims))
    heldout = rng.normal(size=(400, dims))
    fake = rng.normal(size=(400, dims))
    result = memorisation_check(train, fake, heldout)
    assert 0.7 <= result["ratio"] <= 1.3
    assert result["copied_fraction"] < 0.05
