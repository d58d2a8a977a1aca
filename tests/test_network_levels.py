"""The network levels a gang's collectives cross (sim.fleet.network)."""

import math

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


# --- levels read from the topology graph; spine oversubscription; TPU slices -------------------------------

import pytest  # noqa: E402

import sim  # noqa: E402
from sim.fleet import collectives  # noqa: E402
from sim.fleet.network import fleet_networks, slice_chips, slice_shape, slices_for  # noqa: E402
from tests.conftest import load_text  # noqa: E402

FLEET = """\
schema_version: 1
name: t
start: 2026-01-01
duration: 1d
site: {{network: {{spine_oversubscription: {ratio}}}}}
fleet:
  - {{name: gpu, accelerator: h100-sxm, count: 256, chips_per_server: 8, servers_per_rack: 4}}
  - {{name: v4, accelerator: tpu-v4, count: 8192, chips_per_server: 4, servers_per_rack: 16}}
  - {{name: v5p, accelerator: tpu-v5p, count: 8960, chips_per_server: 4, servers_per_rack: 16}}
  - {{name: v6e, accelerator: tpu-v6e, count: 512, chips_per_server: 8, servers_per_rack: 4}}
"""


def _networks(tmp_path, ratio=1.0):
    fleet = build_fleet(load_text(tmp_path, FLEET.format(ratio=ratio)), builtin_catalog())
    return fleet, fleet_networks(fleet)


def test_bandwidths_come_from_the_graph_edges(tmp_path):
    fleet, nets = _networks(tmp_path)
    gpu, net = fleet.pools[0], nets[0]
    assert [pool_network(p) for p in fleet.pools] == nets  # without the fleet's graph: one rack's, same figures
    fleet.topology.edges["gpu/domain0", "gpu/server0"]["bandwidth_gbps"] *= 2  # the graph is what is read
    doubled = pool_network(gpu, fleet.topology)
    assert doubled.bandwidth_bps[0] == 2 * net.bandwidth_bps[0] == 900e9
    assert net.bandwidth_bps[1:] == (50e9, 50e9) and net.chips == (8, 32, 256)


def test_spine_oversubscription_slows_level_2_and_nothing_inside_a_rack(tmp_path):
    _, flat = _networks(tmp_path, 1.0)
    _, over = _networks(tmp_path / "..", 4.0)
    for a, b in zip(flat, over):
        assert b.bandwidth_bps[2] == pytest.approx(a.bandwidth_bps[2] / 4)
        assert b.bandwidth_bps[:2] == a.bandwidth_bps[:2] and b.chips == a.chips
    v = 2 ** 26
    gpu_flat, gpu_over = flat[0], over[0]
    inside_rack = collectives.allreduce_s(v, 32, 1, gpu_flat)
    assert collectives.allreduce_s(v, 32, 1, gpu_over) == inside_rack
    assert collectives.allreduce_s(v, 256, 1, gpu_over) > collectives.allreduce_s(v, 256, 1, gpu_flat)


@pytest.mark.parametrize("ratio,accepted", [(0.5, "1 to 100"), (500, "1 to 100")])
def test_spine_oversubscription_out_of_range_is_a_located_error(tmp_path, ratio, accepted):
    with pytest.raises(sim.ScenarioError) as info:
        load_text(tmp_path, FLEET.format(ratio=ratio))
    text = " ".join(str(p) for p in info.value.problems)
    assert "site.network.spine_oversubscription" in text and accepted in text and "s.yaml:5" in text


def test_a_tpu_pool_level0_is_a_slice_up_to_the_largest_slice(tmp_path):
    fleet, nets = _networks(tmp_path)
    v4, v5p, v6e = nets[1], nets[2], nets[3]
    assert fleet.pools[1].domain_chips == 64  # the allocation block stays the 4x4x4 cube
    assert v4.chips[0] == 4096 and v4.torus_dims == (16, 16, 16)
    assert v5p.chips[0] == 6144 and v5p.torus_dims == (16, 16, 24)
    assert v6e.chips[0] == 256 and v6e.torus_dims == (16, 16)
    assert levels_spanned(v4, 4096) == 0 and levels_spanned(v4, 8192) > 0
    assert v4.bandwidth_bps[0] == 0.5 * 540e9
    assert level_arrays([v4])["torus_dims"].tolist() == [[16, 16, 16]]
    # a 4,096-chip gang's all-reduce stays on the interconnect (the data-center network's speed does not
    # matter), where 64-chip domains joined over the data-center network would make it slower
    v = 2 ** 30
    no_dcn = NetworkLevels(chips=v4.chips, bandwidth_bps=(v4.bandwidth_bps[0], 1.0, 1.0), latency_s=v4.latency_s,
                           torus_dims=v4.torus_dims)
    cubes = NetworkLevels(chips=(64,) + v4.chips[1:], bandwidth_bps=v4.bandwidth_bps, latency_s=v4.latency_s)
    assert collectives.allreduce_s(v, 4096, 1, no_dcn) == collectives.allreduce_s(v, 4096, 1, v4)
    assert collectives.allreduce_s(v, 4096, 1, v4) < collectives.allreduce_s(v, 4096, 1, cubes)


def test_slice_shapes_are_the_most_cube_like_valid_slices():
    accel = builtin_catalog().accelerators
    v4, v5p, v7, v5e = accel["tpu-v4"], accel["tpu-v5p"], accel["tpu-v7"], accel["tpu-v5e"]
    assert slice_shape(v4, 64) == (4, 4, 4) and slice_shape(v4, 512) == (8, 8, 8)
    assert slice_shape(v4, 100) == (4, 4, 8)  # rounded up to a valid slice
    assert slice_shape(v4, 8) == (2, 2, 2) and slice_shape(v4, 3) == (1, 2, 2)
    assert slice_shape(v4, 4096) == (16, 16, 16) and slice_shape(v5p, 6144) == (16, 16, 24)
    assert slice_shape(v7, 9216) == (16, 24, 24)
    assert slice_shape(v5e, 256) == (16, 16) and slice_shape(v5e, 32) == (4, 8) and slice_shape(v5e, 5) == (2, 4)
    assert slice_chips(v4, 100) == 128
    for n in (1, 7, 65, 300, 1000, 3000):  # every shape of 64+ chips is whole cubes
        shape = slice_shape(v5p, n)
        assert math.prod(shape) >= n and (math.prod(shape) < 64 or all(d % 4 == 0 for d in shape))
    assert slices_for(v4, 8192) == (2, (16, 16, 16)) and slices_for(v5e, 1024) == (4, (16, 16))
    with pytest.raises(ValueError, match="largest tpu-v5p slice"):
        slice_shape(v5p, 6145)
    with pytest.raises(ValueError, match="no torus"):
        slice_shape(accel["h100-sxm"], 8)


def test_every_tpu_has_its_torus_fields_and_no_gpu_has():
    for accel in builtin_catalog().accelerators.values():
        torus = (accel.torus_dimensions, accel.pod_chips, accel.max_slice_chips)
        assert all(v is not None for v in torus) if accel.kind == "tpu" else all(v is None for v in torus)


def test_gang_chips_on_rounds_tpu_gangs_to_slices_and_leaves_gpus_alone(tmp_path):
    from sim.fleet.network import gang_chips_on

    fleet, _ = _networks(tmp_path)
    gpu, v4, v5p, v6e = fleet.pools
    assert [gang_chips_on(gpu, n) for n in (1, 3, 100)] == [1, 3, 100]
    assert [gang_chips_on(v4, n) for n in (1, 5, 100, 4000, 5000)] == [4, 8, 128, 4096, 5120]
    assert gang_chips_on(v6e, 2) == 4 and gang_chips_on(v6e, 300) == 512
    assert gang_chips_on(v5p, 8960) == 8960  # two slices of 4,480 would not fit the pool: its own size


def test_a_small_tpu_pool_level0_torus_is_the_largest_slice_it_holds(tmp_path):
    text = FLEET.format(ratio=1).replace("count: 512, chips_per_server: 8", "count: 24, chips_per_server: 8")
    fleet = build_fleet(load_text(tmp_path, text), builtin_catalog())
    net = pool_network(fleet.pools[3])
    assert net.chips[0] == 24 and net.torus_dims == (4, 4)
