"""Ranking (DLRM-class) serving: per-replica batch-time model, dynamic batching kernel call, results."""
