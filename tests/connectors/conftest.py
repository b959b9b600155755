"""tests/connectors/ runs without Django settings: nothing here may import Django."""
