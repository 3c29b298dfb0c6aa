"""The PostgreSQL adapters (``foundry[postgres]``): a connection pool on psycopg 3, the schema's
versioned migrations, and the queue and cache built on them."""
