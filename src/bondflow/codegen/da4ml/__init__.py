"""The da4ml architecture: the real da4ml library traces bondflow's graph; bondflow wraps its Verilog in the common shell."""
