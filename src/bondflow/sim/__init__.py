"""sim stage of the bondflow flow."""
