"""The image list's search interface (protocol.py) and its adapters: PostgreSQL (postgres.py) and
Elasticsearch (elasticsearch.py). docs/search.md says how to pick one."""
