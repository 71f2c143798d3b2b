"""bondmachine stage of the bondflow flow."""
