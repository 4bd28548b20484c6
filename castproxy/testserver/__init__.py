"""The bundled test upstream: an items/users REST API with its own auth, used by the demo and the tests."""
