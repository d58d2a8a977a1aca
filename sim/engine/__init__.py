"""SimPy processes: the cluster (training jobs) today; inference, facility and supply chain later."""
