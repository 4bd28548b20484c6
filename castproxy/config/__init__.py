"""The cast.yaml model, loading with line/column positions, secret references and config errors."""
