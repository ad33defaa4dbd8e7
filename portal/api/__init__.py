"""What every REST endpoint of the project shares: the error body, the JSON parser, JSON
answers for unknown routes under /api/, and the schema's documented refusals."""
