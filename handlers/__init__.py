"""The channel-agnostic dialogue: one module per flow."""
