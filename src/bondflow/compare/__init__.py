"""compare stage of the bondflow flow."""
