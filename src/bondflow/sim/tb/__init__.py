"""cocotb testbenches (run inside the simulator by the runner)."""
