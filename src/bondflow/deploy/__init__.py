"""deploy stage of the bondflow flow."""
