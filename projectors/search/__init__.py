"""Projectors whose read model is a search index (Elasticsearch)."""
