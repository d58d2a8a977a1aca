"""The Numba kernel and its pure-NumPy twin agree on random inputs; the twin matches hand arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from sim.kernels import compiled, reference


def random_inputs(rng: np.random.Generator, n_jobs: int, n_pools: int):
    params = 10 ** rng.uniform(6, 12, n_jobs)
    return dict(
        samples=10 ** rng.uniform(3, 12, n_jobs),
        flop_per_sample=6 * params * rng.uniform(0.5, 2, n_jobs),
        params=params,
        bytes_per_param=rng.choice([8.0, 12.0, 16.0], n_jobs),
        activation_bytes_per_sample=10 ** rng.uniform(3, 8, n_jobs),
        microbatch_samples=rng.choice([1.0, 32.0, 2048.0, 8192.0], n_jobs),
        embedding_params=params * rng.choice([0.0, 0.0, 0.9], n_jobs),
        gang_chips=rng.choice([1.0, 2.0, 8.0, 64.0, 512.0], n_jobs),
        peak_flops=10 ** rng.uniform(13, 15.5, n_pools),
        memory_bandwidth_bps=10 ** rng.uniform(11, 13, n_pools),
        memory_bytes=10 ** rng.uniform(10, 11.5, n_pools),
        scale_up_bps=10 ** rng.uniform(10, 12, n_pools),
        scale_out_bps=10 ** rng.uniform(9, 11, n_pools),
        domain_chips=rng.choice([1.0, 8.0, 72.0, 256.0], n_pools),
        max_gang_chips=rng.choice([8.0, 64.0, 1024.0], n_pools),
        efficiency=np.where(rng.random((n_jobs, n_pools)) < 0.2, 0.0, rng.uniform(0.1, 0.6, (n_jobs, n_pools))),
    )


@pytest.mark.parametrize("seed", range(20))
def test_compiled_matches_reference(seed):
    rng = np.random.default_rng(seed)
    inputs = random_inputs(rng, n_jobs=int(rng.integers(1, 200)), n_pools=int(rng.integers(1, 8)))
    t_ref, s_ref = reference.training_time_s(**inputs)
    t_nb, s_nb = compiled.training_time_s(**inputs)
    np.testing.assert_array_equal(s_ref, s_nb)
    np.testing.assert_allclose(t_ref, t_nb, rtol=1e-12)


def test_random_inputs_exercise_every_status():
    """The agreement test above is only as good as its inputs: they must reach every branch."""
    statuses = set()
    for seed in range(20):
        rng = np.random.default_rng(seed)
        inputs = random_inputs(rng, n_jobs=int(rng.integers(1, 200)), n_pools=int(rng.integers(1, 8)))
        statuses |= set(np.unique(reference.training_time_s(**inputs)[1]).tolist())
    assert statuses == {reference.STATUS_OK, reference.STATUS_STACK_UNSUPPORTED, reference.STATUS_OUT_OF_MEMORY,
                        reference.STATUS_GANG_TOO_LARGE}


def test_single_chip_compute_bound_job_is_flops_over_effective_rate():
    inputs = dict(
        samples=np.array([1e6]), flop_per_sample=np.array([1e10]), params=np.array([1e8]),
        bytes_per_param=np.array([16.0]), activation_bytes_per_sample=np.array([1e6]),
        microbatch_samples=np.array([32.0]), embedding_params=np.array([0.0]), gang_chips=np.array([1.0]),
        peak_flops=np.array([1e15]), memory_bandwidth_bps=np.array([3e12]), memory_bytes=np.array([80e9]),
        scale_up_bps=np.array([9e11]), scale_out_bps=np.array([5e10]), domain_chips=np.array([8.0]),
        max_gang_chips=np.array([8.0]), efficiency=np.array([[0.5]]),
    )
    time, status = reference.training_time_s(**inputs)
    assert status[0, 0] == reference.STATUS_OK
    assert time[0, 0] == pytest.approx(1e6 * 1e10 / (1e15 * 0.5))


def test_status_codes():
    base = random_inputs(np.random.default_rng(0), 1, 1)
    base.update(params=np.array([1e12]), bytes_per_param=np.array([16.0]), gang_chips=np.array([1.0]),
                max_gang_chips=np.array([8.0]), memory_bytes=np.array([80e9]), efficiency=np.array([[0.4]]),
                embedding_params=np.array([0.0]))
    assert reference.training_time_s(**base)[1][0, 0] == reference.STATUS_OUT_OF_MEMORY
    base.update(gang_chips=np.array([16.0]))
    assert reference.training_time_s(**base)[1][0, 0] == reference.STATUS_GANG_TOO_LARGE
    base.update(efficiency=np.array([[0.0]]))
    assert reference.training_time_s(**base)[1][0, 0] == reference.STATUS_STACK_UNSUPPORTED
