"""The network levels a gang's collectives cross (sim.fleet.network)."""

import numpy as np

from sim.catalog import builtin_catalog
from sim.fleet import build_fleet
from sim.fleet.network import NetworkLevels, level_arrays, levels_spanned, pool_network
from sim.scenario import load


def _fleet():
    scenario = load("scenarios/classroom-hetero.yaml")
    return build_fleet(scenario, builtin_catalog())


def test_levels_grow_outward_and_level0_is_the_domain():
    for pool in _fleet().pools:
        net = pool_network(pool)
        assert net.chips[0] == pool.domain_chips
        assert list(net.chips) == sorted(net.chips)
        assert net.bandwidth_bps[0] == 0.5 * pool.accelerator.scale_up_bandwidth_gbps * 1e9


def test_a_group_inside_a_domain_spans_level0_and_a_strided_group_spans_outward():
    net = NetworkLevels(chips=(8, 64, 4096), bandwidth_bps=(450e9, 50e9, 50e9), latency_s=(1e-6, 5e-6, 1e-5))
    assert levels_spanned(net, 8) == 0
    assert levels_spanned(net, 8, stride=8) == 1
    assert levels_spanned(net, 64, stride=8) == 2


def test_level_arrays_pad_with_the_outermost_level():
    net = NetworkLevels(chips=(256,), bandwidth_bps=(400e9,), latency_s=(1e-6,), torus_dims=(16, 16))
    arrays = level_arrays([net])
    assert arrays["level_chips"].tolist() == [[256, 256, 256]]
    assert np.array_equal(arrays["torus_dims"], [[16, 16, 0]])
