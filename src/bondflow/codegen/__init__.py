"""codegen stage of the bondflow flow."""
