"""synth stage of the bondflow flow."""
