"""Reading stored logs: the selector language, its SQL and Elasticsearch translations, and the query model."""
