"""Collective cost functions over network levels (sim.fleet.collectives)."""

import math

import pytest

from sim.fleet import collectives as c
from sim.fleet.network import NetworkLevels

DGX = NetworkLevels(chips=(8, 32, 4096), bandwidth_bps=(450e9, 50e9, 50e9), latency_s=(1e-6, 5e-6, 1e-5))
SLICE = NetworkLevels(chips=(64, 64, 4096), bandwidth_bps=(270e9, 6.25e9, 6.25e9), latency_s=(1e-6, 5e-6, 1e-5),
                      torus_dims=(4, 4, 4))
MIB = 2 ** 20


def test_one_level_ring_is_the_textbook_formula():
    v, n = 64 * MIB, 8
    expected = c.LAUNCH_S + 2 * (n - 1) * 1e-6 + 2 * (n - 1) / n * v / (450e9 * c.SCALE_UP_EFFICIENCY)
    assert c.allreduce_s(v, n, 1, DGX) == pytest.approx(expected, rel=1e-12)


def test_hierarchical_ring_moves_one_domain_share_over_the_network():
    v = 64 * MIB  # 16 GPUs, 8 to a server: ring of 8 on NVLink, then a ring of 2 on the NICs on 1/8 of the data
    inner = 7 * 1e-6 + 7 / 8 * v / (450e9 * c.SCALE_UP_EFFICIENCY)
    outer = 1 * 5e-6 + 1 / 2 * (v / 8) / (50e9 * c.SCALE_OUT_EFFICIENCY)
    assert c.allreduce_s(v, 16, 1, DGX) == pytest.approx(c.LAUNCH_S + 2 * (inner + outer), rel=1e-12)


@pytest.mark.parametrize("levels,n,stride", [(DGX, 8, 1), (DGX, 16, 1), (DGX, 64, 8), (DGX, 4, 2),
                                             (SLICE, 64, 1), (SLICE, 16, 1), (SLICE, 128, 1)])
def test_allreduce_is_reduce_scatter_plus_all_gather(levels, n, stride):
    v = 32 * MIB  # one call pays the launch once; the two halves as separate calls pay it twice
    split = c.reduce_scatter_s(v, n, stride, levels) + c.all_gather_s(v, n, stride, levels)
    assert c.allreduce_s(v, n, stride, levels) + c.LAUNCH_S == pytest.approx(split, rel=1e-12)


def test_a_group_inside_one_domain_never_uses_scale_out_bandwidth():
    slow = NetworkLevels(chips=DGX.chips, bandwidth_bps=(450e9, 1.0, 1.0), latency_s=DGX.latency_s)
    v = 256 * MIB
    for n, stride in [(8, 1), (4, 2), (2, 4), (2, 1)]:
        for fn in (c.allreduce_s, c.reduce_scatter_s, c.all_gather_s, c.all_to_all_s):
            assert fn(v, n, stride, slow) == fn(v, n, stride, DGX) < 0.01
        assert c.send_recv_s(v, stride, slow) == c.send_recv_s(v, stride, DGX) < 0.01
    # and a group that leaves the domain does pay it
    assert c.allreduce_s(v, 2, 8, slow) > 1e6 and c.send_recv_s(v, 8, slow) > 1e6


def test_torus_allreduce_of_a_3d_slice_beats_a_1d_ring_of_the_same_chips():
    # a 1D ring through the 64 chips uses one dimension's two links: 1/3 of the chip's ICI bandwidth
    ring = NetworkLevels(chips=(64, 64, 4096), bandwidth_bps=(270e9 / 3, 6.25e9, 6.25e9),
                         latency_s=SLICE.latency_s)
    for v in (MIB, 64 * MIB, 1024 * MIB):
        torus, flat = c.allreduce_s(v, 64, 1, SLICE), c.allreduce_s(v, 64, 1, ring)
        assert torus < flat
    assert c.allreduce_s(1024 * MIB, 64, 1, SLICE) < 0.4 * c.allreduce_s(1024 * MIB, 64, 1, ring)


def test_torus_bandwidth_term_of_a_full_cube_is_the_whole_injection_bandwidth():
    v = 1024 * MIB  # 2 (N-1)/N · V / B: every link busy in every phase
    lat = 2 * 3 * 3 * SLICE.latency_s[0]
    expected = c.LAUNCH_S + lat + 2 * 63 / 64 * v / (270e9 * c.SCALE_UP_EFFICIENCY)
    assert c.allreduce_s(v, 64, 1, SLICE) == pytest.approx(expected, rel=1e-9)


def test_all_to_all_on_switched_levels_is_bound_by_the_slowest_level():
    v = 64 * MIB  # 64 GPUs, 8 per server: 56/64 of the buffer leaves each server through its NICs
    t = c.all_to_all_s(v, 64, 1, DGX)
    assert t == pytest.approx(c.LAUNCH_S + sum(DGX.latency_s) + 56 / 64 * v / (50e9 * c.SCALE_OUT_EFFICIENCY))
    assert c.all_to_all_s(v, 8, 1, DGX) < t


def test_torus_all_to_all_is_bisection_bound_for_long_slices():
    long = NetworkLevels(chips=(256, 256, 4096), bandwidth_bps=(270e9,) * 3, latency_s=(0.0,) * 3,
                         torus_dims=(4, 4, 16))
    v = 64 * MIB
    bisection = v * 16 * 3 / (4 * 270e9 * c.SCALE_UP_EFFICIENCY)
    assert c.all_to_all_s(v, 256, 1, long) == pytest.approx(c.LAUNCH_S + bisection)


def test_trivial_groups_cost_nothing_and_send_recv_is_alpha_beta():
    assert c.allreduce_s(MIB, 1, 1, DGX) == 0.0 == c.all_to_all_s(MIB, 1, 1, DGX)
    assert c.send_recv_s(MIB, 1, DGX) == pytest.approx(c.LAUNCH_S + 1e-6 + MIB / (450e9 * c.SCALE_UP_EFFICIENCY))
    assert math.isclose(c.send_recv_s(MIB, 8, DGX), c.LAUNCH_S + 5e-6 + MIB / (50e9 * c.SCALE_OUT_EFFICIENCY))


def test_a_strided_group_on_a_slice_rides_the_dimensions_it_spans():
    cube = NetworkLevels(chips=(4096, 4096, 8192), bandwidth_bps=(270e9, 6.25e9, 6.25e9),
                         latency_s=(1e-6, 5e-6, 1e-5), torus_dims=(16, 16, 16))
    assert c._torus_group(16, cube.torus_dims, 1) == (16, 1, 1)
    assert c._torus_group(256, cube.torus_dims, 16) == (1, 16, 16)  # data parallel over tensor-parallel rows
    assert c._torus_group(4096, cube.torus_dims) == (16, 16, 16)
    v = 256 * MIB  # a 2D group on a 3D slice uses two of its three dimensions' links
    two_d = c.allreduce_s(v, 256, 16, cube)
    assert two_d == pytest.approx(c.allreduce_s(v, 256, 1, NetworkLevels(
        chips=(256, 256, 8192), bandwidth_bps=(270e9, 6.25e9, 6.25e9), latency_s=cube.latency_s,
        torus_dims=(16, 16, 1))), rel=1e-12)
    assert two_d > 2 * 255 / 256 * v / (270e9 * c.SCALE_UP_EFFICIENCY)  # below the full injection bandwidth
