"""Channel adapters: turn platform updates into ``handlers.types.Incoming`` and render replies."""
