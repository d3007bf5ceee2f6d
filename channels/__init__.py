"""Channel adapters: translate a platform's updates to `handlers.messages` types and back."""
