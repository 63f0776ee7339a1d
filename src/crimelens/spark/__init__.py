"""Apache Spark engine (adapter): sessions, lake I/O, the core's cleaning per partition, pushed-down
counts."""
