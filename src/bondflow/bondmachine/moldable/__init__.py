"""Architecture "moldable": a network of small fixed-point MAC processors, each with only the opcodes it uses."""
