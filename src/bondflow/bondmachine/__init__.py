"""BondMachine-style architectures: the real toolchain driver (blocked here) and bondflow's moldable network."""
